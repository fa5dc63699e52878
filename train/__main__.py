"""`python -m vidcolor.train ...` is `vidcolor train ...` (handy under torchrun)."""

from .cli import train

if __name__ == "__main__":
    train()
