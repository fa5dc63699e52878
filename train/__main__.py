"""`python -m train ...` is `vidcolor train ...` (handy under torchrun)."""

from train.cli import train

if __name__ == "__main__":
    train()
