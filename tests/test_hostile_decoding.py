"""Hostile input to our decoders (issue 25, second part): compressed values that inflate to
gigabytes, huge Pulser registers, huge integers, mathtext in plot labels.

Most run the CLI in this process (``in_process``) or call the decoder directly.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import EXAMPLES, assert_clean_error

BELL = json.loads((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
MIB = 1 << 20


# -- 1. zlib bombs in RuntimeEncoder's compressed arrays and circuits ----------------------


def zlib_bomb(inflated: int) -> str:
    """base64(zlib(an .npy header + zeros)), ``inflated`` bytes once decompressed, as
    RuntimeEncoder writes an ndarray (about 1000:1: 1 MiB here per GiB inflated)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (inflated,)}
    )
    # raw deflate: after a full flush the compressor starts afresh, so one compressed MiB
    # of zeros repeats as is; the zlib header and checksum are added around it
    compressor = zlib.compressobj(1, wbits=-15)
    parts = [b"\x78\x01", compressor.compress(header.getvalue())]
    parts.append(compressor.flush(zlib.Z_FULL_FLUSH))
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    rest = bytes(inflated % MIB)
    parts += [block * (inflated // MIB), compressor.compress(rest) + compressor.flush()]
    checksum = zlib.adler32(header.getvalue())
    for _ in range(inflated // MIB):
        checksum = zlib.adler32(bytes(MIB), checksum)
    parts.append(zlib.adler32(rest, checksum).to_bytes(4, "big"))
    return base64.standard_b64encode(b"".join(parts)).decode()


def ndarray(value: str) -> dict[str, str]:
    return {"__type__": "ndarray", "__value__": value}


def with_parameter_values(values: dict[str, str]) -> dict:
    document = json.loads(json.dumps(BELL))
    document["parameters"]["pubs"][0] = [document["parameters"]["pubs"][0][0], values]
    return document


@pytest.fixture
def small_budget(monkeypatch):
    """Every decoder's budget at 1 MiB (the constant, as all of them read it)."""
    from qrmi_tasks import inflate

    monkeypatch.setattr(inflate, "INFLATED_LIMIT", MIB)


def test_a_real_size_bomb_in_parameter_values_is_refused_before_the_worker(in_process, tmp_path):
    from qrmi_tasks.inflate import INFLATED_LIMIT

    bomb = zlib_bomb(INFLATED_LIMIT + MIB)
    assert len(bomb) < 4 * MIB  # the attack: a payload of a few MB
    payload = tmp_path / "bomb.json"
    payload.write_text(json.dumps(with_parameter_values(ndarray(bomb))))
    line = assert_clean_error(in_process.run("local", str(payload), "-q"), code=2)
    assert "'parameters': its compressed arrays/circuits inflate beyond 512 MiB" in line


def test_a_circuit_bomb_is_refused_too(in_process, tmp_path, small_budget):
    document = json.loads(json.dumps(BELL))
    document["parameters"]["pubs"][0][0] = {"__type__": "QuantumCircuit", "__value__": ""}
    document["parameters"]["pubs"][0][0]["__value__"] = zlib_bomb(2 * MIB)
    payload = tmp_path / "bomb.json"
    payload.write_text(json.dumps(document))
    assert_clean_error(in_process.run("local", str(payload), "-q"), "inflate beyond 1 MiB")


def test_values_share_one_budget_per_document(small_budget):
    from qrmi_tasks.inflate import InflateError, check_document

    half = zlib_bomb(MIB // 2 - 200)  # each fits alone; together they do not
    check_document([ndarray(half)])
    with pytest.raises(InflateError, match="inflate beyond 1 MiB"):
        check_document([ndarray(half), {"x": [ndarray(half), ndarray(half)]}])


def test_the_local_workers_decoder_stays_within_the_budget(small_budget):
    from qrmi_tasks.providers.local import codec, sim

    with pytest.raises(sim.Rejected, match=r"cannot be decoded: .* inflate beyond 1 MiB"):
        sim.decode_parameters(with_parameter_values(ndarray(zlib_bomb(2 * MIB)))["parameters"])
    # a real array still decodes, byte for byte as RuntimeEncoder wrote it
    values = np.arange(12.0).reshape(3, 4)
    assert (codec.decode(codec.encode(values)) == values).all()


def test_the_extrapolator_names_runtime_keeps_as_ndarray_strings_still_pass():
    from qrmi_tasks.inflate import check_document

    check_document(ndarray("linear"))  # not base64: not measured, RuntimeDecoder's concern


def test_a_bomb_in_a_result_is_an_input_error_for_qrmi_result(in_process, tmp_path, small_budget):
    result = {
        "__type__": "PrimitiveResult",
        "__value__": {"pub_results": [ndarray(zlib_bomb(2 * MIB))], "metadata": {}},
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    proc = in_process.result("summary", str(path))
    assert_clean_error(proc, "cannot decode the Qiskit result", "inflate beyond 1 MiB")


def test_the_examples_decode_under_the_real_budget():
    from qrmi_tasks.inflate import check_document

    for path in Path(EXAMPLES).rglob("*.json"):
        check_document(json.loads(path.read_text()))


# -- 3. integers beyond Python's 4300-digit conversion limit; mathtext in plot labels -------


def test_a_5000_digit_integer_in_a_payload_is_a_payload_error(in_process, tmp_path):
    payload = tmp_path / "digits.json"
    text = json.dumps(BELL).replace('"shots": ', '"shots": ' + "9" * 5000 + ', "x": ', 1)
    assert "9" * 5000 in text
    payload.write_text(text)
    assert_clean_error(
        in_process.run("local", str(payload), "-q"), "holds an integer of more than 4300 digits"
    )


def test_a_5000_digit_count_in_a_result_is_an_input_error(in_process, tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"counter": {"01": ' + "7" * 5000 + "}}\n")
    line = assert_clean_error(in_process.result("summary", str(path)), "4300 digits")
    assert "set_int_max_str_digits" not in line  # Python's advice is not the user's to take


# a name matplotlib would parse as mathtext and refuse ("Double superscript")
CRAFTED = "$x^^y$ $\\frac{$"


def test_mathtext_in_a_register_name_is_drawn_as_written(in_process, tmp_path):
    result = {
        "results": [{"data": {CRAFTED: {"samples": ["0x1", "0x0"], "num_bits": 1}}}],
        "metadata": {},
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))
    png = tmp_path / "plot.png"
    proc = in_process.result("plot", str(path), "-o", str(png))
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from qrmi_tasks.results import load

    figure = load(path).plot()
    assert figure.axes[0].get_title() == f"pub 0, register {CRAFTED}: 2 shots"


# -- 2. huge Pulser registers: refused from the JSON, before Pulser allocates ---------------


def pulser_document(atoms: int, device: str = "MockDevice") -> dict:
    from payloads import pulser_sequence_json

    sequence = json.loads(pulser_sequence_json(4))
    if device == "MockDevice":
        from pulser.devices import MockDevice

        sequence["device"] = json.loads(MockDevice.to_abstract_repr())
    sequence["register"] = [{"name": f"q{i}", "x": 6.0 * i, "y": 0.0} for i in range(atoms)]
    return {"sequence": sequence, "job_runs": 10}


@pytest.mark.parametrize(
    ("atoms", "device", "message"),
    [
        (2_000, "MockDevice", "the register has 2,000 atoms; this runner takes at most 1,000"),
        (81, "as written", "the register has 81 atoms; AnalogDevice takes at most 80"),
    ],
)
def test_a_huge_register_is_refused_before_pulser_rebuilds_it(atoms, device, message):
    from qrmi_tasks.errors import PayloadError
    from qrmi_tasks.payload import check_document, validate_sequence

    payload = check_document(pulser_document(atoms, device))
    with pytest.raises(PayloadError, match=message):
        validate_sequence(payload)
    assert "sequence" not in payload.__dict__  # Pulser never rebuilt it


def test_a_huge_register_exits_2_from_the_runner(in_process, tmp_path):
    path = tmp_path / "register.json"
    path.write_text(json.dumps(pulser_document(20_000)))
    assert_clean_error(in_process.run("local", str(path), "-q"), "20,000 atoms")


def test_the_memory_estimate_of_1020_atoms_and_more_words_a_refusal():
    from qrmi_tasks.providers.local import memory

    for atoms in (1_020, 1_024, 5_000):  # 1,020 was exit 70: OverflowError in a float
        needed = memory.pulser_state_bytes("qutip", atoms, 3)
        reason = memory.refusal(needed, f"emulating {atoms} atoms needs about", "Use fewer.")
        assert reason is not None and "of memory; this job can use" in reason
    assert memory.human_bytes(1 << 1029) == "2^1029 B"
    assert memory.human_bytes(3 << 50) == "3.0 PiB"  # the units below stay as they were


# -- 4. large circuits in the target check: the native OpenQASM importers, a linear walk ---


def two_qubit_target():
    from qiskit.circuit import Parameter
    from qiskit.circuit.library import CZGate, RZGate, SXGate
    from qiskit.transpiler import Target

    target = Target(num_qubits=2)
    target.add_instruction(SXGate(), {(0,): None, (1,): None})
    target.add_instruction(RZGate(Parameter("t")), {(0,): None, (1,): None})
    target.add_instruction(CZGate(), {(0, 1): None})
    return target


ISA_QASM3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nbit[2] c;\nqubit[2] q;\n' + "".join(
    f"sx q[{i % 2}];\nrz({i / 100}) q[{(i + 1) % 2}];\ncz q[0], q[1];\n" for i in range(300)
)


def test_the_check_reads_qasm3_natively_and_as_the_reference_importer_does():
    from qiskit import qasm3

    from qrmi_tasks import qasm
    from qrmi_tasks.isa import isa_problems

    assert qasm.native_qasm3(ISA_QASM3) is not None  # the fast path is the one taken
    circuit = qasm.loads(ISA_QASM3)
    assert circuit == qasm3.loads(ISA_QASM3)
    assert isa_problems([circuit], two_qubit_target(), "fake") == []
    logical = qasm.loads(ISA_QASM3 + "h q[1];\ncz q[1], q[0];\n")
    assert isa_problems([logical], two_qubit_target(), "fake") == [
        "pub 0 is not an ISA circuit for fake: 'h' on qubit(s) 1 is not one of its instructions"
    ]
    reversed_cz = qasm.loads(ISA_QASM3 + "cz q[1], q[0];\n")
    assert "'cz' on qubit(s) 1, 0" in isa_problems([reversed_cz], two_qubit_target(), "fake")[0]


def test_what_the_native_importer_refuses_goes_to_the_reference_one():
    from qiskit import qasm3

    from qrmi_tasks import qasm

    text = 'OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float[64] theta;\nqubit[1] q;\n'
    text += "rz(theta) q[0];\n"
    assert qasm.native_qasm3(text) is None
    circuit = qasm.loads(text)
    reference = qasm3.loads(text)  # its Parameter objects differ (uuids): compare names
    assert [p.name for p in circuit.parameters] == [p.name for p in reference.parameters]
    assert [i.operation.name for i in circuit.data] == ["rz"]


def test_openqasm_2_is_read_by_qasm2():
    from qrmi_tasks import qasm

    circuit = qasm.loads('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncx q[0], q[1];\n')
    assert [i.operation.name for i in circuit.data] == ["cx"]
