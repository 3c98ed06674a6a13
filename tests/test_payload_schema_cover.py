"""Qiskit payloads skip jsonschema (qrmi_tasks/payload.py ``_SCHEMA_COVERED``): the
hand-written checks must then refuse every document the published schema refuses.

Checked rule by rule (one document breaking each rule of the schema's ``primitive``
definition) and on documents hypothesis draws around that definition; and a Qiskit
payload is checked without importing jsonschema at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import jsonschema
import pytest
from helpers import BELL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qrmi_tasks.errors import PayloadError
from qrmi_tasks.payload import SCHEMA_FILE, check_document

SCHEMA = json.loads(resources.files("qrmi_tasks").joinpath(SCHEMA_FILE).read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
QASM = 'OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; h q[0];'


def _valid() -> dict:
    return {"program_id": "sampler", "parameters": {"pubs": [[QASM]], "version": 2}}


def _broken(path: tuple[str, ...], value: object) -> dict:
    document = _valid()
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DROP = object()
# every rule of $defs.primitive, broken once
RULE_BREAKERS = [
    (("program_id",), "optimizer"),
    (("program_id",), 2),
    (("parameters",), _DROP),
    (("parameters",), [["c"]]),
    (("parameters", "pubs"), _DROP),
    (("parameters", "pubs"), []),
    (("parameters", "pubs"), "c"),
    (("parameters", "pubs"), ["c"]),
    (("parameters", "pubs"), [[]]),
    (("parameters", "pubs"), [[3]]),
    (("parameters", "pubs"), [[None]]),
    (("parameters", "version"), 1),
    (("parameters", "version"), "2"),
    (("parameters", "version"), True),
    (("parameters", "support_qiskit"), "yes"),
    (("parameters", "options"), []),
    (("parameters", "options"), "fast"),
]


def test_the_valid_document_passes_both():
    assert VALIDATOR.is_valid(_valid())
    assert check_document(_valid()).kind == "qiskit"


@pytest.mark.parametrize(("path", "value"), RULE_BREAKERS)
def test_each_schema_rule_is_enforced_by_the_hand_checks(path, value):
    document = _broken(path, value)
    assert not VALIDATOR.is_valid(document)
    with pytest.raises(PayloadError):
        check_document(document)


leaves = st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(["", "c", QASM])
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "pubs"]), children, max_size=2)
    ),
    max_leaves=8,
)
parameters = st.dictionaries(
    st.sampled_from(["pubs", "version", "support_qiskit", "options", "shots"]),
    values | st.just([[QASM]]) | st.just(2),
    max_size=5,
)
primitives = st.fixed_dictionaries(
    {"program_id": st.sampled_from(["sampler", "estimator", "x", 1])},
    optional={"parameters": parameters | values},
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(primitives)
def test_what_the_schema_refuses_the_hand_checks_refuse(document):
    if VALIDATOR.is_valid(document):
        return  # the hand checks may refuse more (shots, OpenQASM includes): not this test
    with pytest.raises(PayloadError):
        check_document(document)


def test_a_qiskit_payload_is_checked_without_importing_jsonschema():
    code = (
        "import sys\n"
        "from qrmi_tasks.payload import load_payload\n"
        f"load_payload({str(BELL)!r})\n"
        "print('jsonschema' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"
