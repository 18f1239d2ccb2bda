"""A garbage collector that runs at nearly every allocation, for tests of code that recurses."""

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def collecting_at_every_allocation() -> Iterator[list[Any]]:
    """Collect at nearly every allocation, each collection running a callback that makes a call
    (as `shared.metrics`' GC-pause callback does), and yield the callbacks that could not run:
    a collection deep in a recursion finds no room left for them."""
    failed: list[Any] = []

    def call() -> None:
        pass

    def callback(phase: str, info: dict) -> None:
        call()

    threshold, hook = gc.get_threshold(), sys.unraisablehook
    sys.unraisablehook = failed.append
    gc.callbacks.append(callback)
    gc.set_threshold(1)
    try:
        yield failed
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(callback)
        sys.unraisablehook = hook
