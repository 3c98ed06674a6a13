"""Child process of the ``local`` resource: run one payload, write result.json or error.txt.

Usage: ``python -m qrmi_tasks.providers.local.worker WORKDIR [--seed N] [--engine aer]
[--method automatic] [--device auto] [--pulser-engine qutip] [--variables PREFIX]
[--parent PID]``;
WORKDIR holds ``payload.json``. Its stderr is the task's log (``--logs FILE``): what it
runs and how, how long it took, and whatever the simulators print. The result appears
atomically (written as ``result.json.part``, renamed). Exit 0: result written; 1: the payload failed
(``error.txt``); :data:`EXIT_REJECTED`: it cannot run here as configured (``error.txt``),
an input error for the runner. Only what the payload needs is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

#: the payload cannot run here (does not fit in memory, no GPU...): the runner exits 2
EXIT_REJECTED = 65  # sysexits' EX_DATAERR: no interpreter error exits with it


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="local_worker")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--engine", default="aer")
    parser.add_argument("--method", default="automatic")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pulser-engine", default="qutip")
    parser.add_argument("--variables", default="QRMI_LOCAL_")
    parser.add_argument("--parent", type=int, help="die with this process (the runner)")
    return parser.parse_args(argv)


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL this worker when ``parent`` (the runner) dies, even by SIGKILL (Slurm's
    KillWait): the simulation must not outlive it. Exits at once if it already has."""
    if sys.platform == "linux":
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: the runner's close() still stops us
            return
    if os.getppid() != parent:  # it died before the request was made: nobody waits for us
        os._exit(1)


def main(argv: list[str]) -> int:
    """Run the payload in the given work directory; return the process exit code."""
    args = _arguments(argv)
    if args.parent is not None:
        die_with_parent(args.parent)
    workdir: Path = args.workdir
    from qrmi_tasks.providers.local.sim import (
        Engine,
        ExecutionError,
        Rejected,
        encode_primitive_result,
        run_primitive,
        run_pulser,
    )

    engine = Engine(args.engine, args.method, args.device, args.pulser_engine, args.variables)
    document = json.loads((workdir / "payload.json").read_text())
    started = time.monotonic()
    seed = "no seed" if args.seed is None else f"seed {args.seed}"
    _log(f"local simulator: {_what(document, args)}, {seed}")
    try:
        if "program_id" in document:
            params = document["parameters"]
            if args.seed is not None:
                params = seeded(document["program_id"], params, args.seed)
            result = run_primitive(document["program_id"], params, engine)
            text = encode_primitive_result(result, params.get("support_qiskit", True) is not False)
        elif "iqmjson" in document:
            from qrmi_tasks.providers.local.iqm_sim import run_iqm_job

            job = document["iqmjson"]
            job = job if isinstance(job, str) else json.dumps(job)
            text = run_iqm_job(job, args.seed, engine)
        else:
            sequence = document["sequence"]
            sequence = sequence if isinstance(sequence, str) else json.dumps(sequence)
            counts = run_pulser(sequence, document["job_runs"], args.seed, engine)
            text = json.dumps({"counter": counts})
    except ExecutionError as exc:
        message = " ".join(str(exc).split())
        (workdir / "error.txt").write_text(message)
        _log(f"failed after {time.monotonic() - started:.2f} s: {message}")
        return EXIT_REJECTED if isinstance(exc, Rejected) else 1
    part = workdir / "result.json.part"
    part.write_text(text)
    os.replace(part, workdir / "result.json")
    _log(f"done in {time.monotonic() - started:.2f} s ({len(text)} bytes of result)")
    return 0


def _log(line: str) -> None:
    """One line of the task's log, with a UTC time as the runner's lines have."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    print(f"{stamp} {line}", file=sys.stderr, flush=True)


def _what(document: dict, args: argparse.Namespace) -> str:
    """The payload and the engine that runs it, for the log's first line."""
    if "program_id" in document:
        pubs = len(document["parameters"].get("pubs") or [])
        where = f"engine {args.engine}, method {args.method}, device {args.device}"
        return f"{document['program_id']} with {pubs} pub(s) on {where}"
    if "iqmjson" in document:
        return f"IQM {document.get('job_type')} job on engine {args.engine}"
    return f"Pulser sequence, {document.get('job_runs')} run(s) on {args.pulser_engine}"


def seeded(program_id: str, params: dict, seed: int) -> dict:
    """A copy of primitive ``params`` with the resource's SEED where they set none."""
    params = json.loads(json.dumps(params))
    options = params.setdefault("options", {})
    if program_id == "sampler":
        options.setdefault("simulator", {}).setdefault("seed_simulator", seed)
    else:
        options.setdefault("seed_estimator", seed)
    return params


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
