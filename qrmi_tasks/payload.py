"""Parse and validate QRMI payload files before anything touches the network.

Two kinds (see ``qrmi_payload_v1_schema.json``):

* ``qiskit``: ``{"program_id": "estimator"|"sampler", "parameters": {"pubs": [...], ...}}``
* ``pulser``: ``{"sequence": <abstract repr object or its JSON string>, "job_runs": N}``
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from qrmi_tasks.errors import PayloadError

QISKIT = "qiskit"
PULSER = "pulser"
PROGRAM_IDS = ("estimator", "sampler")
SCHEMA_FILE = "qrmi_payload_v1_schema.json"
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class Payload:
    """A validated payload document."""

    kind: Literal["qiskit", "pulser"]
    document: dict[str, Any]
    source: str = "<payload>"

    @property
    def program_id(self) -> str:
        return self.document["program_id"]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.document["parameters"]

    @property
    def job_runs(self) -> int:
        return self.document["job_runs"]

    @cached_property
    def sequence_json(self) -> str:
        """The sequence as the abstract-repr JSON string, never double-encoded."""
        sequence = self.document["sequence"]
        return sequence if isinstance(sequence, str) else json.dumps(sequence)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the payload's canonical JSON (stable across key order and whitespace)."""
        document = dict(self.document)
        if self.kind == PULSER:
            # object and string forms of the same sequence are the same task
            document["sequence"] = json.loads(self.sequence_json)
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """Short human description for logs."""
        if self.kind == QISKIT:
            return f"{self.program_id} with {len(self.parameters['pubs'])} pub(s)"
        return f"Pulser sequence, {self.job_runs} run(s)"


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def read_input(path: str | Path, what: str) -> bytes:
    """A user-given file's bytes, or a one-line PayloadError naming what it was for."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PayloadError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise PayloadError(f"{what} file {path} is a directory, not a file") from None
    except OSError as exc:
        raise PayloadError(f"cannot read {what} file {path}: {exc.strerror}") from None


def load_payload(path: str | Path) -> Payload:
    """Read and validate a payload file (structure only; see :func:`validate_sequence`)."""
    path = Path(path)
    raw = read_input(path, "payload")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"payload file {path} is not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    return parse_payload(text, source=str(path))


def parse_payload(text: str, source: str = "<payload>") -> Payload:
    """Parse and validate payload text."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise PayloadError(f"{source} is nested too deeply to be a payload") from None
    return check_document(document, source)


def check_document(document: Any, source: str = "<payload>") -> Payload:
    """Validate an already-decoded payload document."""
    if not isinstance(document, dict):
        raise PayloadError(
            f"{source} must hold a JSON object with 'program_id' and 'parameters' or "
            f"'sequence' and 'job_runs', not {_type_name(document)}"
        )
    if "program_id" in document:
        payload = Payload(QISKIT, document, source)
        _check_primitive(document, source)
    elif "sequence" in document:
        payload = Payload(PULSER, document, source)
        _check_pulser(document, source)
    else:
        keys = ", ".join(sorted(map(repr, document))) or "none"
        raise PayloadError(
            f"{source}: cannot tell the payload kind: expected 'program_id' (Qiskit primitive) "
            f"or 'sequence' (Pulser); keys found: {_short(keys)}"
        )
    _check_schema(document, source)
    return payload


def _check_primitive(document: dict[str, Any], source: str) -> None:
    program_id = document["program_id"]
    if program_id not in PROGRAM_IDS:
        raise PayloadError(
            f"{source}: unknown program_id {_short(json.dumps(program_id))}; "
            f"use 'estimator' or 'sampler'"
        )
    if "parameters" not in document:
        raise PayloadError(f"{source}: missing 'parameters' (the {program_id} input object)")
    params = document["parameters"]
    if not isinstance(params, dict):
        raise PayloadError(f"{source}: 'parameters' must be an object, not {_type_name(params)}")
    if "pubs" not in params:
        raise PayloadError(f"{source}: 'parameters' has no 'pubs' list")
    pubs = params["pubs"]
    if not isinstance(pubs, list) or not pubs:
        raise PayloadError(f"{source}: 'parameters.pubs' must be a non-empty list of pubs")
    min_items = 2 if program_id == "estimator" else 1
    for index, pub in enumerate(pubs):
        if not isinstance(pub, list) or len(pub) < min_items:
            shape = "[circuit, observables, ...]" if min_items == 2 else "[circuit, ...]"
            raise PayloadError(f"{source}: pubs[{index}] must be a list {shape} for {program_id}")
        if not isinstance(pub[0], str | dict):
            raise PayloadError(
                f"{source}: pubs[{index}][0] must be a circuit (OpenQASM string or encoded QPY)"
            )
    if "version" in params and (params["version"] != 2 or isinstance(params["version"], bool)):
        raise PayloadError(
            f"{source}: 'parameters.version' must be 2 (V2 primitives), got "
            f"{_short(json.dumps(params['version']))}"
        )
    if "support_qiskit" in params and not isinstance(params["support_qiskit"], bool):
        raise PayloadError(f"{source}: 'parameters.support_qiskit' must be true or false")


def _check_pulser(document: dict[str, Any], source: str) -> None:
    sequence = document["sequence"]
    if isinstance(sequence, str):
        try:
            decoded = json.loads(sequence)
        except (json.JSONDecodeError, RecursionError):
            raise PayloadError(
                f"{source}: 'sequence' is a string but not the JSON of a Pulser abstract "
                "representation"
            ) from None
        if not isinstance(decoded, dict):
            raise PayloadError(f"{source}: 'sequence' string must encode a JSON object")
    elif not isinstance(sequence, dict):
        raise PayloadError(
            f"{source}: 'sequence' must be a Pulser abstract representation (object or its "
            f"JSON string), not {_type_name(sequence)}"
        )
    if "job_runs" not in document:
        raise PayloadError(f"{source}: missing 'job_runs' (number of shots, an integer >= 1)")
    runs = document["job_runs"]
    if type(runs) is not int or runs < 1:
        raise PayloadError(
            f"{source}: 'job_runs' must be an integer >= 1, got {_short(json.dumps(runs))}"
        )


_validator = None


def _schema_validator():
    global _validator
    if _validator is None:
        import jsonschema

        schema = json.loads(resources.files("qrmi_tasks").joinpath(SCHEMA_FILE).read_text())
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


def _check_schema(document: dict[str, Any], source: str) -> None:
    # The hand-written checks above give the precise messages; the schema is the
    # published contract and catches whatever they do not cover.
    import jsonschema

    error = jsonschema.exceptions.best_match(_schema_validator().iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PayloadError(f"{source}: {where}: {_short(error.message)}")


def rebuild_sequence(text: str) -> Any:
    """Rebuild an abstract-representation sequence with Pulser (a ``pulser.Sequence``).

    Imports pulser (about a second). A sequence Pulser refuses is a PayloadError
    ``not a valid Pulser sequence: <Pulser's first line>``.
    """
    from qrmi_tasks.quiet import quiet_import_warnings

    with quiet_import_warnings():
        from pulser import Sequence

    try:
        return Sequence.from_abstract_repr(text)
    except Exception as exc:  # pulser raises many types: schema, value, key, type errors
        detail = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PayloadError(f"not a valid Pulser sequence: {_short(detail)}") from None


def validate_sequence(payload: Payload) -> None:
    """Rebuild a Pulser payload's sequence with Pulser: the deep check before submitting.

    Imports pulser (about a second), so the runner calls it only for Pulser payloads.
    """
    if payload.kind != PULSER:
        return
    try:
        rebuild_sequence(payload.sequence_json)
    except PayloadError as exc:
        raise PayloadError(f"{payload.source}: 'sequence' is {exc.message}") from None
