"""Pause Python's cyclic garbage collector around bulk work, leaving the user's setting as it was.

Building or loading a graph allocates many small objects that live on (nodes, ports, specs, dicts). Each time
enough of them accumulate, CPython runs a collection of the oldest generation, which walks every tracked object
in the process: with torch imported that is a few hundred thousand objects, so a 20,000-node load spent half
its time in collections that free nothing, and an editor reply could stall ~200 ms. Reference counting still
frees everything acyclic meanwhile; the collector runs again when the block ends. A kernel where the user
disabled the collector stays disabled, and a nested pause is a no-op.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; it is switched back on only if it was on before."""
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
