"""User controls of the output's look, with their bounds declared once for the CLI and `Colorizer`.

No torch or media imports, so the CLI can read the bounds without slowing its start.
"""

from __future__ import annotations

import math

from .errors import OptionError

DEFAULT_SATURATION = 1.0
SATURATION_RANGE = (0.0, 3.0)  # 0 gives gray output; past 3 nearly every colour clips to the RGB gamut


def check_saturation(value: float) -> float:
    """`value` as a float if it is a usable saturation, else OptionError, one line the CLI prints as is.

    Not-a-number and infinities are refused too: they would turn every pixel into garbage.
    """
    lo, hi = SATURATION_RANGE
    try:
        s = float(value)
    except (TypeError, ValueError):
        s = math.nan
    if not lo <= s <= hi:  # False for NaN as well
        raise OptionError(f"saturation must be a number from {lo:g} to {hi:g} (0: gray, 1: as predicted), "
                          f"got {value}")
    return s
