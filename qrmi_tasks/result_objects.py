"""Runner results as the ecosystem's objects: a Qiskit ``PrimitiveResult`` or a Pulser counter.

Imports qiskit: loaded only by :func:`qrmi_tasks.results.load` and the Python API, never
by the CLIs' start. Both objects display themselves in notebooks (``_repr_html_``) and
plot themselves (``plot()`` returns a matplotlib Figure).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.primitives.containers import (
    BitArray,
    DataBin,
    PrimitiveResult,
    PubResult,
    SamplerPubResult,
)

from qrmi_tasks.errors import InputError
from qrmi_tasks.result_views import SummaryViews


class QrmiResult(SummaryViews, PrimitiveResult):
    """A ``PrimitiveResult`` read from a runner output, whatever its JSON form.

    ``form`` says which one it was: ``"qiskit"`` (RuntimeEncoder) or ``"plain-json"``
    (``support_qiskit: false``). ``observables`` holds, per pub, the observables' labels
    when the payload is known (estimator plots and summaries name them).
    """

    def __init__(
        self,
        pub_results: Sequence[Any],
        metadata: dict[str, Any] | None = None,
        *,
        form: str = "qiskit",
        observables: list[Any] | None = None,
    ) -> None:
        super().__init__(pub_results, metadata)
        self.form = form
        self.observables = observables


class PulserCounts(SummaryViews, Counter):
    """Counts of a Pulser sequence's runs: ``{bitstring: count}``, a ``collections.Counter``."""

    @property
    def runs(self) -> int:
        """How many times the sequence ran (the sum of the counts)."""
        return sum(self.values())


def from_decoded(result: Any) -> QrmiResult:
    """A RuntimeDecoder-decoded PrimitiveResult as a :class:`QrmiResult`."""
    return QrmiResult(list(result), dict(result.metadata), form="qiskit")


def from_plain(document: dict[str, Any], source: str) -> QrmiResult:
    """Rebuild a PrimitiveResult from IBM's plain-JSON result (``*_result_v2`` schemas)."""
    pubs: list[Any] = []
    for index, pub in enumerate(document["results"]):
        where = f"{source}: results[{index}]"
        data = pub.get("data") if isinstance(pub, dict) else None
        if not isinstance(data, dict):
            raise InputError(f"{where} has no 'data' object")
        metadata = pub.get("metadata") or {}
        if "evs" in data:
            pubs.append(PubResult(_estimator_data(data, where), metadata))
        else:
            pubs.append(SamplerPubResult(_sampler_data(data, where), metadata))
    return QrmiResult(pubs, document.get("metadata") or {}, form="plain-json")


def _estimator_data(data: dict[str, Any], where: str) -> DataBin:
    try:
        evs = np.asarray(data["evs"], dtype=float)
        fields = {
            "evs": evs,
            "stds": np.broadcast_to(np.asarray(data.get("stds", np.nan), float), evs.shape),
        }
        # IBM's schema spells it "ensamble"; Qiskit's DataBin field is "ensemble"
        ese = data.get("ensemble_standard_error", data.get("ensamble_standard_error"))
        if ese is not None:
            fields["ensemble_standard_error"] = np.asarray(ese, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{where}.data: evs/stds are not numbers") from None
    return DataBin(**fields, shape=evs.shape)


def _sampler_data(data: dict[str, Any], where: str) -> DataBin:
    registers: dict[str, BitArray] = {}
    for name, register in data.items():
        if not isinstance(register, dict) or "samples" not in register:
            continue
        samples = register["samples"]
        try:
            num_bits = register.get("num_bits")
            num_bits = int(num_bits) if num_bits is not None else _bits_needed(samples)
            registers[name] = _bit_array(samples, num_bits)
        except (TypeError, ValueError):
            raise InputError(f"{where}.data.{name}: bad samples") from None
    shapes = {array.shape for array in registers.values()}
    if len(shapes) > 1:
        raise InputError(f"{where}.data: registers have different shapes {sorted(shapes)}")
    return DataBin(**registers, shape=shapes.pop() if shapes else ())


def _bit_array(samples: Any, num_bits: int) -> BitArray:
    """Hex strings per shot, nested like the pub's shape, as one BitArray of that shape."""
    if not isinstance(samples, list):
        raise TypeError("samples must be a list")
    if all(isinstance(s, str) for s in samples):
        if not samples:
            return BitArray(np.zeros((0, (num_bits + 7) // 8), dtype=np.uint8), num_bits)
        if any(int(s, 16) >> num_bits for s in samples):
            raise ValueError("a sample has more bits than num_bits")
        return BitArray.from_samples(samples, num_bits)
    parts = [_bit_array(s, num_bits) for s in samples]
    if len({p.array.shape for p in parts}) != 1:
        raise ValueError("ragged samples")
    return BitArray(np.stack([p.array for p in parts]), num_bits)


def _bits_needed(samples: Any) -> int:
    stack, widest = [samples], 1
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            widest = max(widest, int(str(item), 16).bit_length())
    return widest
