"""The actors: thin Trio tasks around the sans-I/O machines of ``tickactors._core``."""
