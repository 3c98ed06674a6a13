"""Counts per circuit, as IQM Server and Alice & Bob Felis results hold them.

The runner writes those results as the services send them (docs/iqm-server.md,
docs/alice-bob-felis.md): IQM's ``{"measurement_counts": [...], "measurements": [...]}``
(one item per circuit, either may be null) and Felis's ``bits,count`` text lines. This
module reads both into :class:`CircuitResults`, with no Qiskit import: they carry no pub
structure, only a histogram per circuit.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from qrmi_tasks.errors import InputError
from qrmi_tasks.result_views import SummaryViews
from qrmi_tasks.summary import PubSummary, RegisterCounts, Summary

#: Felis's output: ``bits,count`` lines, no header (qiskit-alice-bob-provider's _get_counts);
#: 18 digits: beyond any shot count, within int64
_FELIS_LINE = re.compile(r"[01]+,[0-9]{1,18}")
_FELIS_WHOLE = re.compile(rf"\A(?:{_FELIS_LINE.pattern}\r?\n)*{_FELIS_LINE.pattern}\r?\n?\Z")
# a line that starts like one of them: a block next to it is not the whole output
_FELIS_LIKE = re.compile(r"[01]+,")


class CircuitCounts(Counter):
    """One circuit's ``{bitstring: count}`` (a ``collections.Counter``); ``register``
    names what the bits are (IQM's measurement keys joined with ``+``)."""

    def __init__(self, counts: dict[str, int], register: str) -> None:
        super().__init__(counts)
        self.register = register

    @property
    def shots(self) -> int:
        """How many shots the circuit ran (the sum of the counts)."""
        return sum(self.values())


class CircuitResults(SummaryViews, list):
    """A result of one or more circuits, one :class:`CircuitCounts` each, in order.

    ``form`` says where it came from: ``"iqm"`` or ``"felis"``. Summarizes, plots and
    shows itself in notebooks as the other result objects do.
    """

    def __init__(self, circuits: list[CircuitCounts], form: str) -> None:
        super().__init__(circuits)
        self.form = form

    def own_summary(self) -> Summary:
        """One entry per circuit, its register's counts (``summarize_object`` asks)."""
        pubs = [
            PubSummary(index, registers=[RegisterCounts(c.register, c.shots, dict(c))])
            for index, c in enumerate(self)
        ]
        return Summary("counts", self.form, pubs)


def is_iqm(document: Any) -> bool:
    """Whether ``document`` is IQM Server's result document (either artifact a list)."""
    return isinstance(document, dict) and any(
        isinstance(document.get(name), list) for name in ("measurement_counts", "measurements")
    )


def from_iqm(document: dict[str, Any], source: str) -> CircuitResults:
    """IQM's result document: ``measurement_counts`` if present, else counts made from
    the per-shot ``measurements`` (the keys' bits concatenated in the document's order,
    as IQM concatenates them in ``measurement_keys`` order)."""
    counts = document.get("measurement_counts")
    if isinstance(counts, list):
        where = f"{source}: measurement_counts"
        return CircuitResults(
            [_iqm_counts(item, f"{where}[{i}]") for i, item in enumerate(counts)], "iqm"
        )
    return CircuitResults(
        [
            _iqm_measurements(item, f"{source}: measurements[{i}]")
            for i, item in enumerate(document["measurements"])
        ],
        "iqm",
    )


def _iqm_counts(item: Any, where: str) -> CircuitCounts:
    if not isinstance(item, dict) or not isinstance(item.get("counts"), dict):
        raise InputError(f"{where} has no 'counts' object")
    keys = item.get("measurement_keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InputError(f"{where}: 'measurement_keys' is not a list of names")
    return CircuitCounts(_checked_counts(item["counts"], where), "+".join(keys) or "meas")


def _iqm_measurements(item: Any, where: str) -> CircuitCounts:
    if not isinstance(item, dict) or not item:
        raise InputError(f"{where} is not an object of measurement keys")
    columns: list[list[str]] = []
    for key, shots in item.items():
        if not isinstance(shots, list) or not all(
            isinstance(shot, list) and all(bit in (0, 1) and type(bit) is int for bit in shot)
            for shot in shots
        ):
            raise InputError(f"{where}.{key} is not a list of shots of 0/1 bits")
        columns.append(["".join(map(str, shot)) for shot in shots])
    if len({len(column) for column in columns}) != 1:
        raise InputError(f"{where}: the measurement keys hold different numbers of shots")
    shots = zip(*columns, strict=True)
    return CircuitCounts(Counter("".join(bits) for bits in shots), "+".join(item))


def _checked_counts(counts: dict[Any, Any], where: str) -> dict[str, int]:
    for bits, count in counts.items():
        if not re.fullmatch(r"[01]+", bits) or type(count) is not int or count < 0:
            raise InputError(f"{where}: {bits!r}: {count!r} is not a bitstring and a count")
    return counts


def felis_text(text: str) -> str | None:
    """The Felis output in ``text``: all of it, or the first run of ``bits,count`` lines
    among a ``slurm-N.out``'s log lines; None if there is none.

    A run next to a line that starts like one of them (``10,abc``) is a damaged output,
    not part of one: never read in part.
    """
    if _FELIS_WHOLE.match(text):
        return text
    lines = text.splitlines()
    start = 0
    while start < len(lines):
        if not _FELIS_LINE.fullmatch(lines[start]):
            start += 1
            continue
        end = start
        while end < len(lines) and _FELIS_LINE.fullmatch(lines[end]):
            end += 1
        neighbours = lines[start - 1 : start] if start else []
        neighbours += lines[end : end + 1]
        if not any(_FELIS_LIKE.match(line) for line in neighbours):
            return "\n".join(lines[start:end]) + "\n"
        start = end
    return None


def from_felis(text: str) -> CircuitResults:
    """Felis's ``bits,count`` lines (as :func:`felis_text` found them): one circuit."""
    counts: Counter[str] = Counter()
    for line in text.split():
        bits, count = line.split(",")
        counts[bits] += int(count)
    return CircuitResults([CircuitCounts(counts, "bits")], "felis")
