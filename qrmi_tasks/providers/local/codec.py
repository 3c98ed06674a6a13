"""Qiskit Runtime's JSON encoding of primitive inputs and results, without importing
qiskit-ibm-runtime for the common cases.

``qiskit_ibm_runtime`` takes about two seconds to import (its package pulls in its whole
client); the ``local`` worker only needs its JSON codec for circuits, arrays and primitive
results. The types below are encoded and decoded exactly as ``RuntimeEncoder`` /
``RuntimeDecoder`` do (``tests/test_local_codec.py`` compares the bytes); any other
type falls back to qiskit-ibm-runtime itself, so nothing is ever encoded differently.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import zlib
from datetime import date
from typing import Any

import numpy as np

from qrmi_tasks.inflate import Budget, InflateError, check_document, inflate

#: ``__type__`` values decoded here; any other one goes to RuntimeDecoder
_DECODED_HERE = frozenset(
    {"ndarray", "QuantumCircuit", "set", "complex", "ObservablesArray", "BindingsArray"}
)


class _Fallback(Exception):
    """This value needs qiskit-ibm-runtime's own decoder."""


def _runtime_json() -> tuple[type[json.JSONDecoder], type[json.JSONEncoder]]:
    from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder

    return RuntimeDecoder, RuntimeEncoder


def decode(text: str) -> Any:
    """``json.loads(text, cls=RuntimeDecoder)``, importing qiskit-ibm-runtime only when a
    value needs it.

    Compressed arrays and circuits inflate within one :class:`~qrmi_tasks.inflate.Budget`
    for the whole text; beyond it :class:`~qrmi_tasks.inflate.InflateError`.
    """
    try:
        return json.loads(text, object_hook=functools.partial(_object_hook, budget=Budget()))
    except _Fallback:
        # RuntimeDecoder inflates without a bound: measure first
        check_document(json.loads(text))
        return json.loads(text, cls=_runtime_json()[0])


def _object_hook(obj: dict[str, Any], budget: Budget) -> Any:
    if "__type__" not in obj:
        return obj
    kind, value = obj["__type__"], obj.get("__value__")
    if kind not in _DECODED_HERE:
        raise _Fallback
    if kind == "complex":
        return value[0] + 1j * value[1]
    if kind == "set":
        return set(value)
    if kind == "ndarray":
        if isinstance(value, (int, list)):
            return np.array(value)
        if not isinstance(value, str):
            raise _Fallback
        try:
            data = inflate(value, budget)
        except InflateError as exc:
            if exc.beyond_budget:
                raise
            raise _Fallback from None  # an extrapolator name, or something RuntimeDecoder knows
        try:
            return np.load(io.BytesIO(data))
        except Exception:  # an extrapolator name, or something RuntimeDecoder knows better
            raise _Fallback from None
    if kind == "QuantumCircuit":
        from qiskit import qpy

        stream = io.BytesIO(inflate(value, budget))
        if qpy.get_qpy_version(stream) > qpy.QPY_VERSION:
            raise _Fallback  # RuntimeDecoder words the "upgrade qiskit" warning
        return qpy.load(stream)[0]
    if kind == "ObservablesArray":
        from qiskit.primitives.containers.observables_array import ObservablesArray

        return ObservablesArray(value)
    # BindingsArray
    from qiskit.primitives.containers.bindings_array import BindingsArray

    kwargs: dict[str, Any] = {"shape": value.get("shape", None)}
    data = value.get("data", None)
    if isinstance(data, dict):
        kwargs["data"] = {tuple(_decode_key(key, budget)): val for key, val in data.items()}
    elif data:
        raise _Fallback
    return BindingsArray(**kwargs)


def _decode_key(text: str, budget: Budget) -> Any:
    try:
        return json.loads(text, object_hook=functools.partial(_object_hook, budget=budget))
    except _Fallback:
        check_document(json.loads(text), budget)
        return json.loads(text, cls=_runtime_json()[0])


def _pack(data: bytes) -> str:
    return base64.standard_b64encode(zlib.compress(data)).decode("utf-8")


class ResultEncoder(json.JSONEncoder):
    """RuntimeEncoder's output for primitive results; other types are handed to it."""

    def default(self, obj: Any) -> Any:
        from qiskit.primitives.containers import (
            BitArray,
            DataBin,
            PrimitiveResult,
            PubResult,
            SamplerPubResult,
        )

        kind = type(obj)
        # exact types only: a subclass (Runtime's EstimatorPubResult, for one) may be
        # encoded differently by RuntimeEncoder, so it goes there
        if kind is PrimitiveResult:
            value = {"pub_results": obj._pub_results, "metadata": obj.metadata}
            return {"__type__": "PrimitiveResult", "__value__": value}
        if kind in (SamplerPubResult, PubResult):
            value = {"data": obj.data, "metadata": obj.metadata}
            return {"__type__": kind.__name__, "__value__": value}
        if kind is DataBin:
            value = {"field_names": list(obj), "shape": obj.shape, "fields": dict(obj.items())}
            return {"__type__": "DataBin", "__value__": value}
        if kind is BitArray:
            value = {"array": obj.array, "num_bits": obj.num_bits}
            return {"__type__": "BitArray", "__value__": value}
        if kind is np.ndarray:
            if obj.dtype == object:
                return {"__type__": "ndarray", "__value__": obj.tolist()}
            buffer = io.BytesIO()
            np.save(buffer, obj, allow_pickle=False)
            return {"__type__": "ndarray", "__value__": _pack(buffer.getvalue())}
        if kind is np.int64:
            return obj.item()
        if kind is complex:
            return {"__type__": "complex", "__value__": [obj.real, obj.imag]}
        if kind is set:
            return {"__type__": "set", "__value__": list(obj)}
        if isinstance(obj, date):
            return {"__type__": "datetime", "__value__": obj.isoformat()}
        return _runtime_json()[1]().default(obj)


def encode(value: Any) -> str:
    """``json.dumps(value, cls=RuntimeEncoder)``, byte for byte."""
    return json.dumps(value, cls=ResultEncoder)
