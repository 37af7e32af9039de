"""Waiting for a condition in tests: poll it against a deadline, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def soon(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds (polled)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
