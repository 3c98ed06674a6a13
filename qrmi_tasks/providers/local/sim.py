"""Execute payloads on local simulators: Qiskit Aer (or qiskit's reference primitives)
and Pulser's emulators (pulser-simulation, or Pasqal's emu-sv / emu-mps).

Shared by the ``local`` resource's worker process and by the test fakes of the cloud
services, so every fake returns results computed the same way a real run would be.
Imports qiskit / pulser; never import this module from the runner process.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from qrmi_tasks.errors import first_line
from qrmi_tasks.payload import qasm_include_problem
from qrmi_tasks.providers.local import codec, memory
from qrmi_tasks.providers.local.options import GPU_METHODS

IBM_DEFAULT_SHOTS = 4096
IBM_DEFAULT_PRECISION = 0.015625


# Gates Aer's stabilizer method runs: a circuit of only these is simulated as a tableau
# (memory O(n²)) by the "automatic" method. Parametrized gates are never counted, even
# at Clifford angles, so the memory estimate errs on the dense side.
_CLIFFORD = frozenset(
    {
        "id", "x", "y", "z", "h", "s", "sdg", "sx", "sxdg", "cx", "cy", "cz", "swap",
        "barrier", "measure", "reset", "delay",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Engine:
    """Which simulator runs a payload, from the ``local`` resource's settings."""

    qiskit: str = "aer"
    method: str = "automatic"
    device: str = "auto"
    pulser: str = "qutip"
    #: the settings' variable prefix (``local_QRMI_LOCAL_``), to name them in messages
    variables: str = "QRMI_LOCAL_"


class ExecutionError(Exception):
    """The payload is well-formed JSON but cannot be executed (bad circuit, bad pub...)."""


class Rejected(ExecutionError):
    """The payload cannot run on this machine as configured (its state does not fit in
    memory, no usable GPU...): an input error, refused before any simulation starts."""


def _load_circuit(circuit: Any, where: str):
    from qiskit import QuantumCircuit

    if isinstance(circuit, QuantumCircuit):
        return circuit
    if not isinstance(circuit, str):
        raise ExecutionError(f"{where}: circuit must be an OpenQASM string or encoded QPY")
    # checked again here, not only in the payload check: the fakes run pubs directly
    problem = qasm_include_problem(circuit)
    if problem:
        raise ExecutionError(f"{where}: {problem}")
    from qrmi_tasks import qasm

    try:
        return qasm.loads(circuit)
    except Exception as exc:
        raise ExecutionError(f"{where}: cannot parse OpenQASM: {first_line(exc)}") from None


def _bindings(circuit, values: Any, where: str):
    """Parameter values as a BindingsArray-coercible object."""
    from qiskit.primitives.containers.bindings_array import BindingsArray

    if values is None:
        return None
    if isinstance(values, BindingsArray):
        return values
    if isinstance(values, dict):
        data = {}
        for key, vals in values.items():
            # IBM's encoding keys a group of parameters as "(a, b)"
            names = tuple(n.strip() for n in str(key).strip("()").split(",") if n.strip())
            data[names if len(names) > 1 else names[0]] = np.asarray(vals, dtype=float)
        try:
            return BindingsArray.coerce(data)
        except Exception as exc:
            raise ExecutionError(f"{where}: bad parameter values: {exc}") from None
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array.reshape(1)
    if circuit.num_parameters and array.shape[-1] != circuit.num_parameters:
        raise ExecutionError(
            f"{where}: {array.shape[-1]} parameter value(s) per binding, circuit has "
            f"{circuit.num_parameters} parameter(s)"
        )
    return array


def _compact(circuit, observables: Any = None, where: str = "pub", physical: bool | None = None):
    """Simulate only the qubits an ISA circuit uses; narrow its observables to match.

    An ISA circuit names physical qubits (``$57``): OpenQASM 3 import sizes it by the
    highest one, and its observables span the whole backend (133 qubits on Heron). Qubits
    that no instruction touches and no observable acts on stay in |0> and are left out,
    so a 2-qubit job for a 133-qubit backend is a 2-qubit simulation. ``physical``: the
    circuit's qubits are physical ones (None: when it declares no register; a circuit
    transpiled in this process keeps its register but has a layout).
    """
    from qiskit.circuit import QuantumCircuit

    if physical is None:
        physical = not circuit.qregs
    if not physical:
        return circuit, observables  # declared qubits (``qubit[2] q``), not physical ones
    labels = None
    width = circuit.num_qubits
    if observables is not None:
        from qiskit.primitives.containers.observables_array import ObservablesArray

        try:
            array = ObservablesArray.coerce(observables)
        except Exception as exc:
            raise ExecutionError(f"{where}: bad observables: {exc}") from None
        if array.num_qubits < width:
            return circuit, observables  # the estimator reports the mismatch
        width, labels = array.num_qubits, array.tolist()
    needed = {circuit.find_bit(q).index for inst in circuit.data for q in inst.qubits}
    for label in _labels(labels):
        needed.update(width - 1 - k for k, letter in enumerate(label) if letter != "I")
    kept = sorted(needed) or [0]
    if len(kept) == width == circuit.num_qubits:
        return circuit, observables
    compact = QuantumCircuit(len(kept), name=circuit.name, global_phase=circuit.global_phase)
    for register in circuit.cregs:
        compact.add_register(register)
    compact.add_bits([c for c in circuit.clbits if c not in set(compact.clbits)])
    position = {old: new for new, old in enumerate(kept)}
    for inst in circuit.data:
        qubits = [compact.qubits[position[circuit.find_bit(q).index]] for q in inst.qubits]
        compact.append(inst.operation, qubits, inst.clbits, copy=False)
    if labels is None:
        return compact, None

    def narrow(item):
        if isinstance(item, list):
            return [narrow(i) for i in item]
        return {"".join(k[width - 1 - q] for q in reversed(kept)): c for k, c in item.items()}

    return compact, narrow(labels)


def _labels(labels):
    if isinstance(labels, list):
        for item in labels:
            yield from _labels(item)
    elif isinstance(labels, dict):
        yield from labels


def decode_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Decode RuntimeEncoder-typed values (``{"__type__": ...}``) inside primitive params."""
    from qrmi_tasks.inflate import InflateError

    try:
        return codec.decode(json.dumps(params))
    except InflateError as exc:
        raise Rejected(f"the parameters cannot be decoded: {exc}") from None


def run_primitive(program_id: str, params: dict[str, Any], engine: Engine | None = None):
    """Run EstimatorV2/SamplerV2 parameters on ``engine`` (Aer by default).

    Returns the ``PrimitiveResult``. Raises :class:`Rejected` before simulating when the
    state cannot fit in the memory this job may use.
    """
    params = decode_parameters(params)
    pubs_in = params.get("pubs") or []
    if program_id == "sampler":
        shots, seed = sampler_defaults(params)
        pubs = []
        for i, pub in enumerate(pubs_in):
            where = f"pubs[{i}]"
            circuit = sampler_circuit(_load_circuit(pub[0], where), where)
            values = _bindings(circuit, pub[1] if len(pub) > 1 else None, where)
            pub_shots = pub[2] if len(pub) > 2 and pub[2] is not None else None
            pubs.append((circuit, values, pub_shots))
        return run_sampler(pubs, shots, seed, engine)
    if program_id == "estimator":
        precision, seed = estimator_defaults(params)
        pubs = []
        for i, pub in enumerate(pubs_in):
            where = f"pubs[{i}]"
            circuit, observables = estimator_circuit(_load_circuit(pub[0], where), pub[1], where)
            values = _bindings(circuit, pub[2] if len(pub) > 2 else None, where)
            pub_precision = pub[3] if len(pub) > 3 else None
            pubs.append((circuit, observables, values, pub_precision))
        return run_estimator(pubs, precision, seed, engine)
    raise ExecutionError(f"unknown program_id {program_id!r}")


def sampler_defaults(params: dict[str, Any]) -> tuple[int, int | None]:
    """(shots, seed) of sampler parameters where a pub sets no shots of its own: the
    ``shots`` field, else ``options.default_shots``, else IBM's 4096."""
    options = params.get("options") or {}
    shots = _first_set(params.get("shots"), options.get("default_shots"), IBM_DEFAULT_SHOTS)
    return int(shots), (options.get("simulator") or {}).get("seed_simulator")


def estimator_defaults(params: dict[str, Any]) -> tuple[float, int | None]:
    """(precision, seed) of estimator parameters where a pub sets no precision: the
    ``precision`` field, else ``options.default_precision``, else 1/sqrt(default_shots),
    else IBM's 1/64."""
    options = params.get("options") or {}
    precision = _first_set(params.get("precision"), options.get("default_precision"))
    if precision is None and options.get("default_shots") is not None:
        precision = 1 / np.sqrt(options["default_shots"])
    if precision is None:
        precision = IBM_DEFAULT_PRECISION
    return float(precision), options.get("seed_estimator")


def sampler_circuit(circuit, where: str, physical: bool | None = None):
    """A sampler pub's circuit as the engine runs it (see :func:`_compact`)."""
    if not circuit.num_clbits:
        raise ExecutionError(f"{where}: sampler circuit has no measurements")
    return _compact(circuit, physical=physical)[0]


def estimator_circuit(circuit, observables: Any, where: str, physical: bool | None = None):
    """An estimator pub's circuit (final measurements dropped) and observables as the
    engine runs them (see :func:`_compact`)."""
    if "measure" in circuit.count_ops():  # counted natively: a sweep calls this per point
        circuit = circuit.remove_final_measurements(inplace=False)
    return _compact(circuit, observables, where, physical)


def run_sampler(pubs: list[tuple], shots: int, seed: int | None, engine: Engine | None = None):
    """Sample ``(circuit, values, shots)`` pubs (circuits from :func:`sampler_circuit`):
    the engine and method chosen, and the memory checked, before anything is allocated."""
    return start_sampler(pubs, shots, seed, engine).result()


def start_sampler(
    pubs: list[tuple],
    shots: int,
    seed: int | None,
    engine: Engine | None = None,
    sampled: int | None = None,
) -> Started:
    """:func:`run_sampler` up to the engine's start: checked (``sampled``: the shots
    kept, checked against the memory too), then running on the engine's thread."""
    engine = engine or Engine()
    method, device, available = _plan(engine, [p[0] for p in pubs], sampler=True)
    if sampled is not None:
        reason = memory.shots_refusal(sampled, len(pubs), available)
        if reason is not None:
            raise Rejected(reason)
    pubs = [(_for_engine(engine, method, device, p[0]), *p[1:]) for p in pubs]
    return Started(_start(_sampler(engine, method, device, available, int(shots), seed), pubs))


def run_estimator(
    pubs: list[tuple], precision: float, seed: int | None, engine: Engine | None = None
):
    """Estimate ``(circuit, observables, values, precision)`` pubs (from
    :func:`estimator_circuit`), checked as :func:`run_sampler`; stds are the precision
    each value was drawn with, whichever engine ran."""
    return start_estimator(pubs, precision, seed, engine).result()


def start_estimator(
    pubs: list[tuple], precision: float, seed: int | None, engine: Engine | None = None
) -> Started:
    """:func:`run_estimator` up to the engine's start (see :func:`start_sampler`)."""
    engine = engine or Engine()
    method, device, available = _plan(engine, [p[0] for p in pubs], sampler=False)
    pubs = [(_for_engine(engine, method, device, p[0]), *p[1:]) for p in pubs]
    estimator = _estimator(engine, method, device, available, float(precision), seed)
    return Started(_start(estimator, pubs), None if engine.qiskit == "aer" else _honest_stds)


def _sampler(
    engine: Engine, method: str, device: str, available: int, shots: int, seed: int | None
):
    if engine.qiskit == "reference":
        from qiskit.primitives import StatevectorSampler

        return StatevectorSampler(default_shots=shots, seed=seed)
    from qiskit_aer.primitives import SamplerV2

    options = {"backend_options": _backend_options(method, device, available)}
    return SamplerV2(default_shots=shots, seed=seed, options=options)


def _backend_options(method: str, device: str, available: int) -> dict[str, Any]:
    options: dict[str, Any] = {"method": method, "device": device}
    if device == "CPU":
        # Aer sizes its parallel shots and experiments by the machine's memory; a
        # Slurm job may only have its cgroup's share
        options["max_memory_mb"] = max(1, available >> 20)
    return options


def _estimator(
    engine: Engine, method: str, device: str, available: int, precision: float, seed: int | None
):
    if engine.qiskit == "reference":
        from qiskit.primitives import StatevectorEstimator

        return StatevectorEstimator(default_precision=precision, seed=seed)
    from qiskit_aer.primitives import EstimatorV2

    # Aer computes exact expectation values, then draws N(exact, precision) and reports
    # that precision as the std; precision 0 gives the exact value with std 0.
    options: dict[str, Any] = {
        "default_precision": precision,
        "backend_options": _backend_options(method, device, available),
    }
    if seed is not None:
        options["run_options"] = {"seed_simulator": seed}
    return EstimatorV2(options=options)


def _for_engine(engine: Engine, method: str, device: str, circuit):
    """The circuit in gates the Aer method runs.

    Aer's primitives do not transpile: an instruction it has no kernel for (``cs``,
    ``ecr`` under some methods, a custom gate) fails the run, where the reference
    primitives expand definitions. Such circuits are translated to Aer's gates
    (optimization level 0: no layout, no routing, qubits and parameters unchanged).
    """
    if engine.qiskit != "aer":
        return circuit
    supported = _aer_operations(method, device)
    if set(circuit.count_ops()) <= supported:  # counted natively, not op by op in Python
        return circuit
    from qiskit import transpile
    from qiskit.circuit.library import get_standard_gate_name_mapping

    # qiskit's standard gates among Aer's (transpile refuses Aer's own names, like mcrx)
    basis = sorted(supported & set(get_standard_gate_name_mapping()))
    try:
        return transpile(circuit, basis_gates=basis, optimization_level=0)
    except Exception as exc:
        raise ExecutionError(
            f"cannot translate the circuit to Aer's gates: {first_line(exc)}"
        ) from None


_OPERATIONS: dict[tuple[str, str], frozenset[str]] = {}


def _aer_operations(method: str, device: str) -> frozenset[str]:
    if (method, device) not in _OPERATIONS:
        from qiskit_aer import AerSimulator

        names = AerSimulator(method=method, device=device).target.operation_names
        _OPERATIONS[method, device] = frozenset(names) | {"barrier"}
    return _OPERATIONS[method, device]


def _honest_stds(result):
    """The reference estimator adds N(0, precision) noise but reports std 0: report the
    precision it sampled with instead."""
    from qiskit.primitives.containers import DataBin, PrimitiveResult, PubResult

    pubs = []
    for pub in result:
        precision = float(pub.metadata.get("target_precision") or 0.0)
        evs = pub.data.evs
        stds = np.full(np.shape(evs), precision)
        pubs.append(PubResult(DataBin(evs=evs, stds=stds, shape=evs.shape), pub.metadata))
    return PrimitiveResult(pubs, metadata=result.metadata)


def _plan(engine: Engine, circuits: list, sampler: bool) -> tuple[str, str, int]:
    """The simulation method and device for these circuits and the memory this job may
    use (read once: a sweep calls this for every point); refuse what cannot fit."""
    if engine.qiskit == "reference":
        method, device = "statevector", "CPU"
        width = max((c.num_qubits for c in circuits), default=0)
    else:
        method = engine.method
        if method == "automatic":
            clifford = all(_is_clifford(c) for c in circuits)
            method = "stabilizer" if clifford else "statevector"
        device = _device(engine, method)
        # Aer drops qubits no instruction touches from a sampler circuit; its estimator
        # saves expectation values over every qubit, so there all of them count.
        width = max((_active_qubits(c) if sampler else c.num_qubits for c in circuits), default=0)
    available = _available_bytes()
    if device == "CPU":  # a GPU's memory is checked by Aer itself
        _check_memory(engine, method, width, f"{width}-qubit {method}", available)
    return method, device, available


# (reader, when, bytes): the last reading of this job's free memory
_last_reading: tuple[Any, float, int] | None = None
#: how long a reading serves: a sweep plans a run every few ms, and each reading opens
#: /proc/meminfo and the cgroup files (0.1-0.5 ms); memory can change right after any
#: reading anyway
READING_SECONDS = 0.1


def _available_bytes() -> int:
    global _last_reading
    reader, now = memory.available_bytes, time.monotonic()
    last = _last_reading
    # the reader is part of the key: a test that replaces it is never served an old value
    if last is not None and last[0] is reader and now - last[1] < READING_SECONDS:
        return last[2]
    available = reader()
    _last_reading = (reader, now, available)
    return available


def _is_clifford(circuit) -> bool:
    for inst in circuit.data:
        name = inst.operation.name
        if name not in _CLIFFORD or (inst.operation.params and name != "delay"):
            return False
    return True


def _active_qubits(circuit) -> int:
    # the instruction's name, not its operation: no Python gate object is built per gate
    return len({q for inst in circuit.data if inst.name != "barrier" for q in inst.qubits})


def _device(engine: Engine, method: str) -> str:
    """Aer's device name, ``CPU`` or ``GPU``, for the DEVICE setting and the method."""
    wanted = engine.device.lower()
    if wanted == "cpu":
        return "CPU"
    from qiskit_aer import AerSimulator

    gpu = "GPU" in AerSimulator().available_devices()
    if wanted == "gpu":
        if not gpu:
            raise Rejected(
                f"{engine.variables}DEVICE=gpu but Aer sees no GPU: install qiskit-aer-gpu "
                "in place of qiskit-aer and run where a GPU is visible (nvidia-smi), or set "
                f"{engine.variables}DEVICE=cpu"
            )
        if method not in GPU_METHODS:
            raise Rejected(
                f"Aer's {method} method does not run on a GPU ({engine.variables}DEVICE=gpu); "
                f"use {engine.variables}METHOD=statevector or density_matrix, or DEVICE=cpu"
            )
        return "GPU"
    return "GPU" if gpu and method in GPU_METHODS else "CPU"


def _check_memory(
    engine: Engine, method: str, width: int, what: str, available: int | None = None
) -> None:
    """Refuse (exit 2) a dense simulation this job's memory cannot hold."""
    state = memory.dense_state_bytes(width, method)
    if state is None:
        return
    reason = memory.refusal(
        int(state * memory.DENSE_FACTOR[engine.qiskit]),
        f"a {what} simulation needs",
        f"Set {engine.variables}METHOD=matrix_product_state (memory grows with entanglement, "
        "not with qubits) for a weakly entangled circuit, ask the job for more memory, or run "
        "it on a QPU resource",
        available,
    )
    if reason is not None:
        raise Rejected(reason)


def _first_set(*values: Any) -> Any:
    """The first value that is not None: an explicit 0 is a value, not "unset"."""
    return next((value for value in values if value is not None), None)


def _start(primitive, pubs):
    """The primitive's job (its engine runs on a thread of its own)."""
    try:
        return primitive.run(pubs)
    except Exception as exc:  # qiskit's coercion errors: shape, observables, parameters
        raise ExecutionError(f"cannot run the pubs: {first_line(exc)}") from None


class Started:
    """A primitive's pubs running on its engine's own thread (as Aer's jobs run)."""

    def __init__(self, job: Any, post: Callable[[Any], Any] | None = None) -> None:
        self._job = job
        self._post = post

    def done(self) -> bool:
        """Whether the engine has finished (result or failure)."""
        return self._job.done()

    def cancel(self) -> None:
        """Cancel the job if its engine has not started it (a started one runs on)."""
        self._job.cancel()

    def result(self) -> Any:
        """Wait for the ``PrimitiveResult``; the engine's failure as an ExecutionError."""
        try:
            result = self._job.result()
        except Exception as exc:
            raise ExecutionError(f"cannot run the pubs: {first_line(exc)}") from None
        return result if self._post is None else self._post(result)


def encode_primitive_result(result, support_qiskit: bool = True) -> str:
    """Serialize a PrimitiveResult as Qiskit Runtime does.

    ``support_qiskit`` true (the default): RuntimeEncoder form, decodable with
    RuntimeDecoder. False: the plain-JSON form of IBM's ``*_result_v2`` schemas.
    """
    return codec.encode(steady_metadata(result) if support_qiskit else plain_result(result))


def steady_metadata(result):
    """The result without Aer's per-run ``simulator_metadata`` (timings, the machine's
    memory): the metadata stays what the reference primitives reported, and a seeded
    run's result is the same file every time."""
    from qiskit.primitives.containers import PrimitiveResult

    pubs = []
    for pub in result:
        if "simulator_metadata" in pub.metadata:
            pub = type(pub)(pub.data, _steady(pub.metadata))
        pubs.append(pub)
    return PrimitiveResult(pubs, metadata=result.metadata)


def _steady(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k != "simulator_metadata"}


def _samples(bit_array) -> Any:
    """Hex strings per shot, nested like the pub's shape."""

    def row_hex(rows: np.ndarray) -> list[str]:
        return [hex(int.from_bytes(r.tobytes(), "big")) for r in rows]

    array = bit_array.array
    if array.ndim == 2:
        return row_hex(array)
    return [_samples_nd(array[i], row_hex) for i in range(array.shape[0])]


def _samples_nd(array: np.ndarray, row_hex):
    if array.ndim == 2:
        return row_hex(array)
    return [_samples_nd(array[i], row_hex) for i in range(array.shape[0])]


def plain_result(result) -> dict[str, Any]:
    """The plain-JSON (``support_qiskit: false``) form of a PrimitiveResult."""
    from qiskit.primitives.containers import BitArray

    pubs = []
    for pub in result:
        data: dict[str, Any] = {}
        for name, value in pub.data.items():
            if isinstance(value, BitArray):
                data[name] = {"samples": _samples(value), "num_bits": value.num_bits}
            else:
                data[name] = np.asarray(value).tolist()
        pubs.append({"data": data, "metadata": _steady(pub.metadata)})
    return {"results": pubs, "metadata": dict(result.metadata)}


def run_pulser(
    sequence_json: str, runs: int, seed: int | None = None, engine: Engine | None = None
) -> dict[str, int]:
    """Emulate a Pulser abstract-repr sequence and sample ``runs`` shots: {bitstring: count}.

    ``engine.pulser`` picks pulser-simulation's QutipEmulator (``qutip``) or Pasqal's
    emulators behind Pasqal Cloud's EMU_SV / EMU_MPS (``emu-sv``, ``emu-mps``).
    """
    from qrmi_tasks.quiet import quiet_import_warnings

    engine = engine or Engine()
    with quiet_import_warnings():
        from pulser import Sequence

    try:
        sequence = Sequence.from_abstract_repr(sequence_json)
    except Exception as exc:
        raise ExecutionError(f"invalid Pulser sequence: {exc}") from None
    if sequence.is_parametrized():
        raise ExecutionError("the sequence has unbuilt variables; call build() before serializing")
    if seed is not None:
        np.random.seed(seed)
    try:
        if engine.pulser == "qutip":
            counts = _run_qutip(sequence, runs)
        else:
            counts = _run_emu(engine.pulser, sequence, runs, seed)
    except Exception as exc:
        raise ExecutionError(f"emulation failed: {exc}") from None
    return {bits: int(n) for bits, n in sorted(counts.items())}


def _run_qutip(sequence, runs: int) -> Counter[str]:
    from qrmi_tasks.quiet import quiet_import_warnings

    with quiet_import_warnings():
        from pulser_simulation import QutipEmulator

    # only the final state is sampled: "Minimal" keeps the first and last states, where
    # "Full" (the default) keeps one per nanosecond of the sequence
    emulator = QutipEmulator.from_sequence(sequence, evaluation_times="Minimal")
    return emulator.run().sample_final_state(N_samples=runs)


def _run_emu(name: str, sequence, runs: int, seed: int | None) -> Counter[str]:
    from qrmi_tasks.quiet import quiet_import_warnings

    with quiet_import_warnings():
        import torch
        from pulser.backend import BitStrings

        if name == "emu-sv":
            from emu_sv import SVBackend as Backend
            from emu_sv import SVConfig as Config
        else:
            from emu_mps import MPSBackend as Backend
            from emu_mps import MPSConfig as Config
    if seed is not None:
        torch.manual_seed(seed)  # the emulators sample with torch
    bitstrings = BitStrings(evaluation_times=[1.0], num_shots=runs)
    config = Config(observables=[bitstrings], log_level=logging.WARNING)
    results = Backend(sequence, config=config).run()
    return Counter(results.get_result(bitstrings, 1.0))
