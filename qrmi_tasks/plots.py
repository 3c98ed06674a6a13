"""Figures of result summaries: counts histograms and expectation values with error bars.

Plays well with notebooks: nothing here calls ``matplotlib.use()`` or ``plt.show()``; a
figure is built with pyplot (as Qiskit's own ``plot_distribution`` does), closed from
pyplot again when the inline backend would otherwise show it twice, and returned, so
the user's other figures and their inline display are untouched.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any

from qrmi_tasks.summary import (
    DEFAULT_TOP,
    PubSummary,
    RegisterCounts,
    Summary,
    binding_text,
    display_label,
)

log = logging.getLogger("qrmi_tasks.plots")

# Beyond this many histograms (a long sweep) a figure is unreadable: the first ones are
# drawn and the title says how many were left out.
MAX_PANELS = 16


def plot_summary(summary: Summary, top: int = DEFAULT_TOP) -> Any:
    """A matplotlib Figure for ``summary``: one histogram per pub, register and binding
    (sampler, Pulser), or one error-bar panel per pub (estimator)."""
    with matplotlib_quiet():
        return _figure(summary, top)


class _AsDebug(logging.Handler):
    """Hands matplotlib's log records on as our debug lines."""

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("matplotlib: %s", record.getMessage())


@contextlib.contextmanager
def matplotlib_quiet() -> Iterator[None]:
    """matplotlib's warnings (Python warnings and its logger's records) as our debug lines.

    "Tight layout not applied" and missing-glyph notices are about the picture, not the
    result; printed at the default level they read as if the command had failed (``-v``
    shows them).
    """
    logger = logging.getLogger("matplotlib")
    handler, propagate = _AsDebug(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        for warning in caught or ():
            log.debug("matplotlib: %s: %s", warning.category.__name__, warning.message)


def _figure(summary: Summary, top: int) -> Any:
    import matplotlib.pyplot as plt

    if summary.kind == "estimator":
        panels: list[tuple[PubSummary, RegisterCounts | None]] = [
            (pub, None) for pub in summary.pubs if pub.evs is not None
        ]
    else:
        panels = [(pub, r) for pub in summary.pubs for r in pub.registers]
    total = len(panels)
    panels = panels[:MAX_PANELS]
    if not panels:
        raise ValueError("the result holds nothing to plot")
    fig = plt.figure(figsize=(8, 3.8 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (pub, register) in zip(axes, panels, strict=True):
        if register is None:
            _expectation_values(ax, pub)
        else:
            _histogram(ax, summary, pub, register, top)
    if total > len(panels):
        fig.suptitle(f"first {len(panels)} of {total} histograms", **_PLAIN)
    fig.tight_layout()
    if _inline():  # shown once: as the returned value, not again by the backend
        plt.close(fig)
    return fig


# Names of Jupyter's inline backend: matplotlib >= 3.9 reports the short one, and Qiskit's
# own matplotlib_close_if_inline misses it (the figure then shows twice).
_INLINE = {
    "inline",
    "module://matplotlib_inline.backend_inline",
    "module://ipykernel.pylab.backend_inline",
    "nbagg",
}


# Text from results and payloads (register names, observable labels, bindings) is drawn
# as written: matplotlib would parse a pair of '$' as mathtext, and crafted mathtext
# raises (ValueError) or draws something else. Every text we draw takes this.
_PLAIN = {"parse_math": False}


def _inline() -> bool:
    import matplotlib

    return matplotlib.get_backend().lower() in _INLINE


def _histogram(
    ax: Any, summary: Summary, pub: PubSummary, register: RegisterCounts, top: int
) -> None:
    shown = register.top(top)
    left_out = len(register.counts) - len(shown)
    if not left_out:  # every outcome drawn: in bitstring order, as a distribution reads
        shown.sort()
    labels = [bits for bits, _, _ in shown]
    # true probabilities (count / shots): renormalizing over the kept bars would draw
    # 0.165 for an outcome measured 15% of the time; the outcomes left out get one bar
    heights = [p for _, _, p in shown]
    if left_out:
        kept = sum(n for _, n, _ in shown)
        labels.append(f"rest ({left_out})")
        heights.append((register.shots - kept) / register.shots if register.shots else 0.0)
    colors = ["#648fff"] * len(shown) + ["#b0b0b0"] * bool(left_out)
    bars = ax.bar(range(len(labels)), heights, color=colors, zorder=3)
    if len(labels) <= 8:
        ax.bar_label(bars, fmt="%.3f", fontsize=9)
    ax.set_xticks(
        range(len(labels)),
        labels,
        rotation=70 if len(labels) > 8 or max(map(len, labels)) > 6 else 0,
        family="monospace",
        fontsize=9,
        **_PLAIN,
    )
    ax.set_ylim(0, max(heights, default=1.0) * 1.15 or 1.0)
    ax.grid(axis="y", linestyle="--", zorder=0)
    ax.set_ylabel("probability")
    if summary.kind == "pulser":
        ax.set_xlabel("bitstring (one digit per atom)")
        ax.set_title(f"Pulser sequence: {register.shots} runs", **_PLAIN)
        return
    parts = (
        f"{summary.unit} {pub.index}",
        f"register {register.name}",
        binding_text(register.binding),
    )
    where = ", ".join(part for part in parts if part)
    ax.set_xlabel("measured bitstring")
    ax.set_title(f"{where}: {register.shots} shots", **_PLAIN)


def _expectation_values(ax: Any, pub: PubSummary) -> None:
    import numpy as np

    evs = np.asarray(pub.evs, dtype=float)
    shape = evs.shape
    stds = np.broadcast_to(
        np.asarray(pub.stds if pub.stds is not None else 0.0, dtype=float), shape
    )
    indices = list(np.ndindex(shape)) or [()]
    labels = []
    for index in indices:
        name = display_label(pub.labels[index], 28) if pub.labels is not None else ""
        where = f"[{','.join(map(str, index))}]" if index else ""
        labels.append(" ".join(part for part in (name, where) if part) or "value")
    x = np.arange(len(indices))
    ax.errorbar(x, evs.ravel(), yerr=stds.ravel(), fmt="o", capsize=4, color="#b63b3b", zorder=3)
    ax.axhline(0, color="grey", linewidth=0.5)
    slanted = len(labels) > 6 or max(map(len, labels)) > 12  # side by side they would overlap
    ax.set_xticks(
        x,
        labels,
        rotation=30 if slanted else 0,
        ha="right" if slanted else "center",
        rotation_mode="anchor",
        family="monospace",
        **_PLAIN,
    )
    ax.set_xlabel("observable" if pub.labels is not None else "expectation value index")
    ax.set_ylabel("expectation value")
    ax.grid(axis="y", linestyle="--", zorder=0)
    ax.set_title(f"pub {pub.index}: {len(indices)} expectation value(s) ± std", **_PLAIN)
