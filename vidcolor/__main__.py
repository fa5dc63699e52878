"""`python -m vidcolor` runs the command line."""

from .cli import main

main()
