"""Training for vidcolor's cGAN: frame packs, the pix2pix-style trainer, export of inference models.

The networks come from `vidcolor.nets`; this package never defines its own.
"""
