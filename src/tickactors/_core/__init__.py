"""The sans-I/O core: plain synchronous state machines, no clocks, no sockets, no randomness.

Every machine takes ``now`` (float seconds on the feed's clock) as an argument, never reads a
clock, never draws random numbers itself (a ``Callable[[], float]`` is injected), and says when it
next wants to be woken through ``next_deadline()``. ``tests/test_core_purity.py`` enforces this.
Nothing is imported here on purpose: import the modules themselves.
"""
