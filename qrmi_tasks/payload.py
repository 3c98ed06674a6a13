"""Parse and validate QRMI payload files before anything touches the network.

Four kinds (see ``qrmi_payload_v1_schema.json``; qrmi's ``Payload`` has the same four):

* ``qiskit``: ``{"program_id": "estimator"|"sampler", "parameters": {"pubs": [...], ...}}``
* ``pulser``: ``{"sequence": <abstract repr object or its JSON string>, "job_runs": N}``
* ``iqm``: ``{"iqmjson": <IQM job object or its JSON string>, "job_type": "circuit"|"run"|
  "sweep", "use_timeslot"?: bool, "tag"?: str}`` (IQM Server)
* ``qir``: ``{"human_qir": <human-readable QIR text>, "input_params": {...}}`` (Alice & Bob
  Felis)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from qrmi_tasks.errors import PayloadError, first_line
from qrmi_tasks.inflate import InflateError
from qrmi_tasks.inflate import check_document as check_compressed
from qrmi_tasks.readers import decode_json, read_text_input, short_text

QISKIT = "qiskit"
PULSER = "pulser"
IQM = "iqm"
QIR = "qir"
PROGRAM_IDS = ("estimator", "sampler")
IQM_JOB_TYPES = ("circuit", "run", "sweep")
#: IQM Server's limit on a job's tag (qrmi_payload_v1_schema.json 0.4.0)
IQM_TAG_LIMIT = 50
#: the key that tells each kind apart, in the order they are looked for
_KIND_KEYS = (("program_id", QISKIT), ("sequence", PULSER), ("iqmjson", IQM), ("human_qir", QIR))
SCHEMA_FILE = "qrmi_payload_v1_schema.json"

# The only OpenQASM includes a service (or the local simulator) provides itself; any other
# name would be read from the node's file system, which a payload must never reach.
STANDARD_INCLUDES = {2: "qelib1.inc", 3: "stdgates.inc"}
_QASM_VERSION = re.compile(r"\A(?:\s|//[^\n]*(?:\n|\Z)|/\*[\s\S]*?\*/)*OPENQASM\s+(\d+)")
# What the include scanner stops at: a comment, a string, or the ``include`` keyword. One
# fixed-length alternative each: a failed try costs a few characters, never a rescan.
_QASM_MARK = re.compile(r"//|/\*|[\"']|(?<![\w$])include(?![\w$])")
_BLANK = re.compile(r"\s*")


@dataclass(frozen=True)
class CheckedPayload:
    """A payload document that passed the runner's checks, with where it came from.

    (What ``generators`` builds for users is :class:`generators.Payload`; the runner turns
    every payload, whatever its origin, into this.)
    """

    kind: Literal["qiskit", "pulser", "iqm", "qir"]
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
    def iqm_json(self) -> str:
        """The IQM job as a JSON string (the ``iqmjson`` object or string, never
        double-encoded)."""
        job = self.document["iqmjson"]
        return job if isinstance(job, str) else json.dumps(job)

    @cached_property
    def sequence(self) -> Any:
        """The Pulser sequence rebuilt by Pulser, once (imports pulser; PayloadError when
        Pulser refuses it, naming the payload)."""
        try:
            return rebuild_sequence(self.sequence_json)
        except PayloadError as exc:
            raise PayloadError(f"{self.source}: 'sequence' is {exc.message}") from None

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the payload's canonical JSON (stable across key order and whitespace)."""
        document = dict(self.document)
        # object and string forms of the same sequence (IQM job) are the same task
        if self.kind == PULSER:
            document["sequence"] = json.loads(self.sequence_json)
        elif self.kind == IQM:
            document["iqmjson"] = json.loads(self.iqm_json)
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """Short human description for logs."""
        if self.kind == QISKIT:
            return f"{self.program_id} with {len(self.parameters['pubs'])} pub(s)"
        if self.kind == IQM:
            return f"IQM {self.document['job_type']} job"
        if self.kind == QIR:
            return f"QIR program ({len(self.document['human_qir'].splitlines())} lines)"
        return f"Pulser sequence, {self.job_runs} run(s)"


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def load_payload(path: str | Path) -> CheckedPayload:
    """Read and validate a payload file (structure only; see :func:`validate_sequence`)."""
    path = Path(path)
    return parse_payload(read_text_input(path, "payload", error=PayloadError), source=str(path))


def parse_payload(text: str, source: str = "<payload>") -> CheckedPayload:
    """Parse and validate payload text."""
    return check_document(decode_json(text, source), source)


def check_document(document: Any, source: str = "<payload>") -> CheckedPayload:
    """Validate an already-decoded payload document."""
    if not isinstance(document, dict):
        raise PayloadError(
            f"{source} must hold a JSON object with 'program_id' and 'parameters' (Qiskit), "
            f"'sequence' and 'job_runs' (Pulser), 'iqmjson' and 'job_type' (IQM) or "
            f"'human_qir' and 'input_params' (QIR), not {_type_name(document)}"
        )
    kinds = [kind for key, kind in _KIND_KEYS if key in document]
    if len(kinds) > 1:
        keys = ", ".join(repr(key) for key, kind in _KIND_KEYS if kind in kinds)
        raise PayloadError(f"{source}: {keys} belong to different payload kinds; keep one")
    if not kinds:
        keys = ", ".join(sorted(map(repr, document))) or "none"
        raise PayloadError(
            f"{source}: cannot tell the payload kind: expected 'program_id' (Qiskit primitive), "
            f"'sequence' (Pulser), 'iqmjson' (IQM) or 'human_qir' (QIR); keys found: "
            f"{short_text(keys)}"
        )
    payload = CheckedPayload(kinds[0], document, source)
    _CHECKERS[payload.kind](document, source)
    if payload.kind not in _SCHEMA_COVERED:
        _check_schema(document, source)
    return payload


def _check_primitive(document: dict[str, Any], source: str) -> None:
    program_id = document["program_id"]
    if program_id not in PROGRAM_IDS:
        raise PayloadError(
            f"{source}: unknown program_id {short_text(json.dumps(program_id))}; "
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
        if isinstance(pub[0], str):
            problem = qasm_include_problem(pub[0])
            if problem:
                raise PayloadError(f"{source}: pubs[{index}][0]: {problem}")
    _check_primitive_numbers(program_id, params, source)
    try:
        check_compressed(params)
    except InflateError as exc:
        raise PayloadError(f"{source}: 'parameters': {exc}") from None
    if "version" in params and (params["version"] != 2 or isinstance(params["version"], bool)):
        raise PayloadError(
            f"{source}: 'parameters.version' must be 2 (V2 primitives), got "
            f"{short_text(json.dumps(params['version']))}"
        )
    if "support_qiskit" in params and not isinstance(params["support_qiskit"], bool):
        raise PayloadError(f"{source}: 'parameters.support_qiskit' must be true or false")
    if "options" in params and not isinstance(params["options"], dict):
        raise PayloadError(
            f"{source}: 'parameters.options' must be an object, not {_type_name(params['options'])}"
        )


def _is_positive_int(value: Any) -> bool:
    return type(value) is int and value > 0  # type(), not isinstance: true is not 1 shot


def _is_positive_finite(value: Any) -> bool:
    if type(value) is int:
        return value > 0  # math.isfinite would overflow on a huge int
    return type(value) is float and math.isfinite(value) and value > 0


# Where EstimatorV2 / SamplerV2 parameters carry shots and precisions (IBM's schemas):
# top level, options, and the optional trailing slots of each pub. Null means "not set".
_SHOTS = "a positive integer"
_PRECISION = "a positive finite number"


@dataclass(frozen=True)
class _NumberSlots:
    top: tuple[tuple[str, str], ...]  # (key in parameters, rule)
    options: tuple[tuple[str, str], ...]  # (key in parameters.options, rule)
    pub: tuple[tuple[int, str, str], ...]  # (index in the pub, name, rule)
    values_slot: int  # index of the parameter values in the pub


_NUMBER_SLOTS = {
    "sampler": _NumberSlots(
        top=(("shots", _SHOTS),),
        options=(("default_shots", _SHOTS),),
        pub=((2, "shots", _SHOTS),),
        values_slot=1,
    ),
    "estimator": _NumberSlots(
        top=(("precision", _PRECISION),),
        options=(("default_precision", _PRECISION), ("default_shots", _SHOTS)),
        pub=((3, "precision", _PRECISION),),
        values_slot=2,
    ),
}
_CHECKS: dict[str, Callable[[Any], bool]] = {
    _SHOTS: _is_positive_int,
    _PRECISION: _is_positive_finite,
}


def _check_primitive_numbers(program_id: str, params: dict[str, Any], source: str) -> None:
    """Shots, precisions and parameter values: the numbers a service would refuse (or,
    worse, silently replace: ``shots: 0`` ran with the default 4096)."""
    slots = _NUMBER_SLOTS[program_id]
    places: list[tuple[str, Any, str]] = [
        (f"'parameters.{key}'", params[key], rule) for key, rule in slots.top if key in params
    ]
    options = params.get("options")
    if isinstance(options, dict):
        places += [
            (f"'parameters.options.{key}'", options[key], rule)
            for key, rule in slots.options
            if key in options
        ]
    for index, pub in enumerate(params["pubs"]):
        places += [
            (f"pubs[{index}][{slot}] ({name})", pub[slot], rule)
            for slot, name, rule in slots.pub
            if len(pub) > slot
        ]
    for where, value, rule in places:
        if value is not None and not _CHECKS[rule](value):
            got = short_text(json.dumps(value))
            raise PayloadError(f"{source}: {where} must be {rule}, got {got}")
    values_slot = slots.values_slot
    for index, pub in enumerate(params["pubs"]):
        if len(pub) > values_slot:
            bad = _non_finite(pub[values_slot])
            if bad is not None:
                raise PayloadError(
                    f"{source}: pubs[{index}][{values_slot}] (parameter values) holds "
                    f"{json.dumps(bad)}; parameter values must be finite numbers"
                )


def _non_finite(values: Any) -> float | None:
    """The first NaN or infinity in nested lists / dicts of numbers, else None."""
    stack = [values]  # iterative: the nesting depth is the user's, not bounded by us
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and "__type__" not in item:
            # RuntimeEncoder-typed values (base64 ndarrays) are checked where they are decoded
            stack.extend(item.values())
    return None


def qasm_version(text: str) -> int:
    """The OpenQASM major version a circuit string declares (3 when it declares none)."""
    match = _QASM_VERSION.match(text)
    return int(match.group(1)) if match else 3


def qasm_include_names(text: str) -> Iterator[str | None]:
    """The file name of each ``include`` in an OpenQASM text, in order; None for an
    include not followed by a well-formed string (an unterminated one, a bare word).

    One left-to-right pass, linear in the text's length: the position only moves
    forward and every jump (to a line's end, a comment's end, a string's closing quote)
    is a ``str.find``. Comments and strings are skipped as the parsers lex them, so an
    ``include`` inside them is none; a quote with no closing quote on its line is no
    string (scanning goes on right after it, so nothing hides behind it).
    """
    end = len(text)
    pos = 0
    while (mark := _QASM_MARK.search(text, pos)) is not None:
        token, pos = mark.group(), mark.end()
        if token == "//":
            pos = _line_end(text, pos)
        elif token == "/*":
            close = text.find("*/", pos)
            pos = end if close < 0 else close + 2
        elif token in "\"'":
            close = _string_end(text, pos, token)
            pos = pos if close < 0 else close + 1
        else:
            pos = _skip_blank(text, pos)
            quote = text[pos : pos + 1]
            close = _string_end(text, pos + 1, quote) if quote in ('"', "'") else -1
            if close < 0:
                yield None
                continue
            yield text[pos + 1 : close]
            pos = close + 1


def _line_end(text: str, pos: int) -> int:
    newline = text.find("\n", pos)
    return len(text) if newline < 0 else newline + 1


def _string_end(text: str, pos: int, quote: str) -> int:
    """The closing ``quote`` of a string opened before ``pos``, on its line; -1 if none."""
    close = text.find(quote, pos)
    newline = text.find("\n", pos, close if close >= 0 else len(text))
    return -1 if close < 0 or newline >= 0 else close


def _skip_blank(text: str, pos: int) -> int:
    """Past whitespace and comments from ``pos`` (each step consumes what it skips)."""
    while True:
        pos = _BLANK.match(text, pos).end()  # type: ignore[union-attr]
        if text.startswith("//", pos):
            pos = _line_end(text, pos + 2)
        elif text.startswith("/*", pos):
            close = text.find("*/", pos + 2)
            pos = len(text) if close < 0 else close + 2
        else:
            return pos


def qasm_include_problem(text: str) -> str | None:
    """Why an OpenQASM string's includes are refused, or None when it includes only the
    standard file of its version (``qelib1.inc`` for 2, ``stdgates.inc`` for 3).

    Any other include would make the parser open a file of this node (``/etc/passwd``)
    and quote it in errors; the services cannot read the user's files either. The name
    must be exactly the standard one, in either quote: anything else (another name, a
    quote inside it, no closing quote, no name) is refused.
    """
    version = qasm_version(text)
    allowed = STANDARD_INCLUDES.get(version, STANDARD_INCLUDES[3])
    for name in qasm_include_names(text):
        if name != allowed:
            shown = "an include with no quoted file name" if name is None else json.dumps(name)
            return (
                f"OpenQASM {version} may only include {json.dumps(allowed)}, not "
                f"{short_text(shown)}; put the definitions in the circuit itself"
            )
    return None


def _check_pulser(document: dict[str, Any], source: str) -> None:
    sequence = document["sequence"]
    if isinstance(sequence, str):
        decoded = decode_json(sequence, f"{source}: 'sequence' string (Pulser abstract repr)")
        if not isinstance(decoded, dict):
            raise PayloadError(f"{source}: 'sequence' string must encode a JSON object")
        sequence = decoded
    elif not isinstance(sequence, dict):
        raise PayloadError(
            f"{source}: 'sequence' must be a Pulser abstract representation (object or its "
            f"JSON string), not {_type_name(sequence)}"
        )
    if "setup" in sequence and "hamiltonian" in sequence:
        # qrmi (src/pasqal/cloud.rs is_cudaq_sequence) sends such a sequence to Pasqal
        # Cloud's CUDA-Q endpoint (/core-fast/api/v1/cudaq/job), which the pasqal-cloud SDK
        # this runner drives has no call for; Pulser cannot rebuild it either
        raise PayloadError(
            f"{source}: 'sequence' is a CUDA-Q program ('setup' and 'hamiltonian'), not a "
            "Pulser sequence; this runner sends Pulser sequences only: export the program "
            "as one (pulser Sequence.to_abstract_repr()), or run it with qrmi's task_runner "
            "on a pasqal-cloud resource"
        )
    if "job_runs" not in document:
        raise PayloadError(f"{source}: missing 'job_runs' (number of shots, an integer >= 1)")
    runs = document["job_runs"]
    if type(runs) is not int or runs < 1:
        raise PayloadError(
            f"{source}: 'job_runs' must be an integer >= 1, got {short_text(json.dumps(runs))}"
        )


def _check_iqm(document: dict[str, Any], source: str) -> None:
    job = document["iqmjson"]
    if isinstance(job, str):
        decoded = decode_json(job, f"{source}: 'iqmjson' string (IQM job JSON)")
        if not isinstance(decoded, dict):
            raise PayloadError(f"{source}: 'iqmjson' string must encode a JSON object")
    elif not isinstance(job, dict):
        raise PayloadError(
            f"{source}: 'iqmjson' must be an IQM job (object or its JSON string), not "
            f"{_type_name(job)}"
        )
    job_type = document.get("job_type")
    if job_type not in IQM_JOB_TYPES:
        got = "missing" if "job_type" not in document else short_text(json.dumps(job_type))
        raise PayloadError(
            f"{source}: 'job_type' must be one of {', '.join(IQM_JOB_TYPES)}, got {got}"
        )
    timeslot = document.get("use_timeslot", False)
    if not isinstance(timeslot, bool):
        raise PayloadError(f"{source}: 'use_timeslot' must be true or false")
    tag = document.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > IQM_TAG_LIMIT):
        raise PayloadError(
            f"{source}: 'tag' must be a string of at most {IQM_TAG_LIMIT} characters"
        )


def _check_qir(document: dict[str, Any], source: str) -> None:
    text = document["human_qir"]
    if not isinstance(text, str) or not text.strip():
        raise PayloadError(f"{source}: 'human_qir' must be the program's QIR text (a string)")
    if "input_params" not in document:
        raise PayloadError(f"{source}: missing 'input_params' (the job's input parameters)")
    if not isinstance(document["input_params"], dict):
        raise PayloadError(
            f"{source}: 'input_params' must be an object, not "
            f"{_type_name(document['input_params'])}"
        )


_CHECKERS: dict[str, Callable[[dict[str, Any], str], None]] = {
    QISKIT: lambda document, source: _check_primitive(document, source),
    PULSER: lambda document, source: _check_pulser(document, source),
    IQM: _check_iqm,
    QIR: _check_qir,
}

#: kinds whose hand-written checks enforce every rule the schema has for them
#: (tests/test_payload_schema_cover.py): their documents skip jsonschema, whose import
#: cost every Qiskit run ~70 ms of CPU (a third of a Direct Access run's budget)
_SCHEMA_COVERED = frozenset({QISKIT})

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
        raise PayloadError(f"{source}: {where}: {short_text(error.message)}")


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
        raise PayloadError(f"not a valid Pulser sequence: {short_text(first_line(exc))}") from None


#: The most atoms a register may hold: ten times the largest device Pulser ships
#: (DigitalAnalogDevice, 100 atoms). Pulser takes about 175 kB an atom to rebuild a
#: sequence (20,000 atoms: 3.5 GB), and MockDevice sets no limit of its own.
MAX_ATOMS = 1000


def _abstract_repr(payload: CheckedPayload) -> dict[str, Any]:
    sequence = payload.document["sequence"]
    # a string was decoded (and found an object) by check_document already
    return json.loads(sequence) if isinstance(sequence, str) else sequence


def atom_count(payload: CheckedPayload) -> int | None:
    """The atoms of a Pulser payload's register as its abstract representation lists them
    (no Pulser import); None when it lists none (a mappable register is given later)."""
    register = _abstract_repr(payload).get("register")
    return len(register) if isinstance(register, list) else None


def _refuse_a_register_too_large(payload: CheckedPayload) -> None:
    atoms = atom_count(payload)
    if atoms is None:
        return
    device = _abstract_repr(payload).get("device")
    device = device if isinstance(device, dict) else {}
    limit, name = device.get("max_atom_num"), device.get("name", "its device")
    if type(limit) is int and atoms > limit:
        raise PayloadError(
            f"{payload.source}: the register has {atoms:,} atoms; {short_text(str(name))} "
            f"takes at most {limit:,}"
        )
    if atoms > MAX_ATOMS:
        raise PayloadError(
            f"{payload.source}: the register has {atoms:,} atoms; this runner takes at most "
            f"{MAX_ATOMS:,} (no Pasqal device or emulator runs more)"
        )


def validate_sequence(payload: CheckedPayload) -> None:
    """Rebuild a Pulser payload's sequence with Pulser: the deep check before submitting.

    Imports pulser (about a second), so the runner calls it only for Pulser payloads. A
    register larger than its device allows, or than :data:`MAX_ATOMS`, is refused from
    the JSON first: Pulser would allocate for every atom before refusing.
    """
    if payload.kind == PULSER:
        _refuse_a_register_too_large(payload)
        payload.sequence  # noqa: B018 - rebuilt (and kept) for the check
