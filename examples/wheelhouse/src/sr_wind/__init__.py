"""Wind speed with height: the logarithmic wind profile of a neutral surface layer.

A stand-in for the packages the dashboard's experiments import (numpy, pandas …), small enough to
ship as a wheel in the repository so the demo installs it without a package index.
"""
import math

__version__ = "1.0.0"


def speed_at(height_m: float, measured_speed: float, roughness_m: float, measured_at_m: float = 10.0) -> float:
    """Wind speed at `height_m`, from `measured_speed` at `measured_at_m` over terrain of roughness `roughness_m`."""
    return measured_speed * math.log(height_m / roughness_m) / math.log(measured_at_m / roughness_m)
