"""The chaos soak behind ``python -m tickactors chaos`` (see :mod:`.soak`)."""

from .soak import SoakOptions, soak

__all__ = ["SoakOptions", "soak"]
