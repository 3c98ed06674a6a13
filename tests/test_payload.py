"""Payload parsing: precise errors for bad input, never anything but PayloadError."""

from __future__ import annotations

import json

import jsonschema
import pytest
from helpers import EXAMPLES, clean_env, ibm_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payloads import pulser_sequence_json

from qrmi_tasks.errors import PayloadError
from qrmi_tasks.payload import SCHEMA_FILE, check_document, parse_payload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "program_id",
        "parameters",
        "pubs",
        "sequence",
        "job_runs",
        "version",
        "support_qiskit",
        "options",
        "iqmjson",
        "job_type",
        "use_timeslot",
        "tag",
        "human_qir",
        "input_params",
    ]
)
payload_like = st.recursive(
    json_values,
    lambda children: st.dictionaries(keys | st.text(max_size=6), children, max_size=5),
    max_leaves=25,
)


# 200 examples: drawing these nested documents costs hypothesis ~40 ms each (the check
# itself well under 1 ms); every CI run draws new ones
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(payload_like)
def test_arbitrary_json_gives_payload_or_clean_error(document):
    try:
        payload = check_document(document)
    except PayloadError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 600
    else:
        assert payload.kind in ("qiskit", "pulser", "iqm", "qir")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_gives_payload_or_clean_error(text):
    try:
        parse_payload(text)
    except PayloadError as exc:
        assert "\n" not in str(exc)


def test_deep_nesting_is_a_clean_error():
    with pytest.raises(PayloadError):
        parse_payload("[" * 100_000 + "]" * 100_000)


def test_sequence_string_and_object_are_the_same_task():
    text = pulser_sequence_json()
    as_object = check_document({"sequence": json.loads(text), "job_runs": 5})
    as_string = check_document({"sequence": text, "job_runs": 5})
    assert as_string.sequence_json == text  # the string is used as given, not re-encoded
    assert json.loads(as_object.sequence_json) == json.loads(text)
    assert as_object.digest == as_string.digest


def test_digest_ignores_key_order_and_whitespace():
    a = parse_payload('{"program_id": "sampler", "parameters": {"pubs": [["c"]], "shots": 5}}')
    b = parse_payload('{"parameters":{"shots":5,"pubs":[["c"]]},"program_id":"sampler"}')
    c = parse_payload('{"parameters":{"shots":6,"pubs":[["c"]]},"program_id":"sampler"}')
    assert a.digest == b.digest != c.digest


def test_examples_conform_to_our_schema_and_ibms():
    from importlib import resources

    ours = json.loads(resources.files("qrmi_tasks").joinpath(SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator.check_schema(ours)
    examples = sorted((EXAMPLES / "qiskit").glob("bell_*.json"))
    assert examples
    documents = [json.loads(example.read_text()) for example in examples]
    for document in documents:
        jsonschema.validate(document, ours)
        check_document(document)
    for document in documents:
        # IBM's files say draft-04 but use 2020-12 keywords (prefixItems)
        schema = ibm_schema(f"{document['program_id']}_v2")
        jsonschema.Draft202012Validator(schema).validate(document["parameters"])


def test_schema_agrees_with_parser_on_job_runs():
    from importlib import resources

    ours = json.loads(resources.files("qrmi_tasks").joinpath(SCHEMA_FILE).read_text())
    validator = jsonschema.Draft202012Validator(ours)
    assert not validator.is_valid({"sequence": {}, "job_runs": 0})
    assert not validator.is_valid({"sequence": {}, "job_runs": "10"})
    assert validator.is_valid({"sequence": {}, "job_runs": 10})


def test_read_input_reads_at_most_limit_plus_one_byte(tmp_path):
    from qrmi_tasks.errors import ConfigError, InputError
    from qrmi_tasks.readers import read_input

    path = tmp_path / "f.json"
    path.write_bytes(b"x" * 10)
    assert read_input(path, "payload", limit=10) == b"x" * 10
    with pytest.raises(InputError, match=r"payload file .* is larger than the 9 bytes limit"):
        read_input(path, "payload", limit=9)
    with pytest.raises(ConfigError, match="config file"):
        read_input(path, "config", limit=9, error=ConfigError)


def test_duplicate_keys_are_named_at_any_depth():
    text = '{"program_id": "sampler", "parameters": {"pubs": [["c", {"a": [1], "a": [2]}]]}}'
    with pytest.raises(PayloadError, match='the key "a" twice'):
        parse_payload(text)
    sequence = json.dumps('{"version": "1", "version": "2"}')  # inside the string form too
    with pytest.raises(PayloadError, match=r"'sequence' string .* \"version\" twice"):
        parse_payload(f'{{"sequence": {sequence}, "job_runs": 5}}')


@pytest.mark.parametrize(
    "parameters",
    [
        {"pubs": [["c", None, 100]], "shots": 1, "options": {"default_shots": 10}},
        {"pubs": [["c", {"t": [0.5, 1]}, None]], "shots": None},
        {"pubs": [["c", [[0.1], [2]]]]},
        {"pubs": [["c", {"t": {"__type__": "ndarray", "__value__": "opaque"}}]]},
    ],
)
def test_valid_sampler_numbers(parameters):
    assert check_document({"program_id": "sampler", "parameters": parameters}).kind == "qiskit"


@pytest.mark.parametrize(
    "parameters",
    [
        {"pubs": [["c", ["ZZ"], None, 0.01]], "precision": 1, "options": {"default_shots": 8}},
        {"pubs": [["c", ["ZZ"], [[0.1]], None]], "options": {"default_precision": 1e-3}},
        {"pubs": [["c", ["ZZ"]]], "precision": 10**400},  # a huge int is finite
    ],
)
def test_valid_estimator_numbers(parameters):
    assert check_document({"program_id": "estimator", "parameters": parameters}).kind == "qiskit"


@pytest.mark.parametrize(
    "circuit,problem",
    [
        ('OPENQASM 2.0;\ninclude "qelib1.inc";', None),
        ('// header\n/* c */ OPENQASM 2.0;\ninclude "stdgates.inc";', '"stdgates.inc"'),
        ('OPENQASM 3.0;\ninclude "stdgates.inc";\ninclude "x/../y.inc";', '"x/../y.inc"'),
        ('OPENQASM 3;\ninclude /* hidden */ "/etc/hosts";', '"/etc/hosts"'),
        ("OPENQASM 3;\n// include is a keyword\nqubit q;", None),
        ('include "mine.inc";', '"mine.inc"'),  # no header: OpenQASM 3
    ],
)
def test_only_standard_openqasm_includes(circuit, problem):
    from qrmi_tasks.payload import qasm_include_problem

    found = qasm_include_problem(circuit)
    assert (found is None) if problem is None else (problem in found and "may only" in found)


IQM_JOB = {"circuits": [{"name": "bell", "instructions": []}], "shots": 100}


def test_iqm_and_qir_payloads_are_their_own_kinds():
    iqm = check_document({"iqmjson": IQM_JOB, "job_type": "circuit", "tag": None})
    assert iqm.kind == "iqm" and iqm.describe() == "IQM circuit job"
    as_text = check_document({"iqmjson": json.dumps(IQM_JOB), "job_type": "circuit", "tag": None})
    assert as_text.digest == iqm.digest  # object and string forms are the same task
    assert json.loads(as_text.iqm_json) == IQM_JOB == json.loads(iqm.iqm_json)
    qir = check_document({"human_qir": "define void @main() {\n}\n", "input_params": {}})
    assert qir.kind == "qir" and qir.describe() == "QIR program (2 lines)"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"iqmjson": [], "job_type": "circuit"}, "'iqmjson' must be an IQM job"),
        ({"iqmjson": "[1]", "job_type": "circuit"}, "'iqmjson' string must encode a JSON object"),
        ({"iqmjson": IQM_JOB}, "'job_type' must be one of circuit, run, sweep, got missing"),
        ({"iqmjson": IQM_JOB, "job_type": "batch"}, 'got "batch"'),
        ({"iqmjson": IQM_JOB, "job_type": "run", "use_timeslot": 1}, "'use_timeslot' must be"),
        ({"iqmjson": IQM_JOB, "job_type": "run", "tag": "t" * 51}, "at most 50 characters"),
        ({"human_qir": "", "input_params": {}}, "'human_qir' must be the program's QIR text"),
        ({"human_qir": "x"}, "missing 'input_params'"),
        ({"human_qir": "x", "input_params": [1]}, "'input_params' must be an object, not an"),
        ({"human_qir": "x", "input_params": {}, "job_runs": 1, "sequence": {}}, "keep one"),
        ({"circuits": []}, "expected 'program_id' (Qiskit primitive), 'sequence' (Pulser)"),
    ],
)
def test_iqm_and_qir_payload_errors_say_what_to_fix(document, problem):
    with pytest.raises(PayloadError) as caught:
        check_document(document, "p.json")
    assert problem in caught.value.message


def test_schema_takes_the_iqm_and_qir_payloads():
    from importlib import resources

    schema = json.loads(resources.files("qrmi_tasks").joinpath(SCHEMA_FILE).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"iqmjson": IQM_JOB, "job_type": "sweep", "use_timeslot": True})
    assert validator.is_valid({"human_qir": "x", "input_params": {"nbShots": 5}})
    assert not validator.is_valid({"iqmjson": IQM_JOB, "job_type": "sweep", "tag": "t" * 51})


# The shape qrmi's src/pasqal/cloud.rs (is_cudaq_sequence) recognises: keys setup and
# hamiltonian; the values are a CUDA-Q program's, written here only as far as the check reads.
CUDAQ_SEQUENCE = {"setup": {"ahs_register": {"sites": [[0, 0], [0, 6e-6]]}}, "hamiltonian": {}}


@pytest.mark.parametrize("as_string", [False, True])
def test_a_cuda_q_program_is_refused_with_what_to_do_instead(as_string):
    sequence = json.dumps(CUDAQ_SEQUENCE) if as_string else CUDAQ_SEQUENCE
    with pytest.raises(PayloadError) as info:
        check_document({"sequence": sequence, "job_runs": 10}, "cudaq.json")
    message = info.value.message
    assert message.startswith("cudaq.json: 'sequence' is a CUDA-Q program")
    assert "to_abstract_repr()" in message and "\n" not in message


def test_a_cuda_q_payload_is_refused_before_any_network_call(in_process, tmp_path, listener):
    payload = tmp_path / "cudaq.json"
    payload.write_text(json.dumps({"sequence": CUDAQ_SEQUENCE, "job_runs": 10}))
    in_process.use_env(
        {
            **clean_env(),
            "QRMI_JOB_QPU_RESOURCES": "EMU_MPS",
            "QRMI_JOB_QPU_TYPES": "pasqal-cloud",
            "EMU_MPS_QRMI_PASQAL_CLOUD_PROJECT_ID": "p",
            "EMU_MPS_QRMI_PASQAL_CLOUD_AUTH_TOKEN": "t",
            "EMU_MPS_QRMI_PASQAL_CLOUD_ENDPOINT": listener.url,
            "EMU_MPS_QRMI_PASQAL_CLOUD_ACCOUNT_ENDPOINT": listener.url,
        }
    )
    outcome = in_process.run("EMU_MPS", payload)
    assert outcome.code == 2
    (line,) = outcome.errors()
    assert "CUDA-Q program" in line
    assert listener.count == 0
