"""JSON from outside, parsed only after its size and nesting depth are bounded.

``json.loads`` recurses once per nested array or object, in C, as deep as the
text goes. A body of a few hundred kilobytes of ``[`` overflows the C stack when
the interpreter's recursion limit is high (py_ecc, imported by eth-account,
raises it to 100,000), and the process dies with a segfault instead of an
error. :func:`loads_bounded` counts the depth first, outside strings, without
recursion, and refuses anything deeper than ``max_depth`` before the parser
sees it. :func:`sane_recursion_limit` undoes py_ecc's change; every call of
:func:`loads_bounded` runs it first, whenever py_ecc happened to be imported.

>>> loads_bounded(b'{"a": [1, {"b": "[[["}]}')
{'a': [1, {'b': '[[['}]}
>>> loads_bounded(b"[" * 100)
Traceback (most recent call last):
...
ValueError: JSON nested deeper than 32 levels
"""

from __future__ import annotations

import json
import re
import sys
from itertools import accumulate
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "RECURSION_LIMIT", "json_depth", "loads_bounded",
           "sane_recursion_limit"]  # fmt: skip

DEFAULT_MAX_DEPTH = 32
#: Python's own default; deep enough for every library NeuroLedger uses.
RECURSION_LIMIT = 1000

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (an upper bound for text that is
    not valid JSON), computed without recursion."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    if not brackets:
        return 0
    return max(accumulate(1 if c in b"[{" else -1 for c in brackets))


def loads_bounded(raw: bytes | bytearray | str, *, max_bytes: int = 1 << 20,
                  max_depth: int = DEFAULT_MAX_DEPTH) -> Any:  # fmt: skip
    """Parse ``raw`` as JSON after checking its size and depth; ValueError if it is too big,
    too deep, not UTF-8 or not JSON."""
    sane_recursion_limit()  # py_ecc may have been imported since (lazily)
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise ValueError(f"JSON larger than {max_bytes} bytes")
    if json_depth(data) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("JSON that is not UTF-8") from None
    return json.loads(text)


def sane_recursion_limit() -> None:
    """Bring the interpreter's recursion limit back to Python's default if a library raised it.

    A deep recursion then ends in ``RecursionError``, which the caller can handle, rather
    than in a stack overflow that kills the process.
    """
    if sys.getrecursionlimit() > RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
