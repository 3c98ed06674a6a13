"""A fake Alice & Bob Felis API on 127.0.0.1 (the routes qrmi's generated client calls).

Routes (HTTP Basic with the API key as issued, FastAPI's 401 otherwise):
``GET /v1/targets/``, ``POST /v1/jobs/``, ``POST /v1/jobs/{id}/input`` (multipart part
``input``), ``GET /v1/jobs/{id}``, ``DELETE /v1/jobs/{id}``, ``GET /v1/jobs/{id}/output``
(CSV text). Bodies, events and errors follow ``tests/conformance/alice_bob`` (qrmi's
generated models, qiskit-alice-bob-provider's recorded bodies; ``SOURCES.md``), which
``tests/test_conformance_alice_bob.py`` checks the live answers against.

A job waits for its input (``CREATED``), then walks the recorded sequence
``INPUT_READY -> COMPILING -> COMPILED -> TRANSPILING -> TRANSPILED -> EXECUTING ->
SUCCEEDED``. Compiling parses the program with pyqir (what is not LLVM text fails
``COMPILATION_FAILED``); transpiling checks it against the target (more qubits, or an
instruction the target lacks: ``TRANSPILATION_FAILED``, the recorded error); executing
turns the QIR calls into a Qiskit circuit and samples it ``nbShots`` times with the
``local`` resource's worker (Qiskit Aer): the histogram is computed, never canned.

Behaviour via ``configure``: ``faults`` (see :mod:`fakes.server`), ``job_seconds`` (from
the upload to the end; ``INPUT_READY`` for ``queue_seconds``, by default half),
``fail_jobs`` (``EXECUTION_FAILED`` with the recorded error).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from .server import FakeServer, Request, Response
from .worker import run_worker

API_KEY = base64.b64encode(b"felis-user:felis-password-0123456789").decode()
CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance" / "alice_bob"
_STAGES = ("COMPILING", "COMPILED", "TRANSPILING", "TRANSPILED", "EXECUTING")
_FINAL = {
    "SUCCEEDED",
    "CANCELLED",
    "TIMED_OUT",
    "COMPILATION_FAILED",
    "TRANSPILATION_FAILED",
    "EXECUTION_FAILED",
}


def conformance(name: str) -> Any:
    """The conformance record ``tests/conformance/alice_bob/{name}.json``."""
    return json.loads((CONFORMANCE / f"{name}.json").read_text())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000", time.gmtime())


def _error(code: int | str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _number(value: float) -> int | float:
    """A bound as Felis words it in a refusal (``[1, 10]``, recorded: no ``.0``)."""
    return int(value) if float(value).is_integer() else value


class QirError(Exception):
    """A program the fake's stack refuses; ``event`` is the failure event it causes."""

    def __init__(self, event: str, code: str, message: str) -> None:
        super().__init__(message)
        self.event, self.code = event, code


def qir_circuit(text: str, target: dict[str, Any]) -> Any:
    """The Qiskit circuit of a QIR program (compile, then transpile against ``target``)."""
    import pyqir
    from qiskit import QuantumCircuit

    try:
        module = pyqir.Module.from_ir(pyqir.Context(), text)
    except (ValueError, RuntimeError) as exc:
        raise QirError("COMPILATION_FAILED", "InvalidInput", str(exc).splitlines()[0]) from None
    entry = next((f for f in module.functions if pyqir.is_entry_point(f)), None)
    if entry is None:
        raise QirError("COMPILATION_FAILED", "InvalidInput", "the program has no entry point")
    calls = []
    for block in entry.basic_blocks:
        for inst in block.instructions:
            if isinstance(inst, pyqir.Call) and inst.callee.name.startswith("__quantum__qis__"):
                calls.append(inst)
    qubits = pyqir.required_num_qubits(entry) or 0
    results = pyqir.required_num_results(entry) or 0
    if qubits > target["numQubits"]:
        raise QirError(
            "TRANSPILATION_FAILED",
            "OperationNotSupported",
            f"Input program requires {qubits} qubits, the maximum is {target['numQubits']}",
        )
    offered = {i["signature"].split(":", 1)[0] for i in target["instructions"]}
    circuit = QuantumCircuit(max(qubits, 1), max(results, 1), name="felis")
    for call in calls:
        name = call.callee.name
        if name not in offered:
            raise QirError("TRANSPILATION_FAILED", "OperationNotSupported", f"{name} unsupported")
        _apply(circuit, name, call.args, pyqir)
    return circuit


def _apply(circuit: Any, name: str, args: list[Any], pyqir: Any) -> None:
    """Append the QIS call ``name`` (``__quantum__qis__{gate}__body``) to ``circuit``."""
    gate = re.fullmatch(r"__quantum__qis__(\w+?)__(body|adj)", name)
    op, adjoint = gate.group(1), gate.group(2) == "adj"
    qubits = [pyqir.qubit_id(a) for a in args if pyqir.qubit_id(a) is not None]
    results = [pyqir.result_id(a) for a in args if pyqir.result_id(a) is not None]
    angles = [a.value for a in args if isinstance(a, pyqir.FloatConstant)]
    flags = [a.value for a in args if isinstance(a, pyqir.IntConstant)]
    if op in ("mz", "m", "measure"):
        circuit.measure(qubits[0], results[0])
    elif op == "mx":
        circuit.h(qubits[0])
        circuit.measure(qubits[0], results[0])
    elif op in ("prepare_z", "prepare_x"):
        circuit.reset(qubits[0])
        if flags and flags[0]:
            circuit.x(qubits[0])
        if op == "prepare_x":
            circuit.h(qubits[0])
    elif op in ("cnot", "cx"):
        circuit.cx(*qubits)
    elif op in ("s", "t") and adjoint:
        getattr(circuit, op + "dg")(*qubits)
    elif op in ("reset", "x", "y", "z", "h", "s", "t", "cz", "swap", "ccx"):
        getattr(circuit, op)(*qubits)
    elif op in ("rx", "ry", "rz"):
        getattr(circuit, op)(angles[0], *qubits)
    else:
        raise QirError("TRANSPILATION_FAILED", "OperationNotSupported", f"{name} unsupported")


def sample(circuit: Any, shots: int) -> str:
    """``circuit`` sampled ``shots`` times on the local worker, as Felis's CSV histogram."""
    from qiskit import qasm3
    from qiskit_ibm_runtime import RuntimeDecoder

    document = {
        "program_id": "sampler",
        "parameters": {"pubs": [[qasm3.dumps(circuit)]], "shots": shots, "version": 2},
    }
    result = json.loads(run_worker(document), cls=RuntimeDecoder)
    counts = next(iter(result[0].data.values())).get_counts()
    return "".join(f"{bits},{n}\n" for bits, n in sorted(counts.items(), reverse=True))


class FakeFelis(FakeServer):
    """State of the fake service; :class:`fakes.server.FakeServer` does the HTTP."""

    def __init__(self, job_seconds: float = 0.3) -> None:
        super().__init__(job_seconds=job_seconds, queue_seconds=None, fail_jobs=False)
        self.targets: list[dict[str, Any]] = conformance("targets")["example"]
        self.jobs: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, bytes] = {}  # the uploaded programs, as received
        self.outputs: dict[str, str] = {}
        self.created: list[dict[str, Any]] = []  # decoded POST /v1/jobs/ bodies

    def fault(self, request: Request, status: int) -> Response:
        return Response(status, _error(status, f"injected fault {status}"))

    def encode(self, request: Request, response: Response) -> tuple[bytes, str]:
        if isinstance(response.body, str):  # the output histogram
            return response.body.encode(), "text/plain; charset=utf-8"
        return super().encode(request, response)

    # -- behaviour ----------------------------------------------------------------------
    def _target(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.targets if t["name"] == name), None)

    def _event(self, job: dict[str, Any], event: str, errors: list[Any] | None = None) -> bool:
        """Record ``event`` unless the job already ended (a cancel overtook the run)."""
        with self.lock:
            if job["events"][-1]["type"] in _FINAL:
                return False
            job["events"].append({"type": event, "createdAt": _now()})
            if errors:
                job["errors"] = [{"content": e} for e in errors]
            return True

    def create_job(self, body: Any) -> tuple[int, Any]:
        """``POST /v1/jobs/``: FastAPI's 422 for a malformed body, Felis's 400 for a
        parameter the target refuses, else a job waiting for its input."""
        record = conformance("create_job")
        if not isinstance(body, dict):
            return 422, conformance("errors")["examples"]["invalid_body"]
        missing = [f for f in record["request_required"] if f not in body]
        if missing:
            detail = [
                {"loc": ["body", f], "msg": "field required", "type": "value_error.missing"}
                for f in missing
            ]
            return 422, {"detail": detail}
        target = self._target(body["target"])
        if target is None:
            return 400, _error(400, f"Target {body['target']} does not exist")
        params = body["inputParams"] if isinstance(body["inputParams"], dict) else {}
        for name, spec in target["inputParams"].items():
            value = params.get(name, spec["default"])
            for c in spec["constraints"]:
                if value is not None and not c["min"] <= value <= c["max"]:
                    low, high = _number(c["min"]), _number(c["max"])
                    message = f'Input param "{name}" must be in the range [{low}, {high}].'
                    return 400, _error(400, message)
        for name in params:
            if name not in target["inputParams"]:
                return 400, _error(400, f'Unknown input param "{name}"')
        job_id = str(uuid.uuid4())
        job = {
            "inputDataFormat": body["inputDataFormat"],
            "outputDataFormat": body["outputDataFormat"],
            "target": body["target"],
            "inputParams": params,
            "id": job_id,
            "userName": "felis-user",
            "userId": "7",
            "organizationName": "example-lab",
            "events": [{"type": "CREATED", "createdAt": _now()}],
            "errors": [],
        }
        with self.lock:
            self.jobs[job_id] = job
            self.created.append(body)
        return 200, job

    def upload(self, job: dict[str, Any], request: Request) -> tuple[int, Any]:
        """``POST /v1/jobs/{id}/input``: the program (multipart part ``input``) starts it."""
        content_type = request.headers.get("Content-Type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        part = (
            next(
                (
                    p
                    for p in message.iter_parts()
                    if p.get_param("name", header="content-disposition") == "input"
                ),
                None,
            )
            if message.is_multipart()
            else None
        )
        if part is None:
            detail = [
                {"loc": ["body", "input"], "msg": "field required", "type": "value_error.missing"}
            ]
            return 422, {"detail": detail}
        with self.lock:
            if job["id"] in self.inputs:
                return 409, _error(409, f"Job {job['id']} already has an input")
            self.inputs[job["id"]] = part.get_payload(decode=True)
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return 200, job

    def _run(self, job: dict[str, Any]) -> None:
        total = float(self.config["job_seconds"])
        queued = self.config["queue_seconds"]
        queued = total / 2 if queued is None else min(total, float(queued))
        if not self._event(job, "INPUT_READY"):
            return
        time.sleep(queued)
        text = self.inputs[job["id"]].decode("utf-8", "replace")
        try:
            if not self._event(job, "COMPILING"):
                return
            circuit = qir_circuit(text, self._target(job["target"]))
        except QirError as exc:
            # the program was read (compiled) before the target refused it (recorded order)
            passed = ("COMPILED", "TRANSPILING") if exc.event == "TRANSPILATION_FAILED" else ()
            if all(self._event(job, stage) for stage in passed):
                self._event(job, exc.event, [{"code": exc.code, "message": str(exc)}])
            return
        for stage in _STAGES[1:]:
            if not self._event(job, stage):
                return
        time.sleep(max(0.0, total - queued))
        if self.config["fail_jobs"]:
            self._event(
                job, "EXECUTION_FAILED", [{"code": 500, "message": "An unexpected error happened"}]
            )
            return
        try:
            output = sample(circuit, int(job["inputParams"].get("nbShots", 1000)))
        except Exception as exc:
            self._event(job, "EXECUTION_FAILED", [{"code": 500, "message": str(exc)[:300]}])
            return
        with self.lock:
            self.outputs[job["id"]] = output
        self._event(job, "SUCCEEDED")

    def cancel(self, job: dict[str, Any]) -> tuple[int, Any]:
        """``DELETE /v1/jobs/{id}``: an active job ends CANCELLED; a final one is a 409."""
        if not self._event(job, "CANCELLED"):
            return 409, _error(409, f"Job {job['id']} cannot be cancelled anymore")
        return 200, job

    def route(self, request: Request) -> tuple[int, Any]:
        method, path = request.method, request.path
        if request.headers.get("Authorization") != f"Basic {API_KEY}":
            return 401, conformance("errors")["examples"]["unauthenticated"]
        if path == "/v1/targets/" and method == "GET":
            return 200, self.targets
        if path == "/v1/jobs/" and method == "POST":
            return self.create_job(request.json())
        m = re.fullmatch(r"/v1/jobs/([^/]+)(/input|/output)?", path)
        if m is None:
            return 404, {"detail": "Not Found"}
        with self.lock:
            job = self.jobs.get(m.group(1))
        if job is None:
            return 404, _error(404, f"Could not find job {m.group(1)}")
        if m.group(2) is None and method == "GET":
            return 200, job
        if m.group(2) is None and method == "DELETE":
            return self.cancel(job)
        if m.group(2) == "/input" and method == "POST":
            return self.upload(job, request)
        if m.group(2) == "/output" and method == "GET":
            if job["id"] in self.outputs:
                return 200, self.outputs[job["id"]]
            return 409, _error(409, f"Job {job['id']} has no output")
        return 405, {"detail": "Method Not Allowed"}


def runner_env(name: str, fake: FakeFelis, api_key: str = API_KEY) -> dict[str, str]:
    """Variables qrmi-task-runner (and qrmi's task_runner) need for resource ``name``."""
    return {
        "SLURM_JOB_QPU_RESOURCES": name,
        "SLURM_JOB_QPU_TYPES": "alice-bob-felis",
        f"{name}_QRMI_AB_FELIS_API_KEY": api_key,
        f"{name}_QRMI_AB_FELIS_BASE_ENDPOINT": fake.url,
        f"{name}_QRMI_CHECK_TARGET": "on",
    }


def bell_qir(name: str = "bell") -> str:
    """The QIR of a Bell pair, as qiskit-alice-bob-provider writes it (imports it)."""
    from qiskit import QuantumCircuit
    from qiskit_alice_bob_provider.qir import circuit_to_qir

    circuit = QuantumCircuit(2, 2, name=name)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit_to_qir(circuit)
