"""The chaos soak behind ``python -m tickactors chaos``.

:mod:`.plan` (what to inject) and :mod:`.ledger` (what became of it) are pure,
like the core, and checked by tests/test_core_purity.py; :mod:`.soak` runs them
against the simulator; :mod:`.setups` holds each venue's settings.
"""
