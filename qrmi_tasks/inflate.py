"""Bounded decompression of the zlib-compressed values in Qiskit Runtime's JSON encoding.

``RuntimeEncoder`` writes arrays and circuits as ``{"__type__": "ndarray" | "QuantumCircuit"
| "Instruction", "__value__": base64(zlib(bytes))}``. zlib compresses runs of zeros about
1000:1, so a 1.4 MB payload or result can expand to gigabytes in whatever decodes it (the
``local`` worker, the runner's target check, ``qrmi-result``): ``RuntimeDecoder`` calls
``zlib.decompress`` without a bound. Every place that decodes this format therefore first
measures each compressed value here, within one budget for the whole document
(:data:`INFLATED_LIMIT`), and our own decoder (:mod:`qrmi_tasks.providers.local.codec`)
inflates through :func:`inflate`. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import zlib
from typing import Any

from qrmi_tasks.readers import MIB, PAYLOAD_LIMIT, size_text

#: The most bytes all compressed values of one document may inflate to, together: the
#: payload limit, since the same values written uncompressed would be refused at that size.
INFLATED_LIMIT = PAYLOAD_LIMIT

#: ``__type__`` values whose ``__value__`` string RuntimeDecoder zlib-decompresses
COMPRESSED_TYPES = frozenset({"ndarray", "QuantumCircuit", "Instruction"})

# inflated in slices of this size, so a check never holds more than one slice
_CHUNK = 4 * MIB


class InflateError(ValueError):
    """A compressed value is not base64/zlib, or inflates beyond the budget left."""

    #: True: the value is well-formed but inflates beyond the budget
    beyond_budget = True


class _NotCompressed(InflateError):
    """Not base64 of a complete zlib stream (an extrapolator name, or damaged data)."""

    beyond_budget = False


class Budget:
    """What the compressed values of one document may still inflate to (bytes)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = INFLATED_LIMIT if limit is None else limit
        self.left = self.limit

    def take(self, size: int) -> None:
        """Spend ``size`` bytes, or raise :class:`InflateError` when they are not left."""
        self.left -= size
        if self.left < 0:
            raise InflateError(
                f"its compressed arrays/circuits inflate beyond {size_text(self.limit)} "
                "(a zlib bomb, or data too large to decode)"
            )


def _compressed(text: str) -> bytes:
    try:
        return base64.standard_b64decode(text)
    except (binascii.Error, ValueError):
        raise _NotCompressed("a compressed value is not base64") from None


def _inflate(text: str, budget: Budget, keep: bool) -> bytes:
    stream = zlib.decompressobj()
    data = _compressed(text)
    parts = []
    try:
        while data:
            # max_length bounds each step: memory never exceeds one slice per step
            part = stream.decompress(data, min(_CHUNK, budget.left + 1))
            budget.take(len(part))
            if keep:
                parts.append(part)
            data = stream.unconsumed_tail
            if stream.eof:
                break
    except zlib.error as exc:
        raise _NotCompressed(f"a compressed value is not zlib data ({exc})") from None
    if not stream.eof:
        raise _NotCompressed("a compressed value is truncated (incomplete zlib stream)")
    return b"".join(parts)


def inflate(text: str, budget: Budget | None = None) -> bytes:
    """``zlib.decompress(base64decode(text))`` within ``budget`` (a fresh one if None)."""
    return _inflate(text, budget or Budget(), keep=True)


def check_document(document: Any, budget: Budget | None = None) -> None:
    """Raise :class:`InflateError` when the compressed values anywhere in ``document`` (a
    decoded JSON value) inflate beyond ``budget``, measured without keeping the bytes."""
    budget = budget or Budget()
    pending = [document]
    while pending:  # a list, not recursion: depth is whatever the JSON decoder accepted
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            kind, inner = value.get("__type__"), value.get("__value__")
            if kind in COMPRESSED_TYPES and isinstance(inner, str):
                # only the size is checked here; the decoder words a malformed value
                with contextlib.suppress(_NotCompressed):
                    _inflate(inner, budget, keep=False)
            elif kind == "BindingsArray" and isinstance(inner, dict):
                # the data's keys are JSON text RuntimeDecoder decodes again
                data = inner.get("data")
                for key in data if isinstance(data, dict) else ():
                    with contextlib.suppress(ValueError, RecursionError):  # the decoder's to word
                        pending.append(json.loads(key))
            pending.extend(value.values())
