"""Read runner outputs and summarize them: counts for samplers and Pulser, expectation
values for estimators.

Handles the result forms the runner writes: a PrimitiveResult encoded with
qiskit-ibm-runtime's RuntimeEncoder, IBM's plain-JSON primitive result
(``support_qiskit: false``), Pasqal's ``{"counter": {...}}``, IQM Server's
``measurement_counts``/``measurements`` document and Felis's ``bits,count`` lines.
:func:`load` turns each into the ecosystem's object (a Qiskit ``PrimitiveResult``, a
Pulser counter, counts per circuit), also when the result sits among log lines in a
``slurm-N.out``. Summaries keep every pub and
every parameter binding apart.

Light to import (``qrmi-result --help``): qiskit is imported by :func:`load`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from qrmi_tasks.circuit_counts import felis_text, from_felis, from_iqm, is_iqm
from qrmi_tasks.errors import InputError
from qrmi_tasks.readers import STDIN, read_input, read_stdin, too_many_digits
from qrmi_tasks.summary import (
    DEFAULT_TOP,
    PubSummary,
    RegisterCounts,
    Summary,
    binding_text,
    format_text,
    observable_label,
    summarize_object,
)

__all__ = [
    "DEFAULT_TOP",
    "PubSummary",
    "RegisterCounts",
    "Summary",
    "binding_text",
    "extract",
    "format_text",
    "from_document",
    "load",
    "observable_label",
    "observable_labels",
    "summarize",
]


def _read_text(path: str | Path) -> str:
    """A result file's text; ``-`` is standard input (``... | qrmi-result summary -``)."""
    raw = read_stdin("result") if str(path) == STDIN else read_input(path, "result")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read result file {_name(path)}: {exc}") from None


def _name(path: str | Path) -> str:
    return "standard input" if str(path) == STDIN else str(path)


# A result document starts a line: the runner writes it whole, and the log lines around
# it in a shared slurm-N.out end with a newline (the result too, since it ends with one).
_LINE_START_BRACE = re.compile(r"(?m)^\{")


def _is_result(document: Any) -> bool:
    return isinstance(document, dict) and (
        "__type__" in document
        or isinstance(document.get("results"), list)
        or isinstance(document.get("counter"), dict)
        or is_iqm(document)
    )


def extract(text: str, source: str | Path = "<result>") -> tuple[str, Any]:
    """The result JSON in ``text`` (its text and the parsed document).

    ``text`` is a result file or a ``slurm-N.out`` holding log lines around the result
    (stdout and stderr share it under ``sbatch`` without ``-o``). The first JSON object
    that starts a line and looks like a result wins.
    """
    try:
        return text, json.loads(text)
    except (ValueError, RecursionError) as exc:
        problem = too_many_digits(exc) if isinstance(exc, ValueError) else None
        if problem:  # no line of it decodes either
            raise InputError(f"{source} {problem}") from None
        whole_error = exc
    decoder = json.JSONDecoder()
    for match in _LINE_START_BRACE.finditer(text):
        try:
            document, end = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if _is_result(document):
            return text[match.start() : end], document
    raise InputError(
        f"{source} is not a runner result (invalid JSON: {whole_error}; no result found "
        "among its lines either)"
    )


def load(path: str | Path, payload: Any = None) -> Any:
    """Read a runner output as the ecosystem's object.

    Qiskit results (both the RuntimeEncoder and the plain-JSON form) come back as a
    ``PrimitiveResult`` (:class:`~qrmi_tasks.result_objects.QrmiResult`: sampler pubs
    hold ``BitArray`` registers, estimator pubs ``evs``/``stds``); Pasqal results as a
    :class:`~qrmi_tasks.result_objects.PulserCounts` counter. ``path`` may also be a
    ``slurm-N.out`` with log lines around the result, or ``-`` (standard input).
    ``payload`` (a path, dict or payload object) names the estimator's observables in
    summaries and plots.
    """
    text = _read_text(path)
    try:
        text, document = extract(text, _name(path))
    except InputError:
        felis = felis_text(text)  # Felis's result is text, not JSON
        if felis is None:
            raise
        return from_felis(felis)
    return from_document(text, document, _name(path), payload)


def from_document(text: str, document: Any, source: str, payload: Any = None) -> Any:
    """The object for one parsed result document (``text`` is its JSON text)."""
    if not _is_result(document):
        raise InputError(f"{source} is not a runner result (no 'counter' or 'results')")
    if is_iqm(document):
        return from_iqm(document, source)
    from qrmi_tasks import result_objects

    if "__type__" in document:
        from qiskit_ibm_runtime import RuntimeDecoder

        from qrmi_tasks.inflate import InflateError, check_document

        try:  # RuntimeDecoder inflates without a bound
            check_document(document)
        except InflateError as exc:
            raise InputError(f"{source}: cannot decode the Qiskit result: {exc}") from None
        try:
            decoded = json.loads(text, cls=RuntimeDecoder)
        except Exception as exc:  # the SDK raises whatever its decoders meet
            raise InputError(f"{source}: cannot decode the Qiskit result: {exc}") from None
        if not (hasattr(decoded, "__iter__") and hasattr(decoded, "metadata")):
            raise InputError(f"{source} is not a runner result")
        result = result_objects.from_decoded(decoded)
    elif isinstance(document.get("counter"), dict):
        try:
            return result_objects.PulserCounts(
                {str(k): int(v) for k, v in document["counter"].items()}
            )
        except (TypeError, ValueError):
            raise InputError(f"{source}: the counter holds non-integer counts") from None
    else:
        result = result_objects.from_plain(document, source)
    if payload is not None:
        result.observables = observable_labels(payload)
    return result


# -- observables ---------------------------------------------------------------------------
def _payload_document(payload: Any) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    document = getattr(payload, "document", None)
    if isinstance(document, dict):
        return document
    from qrmi_tasks.payload import load_payload

    return load_payload(payload).document


def observable_labels(payload: Any) -> list[Any] | None:
    """Per pub, the observables' labels as nested lists (None: not an estimator payload)."""
    document = _payload_document(payload)
    if document.get("program_id") != "estimator":
        return None
    labels = []
    for pub in document["parameters"]["pubs"]:
        labels.append(observable_label(pub[1]) if isinstance(pub, list) and len(pub) > 1 else None)
    return labels


def summarize(source: Any, payload: Any = None) -> Summary:
    """Summarize a result file (path) or an object :func:`load` returned."""
    result = load(source, payload) if isinstance(source, str | Path) else source
    return summarize_object(result)
