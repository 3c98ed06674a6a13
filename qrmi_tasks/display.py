"""HTML for notebooks (``_repr_html_``) of result summaries and payloads.

No qiskit or pulser import: works on :class:`~qrmi_tasks.results.Summary` and on payload
documents.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from qrmi_tasks.summary import Summary, binding_text, display_label

# Counts shown per register in a notebook (``qrmi-result summary -k`` shows more).
HTML_TOP = 8
_STYLE = "border-collapse:collapse;margin:2px 0 8px 0;font-size:90%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:1px 8px'>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='padding:1px 8px'>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table style='{_STYLE}'><tr>{head}</tr>{body}</table>"


def summary_html(summary: Summary, top: int = HTML_TOP) -> str:
    """A compact HTML view: per pub and binding the top counts, or evs ± std."""
    import numpy as np

    if summary.kind == "pulser":
        register = summary.pubs[0].registers[0]
        title = (
            f"<b>Pulser sequence result</b>: {register.shots} runs, "
            f"{len(register.counts)} distinct bitstrings (one digit per atom)"
        )
        return f"<div>{title}{_counts_table(register, top)}</div>"
    parts = [
        f"<b>{escape(summary.kind.capitalize())} result</b> "
        f"({escape(summary.form)} form), {len(summary.pubs)} {summary.unit}(s)"
    ]
    for pub in summary.pubs:
        shape = f", shape {list(pub.shape)}" if pub.shape else ""
        parts.append(f"<div><b>{summary.unit} {pub.index}</b>{escape(shape)}</div>")
        for register in pub.registers:
            where = f", {binding_text(register.binding)}" if register.binding else ""
            parts.append(
                f"<div style='margin-left:1em'>register <code>{escape(register.name)}</code>"
                f"{escape(where)}: {register.shots} shots, {len(register.counts)} distinct"
                f"{_counts_table(register, top)}</div>"
            )
        if pub.evs is not None:
            evs = np.asarray(pub.evs, dtype=float)
            stds = np.broadcast_to(
                np.asarray(pub.stds if pub.stds is not None else np.nan, dtype=float), evs.shape
            )
            rows = []
            for index in list(np.ndindex(evs.shape)) or [()]:
                label = "" if pub.labels is None else str(pub.labels[index])
                rows.append(
                    [
                        escape(",".join(map(str, index))),
                        _label_html(label),
                        f"{evs[index]: .6f} ± {stds[index]:.6f}",
                    ]
                )
            parts.append(
                "<div style='margin-left:1em'>"
                + _table(["index", "observable", "expectation value ± std"], rows)
                + "</div>"
            )
    return "<div>" + "".join(parts) + "</div>"


def _label_html(label: str) -> str:
    """A shortened observable label; the whole one shows on hover."""
    shown = display_label(label)
    title = f" title='{escape(label)}'" if shown != label else ""
    return f"<code{title}>{escape(shown)}</code>"


def _counts_table(register: Any, top: int) -> str:
    shown = register.top(top)
    rows = [[f"<code>{escape(b)}</code>", str(n), f"{p:.4f}"] for b, n, p in shown]
    more = len(register.counts) - len(shown)
    if more > 0:
        rows.append([f"… {more} more", "", ""])
    return _table(["bitstring", "count", "probability"], rows)


# -- payloads ------------------------------------------------------------------------------
# Declarations in OpenQASM 2 and 3 (registers are what the sampler's result is keyed by).
_QASM3_BITS = re.compile(r"^\s*bit(?:\[(\d+)\])?\s+(\w+)\s*;", re.M)
_QASM2_CREG = re.compile(r"^\s*creg\s+(\w+)\s*\[(\d+)\]\s*;", re.M)
_QASM3_QUBITS = re.compile(r"^\s*qubit(?:\[(\d+)\])?\s+\w+\s*;", re.M)
_QASM2_QREG = re.compile(r"^\s*qreg\s+\w+\s*\[(\d+)\]\s*;", re.M)
_PHYSICAL = re.compile(r"\$(\d+)")


def circuit_facts(qasm: str) -> tuple[int, list[str]]:
    """(qubits used, classical registers as ``name[n]``) of an OpenQASM circuit."""
    registers = [f"{name}[{n or 1}]" for n, name in _QASM3_BITS.findall(qasm)]
    registers += [f"{name}[{n}]" for name, n in _QASM2_CREG.findall(qasm)]
    qubits = sum(int(n or 1) for n in _QASM3_QUBITS.findall(qasm))
    qubits += sum(int(n) for n in _QASM2_QREG.findall(qasm))
    if not qubits:  # ISA circuits address physical qubits ($0, $5, ...)
        qubits = len(set(_PHYSICAL.findall(qasm)))
    return qubits, registers


def _shape(values: Any) -> list[int]:
    shape = []
    while isinstance(values, list) and values:
        shape.append(len(values))
        values = values[0]
    return shape


def payload_html(kind: str, document: dict[str, Any], backend: str | None = None) -> str:
    """An HTML view of a payload document: pubs, shots, registers, observables."""
    if "sequence" in document:
        return (
            f"<div><b>Pulser sequence payload</b>: {escape(str(document.get('job_runs')))} runs"
            "</div>"
        )
    if "iqmjson" in document:
        job = document["iqmjson"] if isinstance(document["iqmjson"], dict) else {}
        return (
            f"<div><b>IQM {escape(str(document.get('job_type')))} job payload</b>: "
            f"{len(job.get('circuits') or [])} circuit(s), shots={escape(str(job.get('shots')))}"
            "</div>"
        )
    if "human_qir" in document:
        lines = len(str(document["human_qir"]).splitlines())
        params_text = escape(json.dumps(document.get("input_params")))
        return (
            f"<div><b>QIR payload</b> (Alice &amp; Bob Felis): {lines} lines, {params_text}</div>"
        )
    params = document["parameters"]
    estimator = document.get("program_id") == "estimator"
    shots = params.get("shots") or (params.get("options") or {}).get("default_shots")
    facts = [f"{len(params['pubs'])} pub(s)"]
    if shots:
        facts.append(f"shots={shots}")
    if params.get("precision"):
        facts.append(f"precision={params['precision']}")
    facts.append(f"target={backend}" if backend else "not transpiled (runs on 'local')")
    facts.append(f"support_qiskit={bool(params.get('support_qiskit', True))}")
    rows = []
    for index, pub in enumerate(params["pubs"]):
        qasm = pub[0] if isinstance(pub[0], str) else ""
        qubits, registers = circuit_facts(qasm)
        rest = pub[1:]
        observables = rest.pop(0) if estimator and rest else None
        values = rest.pop(0) if rest else None
        last = rest.pop(0) if rest else None
        bindings = _shape(values)[:-1] if values else []
        row = [str(index), str(qubits or "?")]
        if estimator:
            from qrmi_tasks.summary import observable_label

            row.append(_label_html(str(observable_label(observables))))
        else:
            row.append(escape(", ".join(registers) or "-"))
        row.append(escape(str(bindings) if bindings else "-"))
        row.append(escape(str(last)) if last is not None else "")
        rows.append(row)
    header = [
        "pub",
        "qubits",
        "observables" if estimator else "registers",
        "bindings",
        "precision" if estimator else "shots",
    ]
    title = f"<b>{escape(str(kind).capitalize())} payload</b>: {escape(', '.join(facts))}"
    return f"<div>{title}{_table(header, rows)}</div>"
