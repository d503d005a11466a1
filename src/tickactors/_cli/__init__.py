"""The ``python -m tickactors`` runner: the demo, ``run`` and ``sim``."""
