"""Summaries of results: counts per pub, register and parameter binding (samplers, Pulser),
expectation values with their observables' labels (estimators), and their text form.

Works on the objects :func:`qrmi_tasks.results.load` returns; light to import.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOP = 16


@dataclass
class RegisterCounts:
    """Counts of one classical register for one parameter binding of one pub (or of a
    Pulser run). ``binding`` is the binding's index in the pub's shape (``()``: none)."""

    name: str
    shots: int
    counts: dict[str, int]
    binding: tuple[int, ...] = ()

    def top(self, k: int) -> list[tuple[str, int, float]]:
        """The ``k`` most frequent bitstrings with count and probability."""
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [(bits, n, n / self.shots if self.shots else 0.0) for bits, n in ranked]


@dataclass
class PubSummary:
    """What one pub produced: register counts (sampler) or expectation values (estimator)."""

    index: int
    registers: list[RegisterCounts] = field(default_factory=list)
    evs: Any = None
    stds: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the pub's shape (parameter bindings x observables)
    shape: tuple[int, ...] = ()
    #: per expectation value, the observable's label when the payload is known
    labels: Any = None


@dataclass
class Summary:
    """A whole result file, summarized."""

    kind: str  # "sampler", "estimator", "pulser" or "counts" (per circuit: IQM, Felis)
    form: str  # "qiskit" (RuntimeEncoder), "plain-json", "pasqal", "iqm" or "felis"
    pubs: list[PubSummary]  # for "counts", one per circuit
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        """What each entry of :attr:`pubs` is called: a pub, or a circuit (``counts``)."""
        return "circuit" if self.kind == "counts" else "pub"

    def to_dict(self, top: int = DEFAULT_TOP) -> dict[str, Any]:
        """JSON-ready form (``qrmi-result summary --json``)."""
        pubs = []
        for pub in self.pubs:
            entry: dict[str, Any] = {"index": pub.index}
            if pub.registers:
                entry["registers"] = [
                    {
                        "name": r.name,
                        **({"binding": list(r.binding)} if pub.shape else {}),
                        "shots": r.shots,
                        "distinct": len(r.counts),
                        "top": [
                            {"bitstring": b, "count": n, "probability": round(p, 6)}
                            for b, n, p in r.top(top)
                        ],
                    }
                    for r in pub.registers
                ]
            if pub.shape:
                entry["shape"] = list(pub.shape)
            if pub.evs is not None:
                entry["evs"] = _plain(pub.evs)
                entry["stds"] = _plain(pub.stds)
                if pub.labels is not None:
                    entry["observables"] = _plain(pub.labels)
            if pub.metadata:
                entry["metadata"] = _plain(pub.metadata)
            pubs.append(entry)
        return {
            "kind": self.kind,
            "form": self.form,
            "pubs": pubs,
            "metadata": _plain(self.metadata),
        }


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


# -- observables' labels ------------------------------------------------------------------
# Beyond this many characters a label is shortened where it is shown (text, plots, HTML);
# ``--json`` keeps it whole.
MAX_LABEL = 40
# A Pauli string as Qiskit writes it: the rightmost letter is qubit 0; a phase may lead.
_PAULI = re.compile(r"(-?i?)([IXYZ]+)")
_SEPARATOR = re.compile(r"·| \+ ")
# A Pauli string inside a label: a whole word of Pauli letters (``0.5·ZZI + XXI``).
_PAULI_WORD = re.compile(r"(?<![\w.])-?i?[IXYZ]+(?!\w)")


def pauli_label(text: str) -> str:
    """``Z0·Z1`` style sparse label of a Pauli string (identity factors left out; ``I``
    for the identity): a 133-qubit ``IIZ...`` is unreadable, and the letters' order
    (qubit 0 on the right) is easy to misread even for two."""
    found = _PAULI.fullmatch(text)
    if found is None:
        return text
    phase, letters = found.groups()
    factors = [f"{p}{q}" for q, p in enumerate(reversed(letters)) if p != "I"]
    return phase + ("·".join(factors) or "I")


def observable_label(observable: Any) -> Any:
    """The label (nested lists for arrays) of a payload's observable(s), its Pauli strings
    as the payload writes them (``--json``, ``result.observables``); shown through
    :func:`display_label`."""
    if isinstance(observable, str):
        return observable
    if isinstance(observable, dict):
        terms = [p if _is_one(c) else f"{_number(c)}·{p}" for p, c in observable.items()]
        return " + ".join(terms) or "0"
    if isinstance(observable, list):
        return [observable_label(o) for o in observable]
    return str(observable)


def display_label(label: Any, limit: int = MAX_LABEL) -> str:
    """An observable's label as shown (summary text, plots, HTML): its Pauli strings
    sparse (:func:`pauli_label`), the whole shortened (:func:`short_label`)."""
    sparse = _PAULI_WORD.sub(lambda word: pauli_label(word.group()), str(label))
    return short_label(sparse, limit)


def short_label(label: Any, limit: int = MAX_LABEL) -> str:
    """``label`` as text of at most about ``limit`` characters: its head, an ellipsis,
    and its last factor or term (``Z0·Z1·Z2·…·Z132``), cut between factors."""
    text = str(label)
    if len(text) <= limit:
        return text
    cuts = list(_SEPARATOR.finditer(text))
    if not cuts:
        return text[: limit - 1] + "…"
    last = cuts[-1]
    tail = text[last.end() :]
    room = max(limit - len(tail) - 3, 1)
    head = [c for c in cuts if c.start() <= room]
    if not head:
        return text[: limit - 1] + "…"
    sep = head[-1].group()
    return f"{text[: head[-1].start()]}{sep}…{last.group()}{tail}"


def _is_one(value: Any) -> bool:
    return isinstance(value, int | float) and float(value) == 1.0


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _labels_for(labels: Any, shape: tuple[int, ...]) -> Any:
    """The labels broadcast to the evs' shape, as the pub's broadcasting rules do."""
    import numpy as np

    if labels is None:
        return None
    array = np.empty(np.shape(labels) if isinstance(labels, list) else (), dtype=object)
    if isinstance(labels, list):
        for index in np.ndindex(array.shape):
            item: Any = labels
            for i in index:
                item = item[i]
            array[index] = item
    else:
        array[()] = labels
    try:
        return np.broadcast_to(array, shape)
    except ValueError:  # a payload that does not match this result
        return None


# -- summaries -----------------------------------------------------------------------------
def summarize_object(result: Any) -> Summary:
    """Summarize a loaded result: a ``PrimitiveResult``, a Pulser counter or counts per
    circuit (IQM, Felis: :class:`~qrmi_tasks.circuit_counts.CircuitResults`)."""
    own = getattr(result, "own_summary", None)  # counts per circuit (circuit_counts.py)
    if callable(own):
        return own()
    if isinstance(result, Counter):
        counts = dict(result)
        register = RegisterCounts("counter", sum(counts.values()), counts)
        return Summary("pulser", "pasqal", [PubSummary(0, registers=[register])])
    return _summarize_primitive(result)


def _summarize_primitive(result: Any) -> Summary:
    import numpy as np
    from qiskit.primitives.containers import BitArray

    observables = getattr(result, "observables", None) or []
    pubs, kind = [], "sampler"
    for index, pub in enumerate(result):
        shape = tuple(pub.data.shape)
        summary = PubSummary(index, metadata=dict(pub.metadata), shape=shape)
        for name, value in pub.data.items():
            if isinstance(value, BitArray):
                # one entry per binding: merging a sweep's bindings would mix different
                # circuits' outcomes and multiply the shot count
                for binding in np.ndindex(value.shape):
                    part = value[binding] if binding else value
                    counts = part.get_counts()
                    summary.registers.append(
                        RegisterCounts(name, part.num_shots, counts, tuple(binding))
                    )
        if "evs" in pub.data:
            kind = "estimator"
            summary.evs, summary.stds = pub.data.evs, pub.data.stds
            if index < len(observables):
                summary.labels = _labels_for(observables[index], np.shape(summary.evs))
        pubs.append(summary)
    return Summary(kind, getattr(result, "form", "qiskit"), pubs, dict(result.metadata))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def binding_text(binding: tuple[int, ...]) -> str:
    """``binding [0, 1]`` style name of a parameter binding (empty if the pub has none)."""
    return f"binding [{', '.join(map(str, binding))}]" if binding else ""


def format_text(summary: Summary, top: int = DEFAULT_TOP) -> str:
    """Human-readable summary (``qrmi-result summary``)."""
    if summary.kind == "pulser":
        return _format_pulser(summary, top)
    import numpy as np

    lines = [
        f"{summary.kind} result ({summary.form} form), " + _plural(len(summary.pubs), summary.unit)
    ]
    for pub in summary.pubs:
        shape = f" (shape {list(pub.shape)})" if pub.shape else ""
        lines.append(f"{summary.unit} {pub.index}{shape}:")
        for register in pub.registers:
            where = f", {binding_text(register.binding)}" if register.binding else ""
            lines.append(f"  register {register.name}{where}: " + _counts_head(register, top))
            lines.extend(_count_lines(register, top))
        if pub.evs is not None:
            evs = np.atleast_1d(np.asarray(pub.evs, dtype=float))
            stds = np.atleast_1d(
                np.asarray(pub.stds if pub.stds is not None else np.nan, dtype=float)
            )
            stds = np.broadcast_to(stds, evs.shape)
            labels = None if pub.labels is None else np.broadcast_to(pub.labels, evs.shape)
            lines.append(f"  expectation values (shape {list(evs.shape)}):")
            names = {
                idx: "" if labels is None else f"  {display_label(labels[idx])}"
                for idx in np.ndindex(evs.shape)
            }
            width = max(map(len, names.values()), default=0)
            for idx, name in names.items():
                label = ",".join(map(str, idx))
                lines.append(f"    [{label}]{name:<{width}}  {evs[idx]: .6f} ± {stds[idx]:.6f}")
    lines.extend(_metadata_lines(summary))
    return "\n".join(lines)


def _counts_head(register: RegisterCounts, top: int, shots: str = "shots") -> str:
    shown = min(top, len(register.counts))
    return f"{register.shots} {shots}, {len(register.counts)} distinct outcome(s)" + (
        f", top {shown}" if shown < len(register.counts) else ""
    )


def _count_lines(register: RegisterCounts, top: int) -> list[str]:
    shown = register.top(top)
    width = max((len(b) for b, _, _ in shown), default=0)
    return [f"    {bits:>{width}}  {count:>8}  {p:8.4f}" for bits, count, p in shown]


def _format_pulser(summary: Summary, top: int) -> str:
    register = summary.pubs[0].registers[0]
    lines = [
        f"Pulser sequence result ({summary.form} form): " + _counts_head(register, top, "runs"),
        "  bitstring (one digit per atom)  count  probability:",
        *_count_lines(register, top),
    ]
    lines.extend(_metadata_lines(summary))
    return "\n".join(lines)


def _metadata_lines(summary: Summary) -> list[str]:
    return [
        f"{key}: {json.dumps(_plain(summary.metadata[key]))}"
        for key in ("execution", "usage", "version")
        if key in summary.metadata
    ]
