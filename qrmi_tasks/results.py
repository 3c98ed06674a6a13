"""Read runner outputs and summarize them: counts for samplers and Pulser, expectation
values for estimators.

Handles the three result forms the runner writes: a PrimitiveResult encoded with
qiskit-ibm-runtime's RuntimeEncoder, IBM's plain-JSON primitive result
(``support_qiskit: false``), and Pasqal's ``{"counter": {...}}``. Each file is read and
parsed once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qrmi_tasks.errors import InputError
from qrmi_tasks.payload import read_input

DEFAULT_TOP = 16


@dataclass
class RegisterCounts:
    """Counts of one classical register of one pub (or of a Pulser run)."""

    name: str
    shots: int
    counts: dict[str, int]

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


@dataclass
class Summary:
    """A whole result file, summarized."""

    kind: str  # "sampler", "estimator" or "pulser"
    form: str  # "qiskit" (RuntimeEncoder), "plain-json" or "pasqal"
    pubs: list[PubSummary]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, top: int = DEFAULT_TOP) -> dict[str, Any]:
        """JSON-ready form (``qrmi-result summary --json``)."""
        pubs = []
        for pub in self.pubs:
            entry: dict[str, Any] = {"index": pub.index}
            if pub.registers:
                entry["registers"] = [
                    {
                        "name": r.name,
                        "shots": r.shots,
                        "distinct": len(r.counts),
                        "top": [
                            {"bitstring": b, "count": n, "probability": round(p, 6)}
                            for b, n, p in r.top(top)
                        ],
                    }
                    for r in pub.registers
                ]
            if pub.evs is not None:
                entry["evs"] = _plain(pub.evs)
                entry["stds"] = _plain(pub.stds)
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


def _read_text(path: str | Path) -> str:
    try:
        return read_input(path, "result").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read result file {path}: {exc}") from None


def load(path: str | Path) -> Any:
    """Decode a runner output: a ``PrimitiveResult`` (RuntimeEncoder form) or a plain dict.

    Pasqal results come back as ``{"counter": {...}}``; plain-JSON primitive results as
    the dict IBM's result schemas describe.
    """
    text = _read_text(path)
    try:
        if text.lstrip().startswith('{"__type__"'):
            from qiskit_ibm_runtime import RuntimeDecoder

            return json.loads(text, cls=RuntimeDecoder)
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path} is not a runner result (invalid JSON: {exc})") from None


def summarize(path: str | Path) -> Summary:
    """Load ``path`` and summarize it, whatever its form."""
    result = load(path)
    if isinstance(result, dict):
        if isinstance(result.get("counter"), dict):
            return _summarize_counter(result["counter"])
        if isinstance(result.get("results"), list):
            return _summarize_plain(result, path)
        raise InputError(f"{path} is not a runner result (no 'counter' or 'results')")
    if hasattr(result, "__iter__") and hasattr(result, "metadata"):
        return _summarize_primitive(result)
    raise InputError(f"{path} is not a runner result")


def _summarize_counter(counter: dict[str, Any]) -> Summary:
    counts = {str(k): int(v) for k, v in counter.items()}
    register = RegisterCounts("counter", sum(counts.values()), counts)
    return Summary("pulser", "pasqal", [PubSummary(0, registers=[register])])


def _summarize_primitive(result: Any) -> Summary:
    from qiskit.primitives.containers import BitArray

    pubs, kind = [], "sampler"
    for index, pub in enumerate(result):
        summary = PubSummary(index, metadata=dict(pub.metadata))
        for name, value in pub.data.items():
            if isinstance(value, BitArray):
                counts = value.get_counts()
                summary.registers.append(RegisterCounts(name, sum(counts.values()), counts))
        if "evs" in pub.data:
            kind = "estimator"
            summary.evs, summary.stds = pub.data.evs, pub.data.stds
        pubs.append(summary)
    return Summary(kind, "qiskit", pubs, dict(result.metadata))


def _hex_counts(samples: Any, num_bits: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    stack = [samples]
    while stack:  # samples may be nested by the pub's shape
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            counts[format(int(str(item), 16), f"0{num_bits}b")] += 1
    return counts


def _summarize_plain(result: dict[str, Any], path: str | Path) -> Summary:
    pubs, kind = [], "sampler"
    for index, pub in enumerate(result["results"]):
        data = pub.get("data") if isinstance(pub, dict) else None
        if not isinstance(data, dict):
            raise InputError(f"{path}: results[{index}] has no 'data' object")
        summary = PubSummary(index, metadata=pub.get("metadata") or {})
        if "evs" in data:
            kind = "estimator"
            summary.evs, summary.stds = data["evs"], data.get("stds")
        else:
            for name, register in data.items():
                if not isinstance(register, dict) or "samples" not in register:
                    continue
                try:
                    counts = _hex_counts(register["samples"], int(register.get("num_bits", 0)))
                except (TypeError, ValueError):
                    raise InputError(f"{path}: results[{index}].data.{name}: bad samples") from None
                summary.registers.append(RegisterCounts(name, sum(counts.values()), dict(counts)))
        pubs.append(summary)
    return Summary(kind, "plain-json", pubs, result.get("metadata") or {})


def format_text(summary: Summary, top: int = DEFAULT_TOP) -> str:
    """Human-readable summary (``qrmi-result summary``)."""
    import numpy as np

    lines = [f"{summary.kind} result ({summary.form} form), {len(summary.pubs)} pub(s)"]
    for pub in summary.pubs:
        if summary.kind != "pulser":
            lines.append(f"pub {pub.index}:")
        for register in pub.registers:
            shown = register.top(top)
            lines.append(
                f"  register {register.name}: {register.shots} shots, "
                f"{len(register.counts)} distinct outcome(s)"
                + (f", top {len(shown)}" if len(shown) < len(register.counts) else "")
            )
            width = max((len(b) for b, _, _ in shown), default=0)
            for bits, count, probability in shown:
                lines.append(f"    {bits:>{width}}  {count:>8}  {probability:8.4f}")
        if pub.evs is not None:
            evs = np.atleast_1d(np.asarray(pub.evs, dtype=float))
            stds = np.atleast_1d(
                np.asarray(pub.stds if pub.stds is not None else np.nan, dtype=float)
            )
            stds = np.broadcast_to(stds, evs.shape)
            lines.append(f"  expectation values (shape {list(evs.shape)}):")
            for idx in np.ndindex(evs.shape):
                label = ",".join(map(str, idx))
                lines.append(f"    [{label}]  {evs[idx]: .6f} ± {stds[idx]:.6f}")
    for key in ("execution", "usage", "version"):
        if key in summary.metadata:
            lines.append(f"{key}: {json.dumps(_plain(summary.metadata[key]))}")
    return "\n".join(lines)


def plot(summary: Summary, output: str | Path, top: int = DEFAULT_TOP) -> None:
    """Write a PNG: a counts histogram (sampler, Pulser) or expectation values with errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = (
        [(p, r) for p in summary.pubs for r in p.registers]
        if summary.kind != "estimator"
        else [(p, None) for p in summary.pubs]
    )
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    for ax, (pub, register) in zip(axes[:, 0], panels, strict=True):
        if register is not None:
            shown = register.top(top)
            labels = [b for b, _, _ in shown]
            ax.bar(range(len(shown)), [p for _, _, p in shown], color="#3b6fb6")
            ax.set_xticks(
                range(len(shown)),
                labels,
                rotation=60 if len(labels) > 8 else 0,
                fontsize=8 if len(labels) > 8 else 10,
                family="monospace",
            )
            ax.set_xlabel("measured bitstring")
            ax.set_ylabel("probability")
            extra = (
                f" (top {len(shown)} of {len(register.counts)})"
                if len(shown) < len(register.counts)
                else ""
            )
            title = f"{register.name}: {register.shots} shots{extra}"
            ax.set_title(title if summary.kind == "pulser" else f"pub {pub.index}, {title}")
        else:
            evs = np.ravel(np.asarray(pub.evs, dtype=float))
            stds = np.ravel(
                np.broadcast_to(
                    np.asarray(pub.stds if pub.stds is not None else 0.0, dtype=float),
                    np.shape(pub.evs),
                )
            )
            ax.errorbar(range(len(evs)), evs, yerr=stds, fmt="o", capsize=4, color="#b63b3b")
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.set_xlabel("observable / parameter index")
            ax.set_ylabel("expectation value")
            ax.set_title(f"pub {pub.index}: {len(evs)} expectation value(s)")
    fig.tight_layout()
    fig.savefig(output, format="png", dpi=100)
    plt.close(fig)
