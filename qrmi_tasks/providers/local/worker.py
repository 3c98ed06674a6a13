"""Child process of the ``local`` resource: run one payload, write result.json or error.txt.

Usage: ``python -m qrmi_tasks.providers.local.worker WORKDIR [--seed N] [--engine aer]
[--method automatic] [--device auto] [--pulser-engine qutip] [--variables PREFIX]``;
WORKDIR holds ``payload.json``. The result appears atomically (written as
``result.json.part``, renamed). Exit 0: result written; 1: the payload failed
(``error.txt``); :data:`EXIT_REJECTED`: it cannot run here as configured (``error.txt``),
an input error for the runner. Only what the payload needs is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the payload in the given work directory; return the process exit code."""
    args = _arguments(argv)
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
    try:
        if "program_id" in document:
            params = document["parameters"]
            if args.seed is not None:
                params = _seeded(document["program_id"], params, args.seed)
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
        (workdir / "error.txt").write_text(" ".join(str(exc).split()))
        return EXIT_REJECTED if isinstance(exc, Rejected) else 1
    part = workdir / "result.json.part"
    part.write_text(text)
    os.replace(part, workdir / "result.json")
    return 0


def _seeded(program_id: str, params: dict, seed: int) -> dict:
    params = json.loads(json.dumps(params))
    options = params.setdefault("options", {})
    if program_id == "sampler":
        options.setdefault("simulator", {}).setdefault("seed_simulator", seed)
    else:
        options.setdefault("seed_estimator", seed)
    return params


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
