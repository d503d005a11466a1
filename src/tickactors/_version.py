"""The package's version, where both ``tickactors`` and its command line can read it."""

__version__ = "0.1.0.dev0"
