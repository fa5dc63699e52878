"""vidcolor: colorize black-and-white video with a pix2pix-style conditional GAN."""

__version__ = "0.1.0"
