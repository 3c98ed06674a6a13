"""Child process of the ``local`` resource: run one payload, write result.json or error.txt.

Usage: ``python -m qrmi_tasks.providers.local_worker WORKDIR [--seed N]``; WORKDIR holds
``payload.json``. The result appears atomically (written as ``result.json.part``, renamed).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the payload in ``argv[0]``'s directory; return the process exit code."""
    workdir = Path(argv[0])
    seed = int(argv[2]) if len(argv) > 2 and argv[1] == "--seed" else None
    from qrmi_tasks.providers.local_sim import (
        ExecutionError,
        encode_primitive_result,
        run_primitive,
        run_pulser,
    )

    document = json.loads((workdir / "payload.json").read_text())
    try:
        if "program_id" in document:
            params = document["parameters"]
            if seed is not None:
                params = _seeded(document["program_id"], params, seed)
            result = run_primitive(document["program_id"], params)
            text = encode_primitive_result(result, params.get("support_qiskit", True) is not False)
        else:
            sequence = document["sequence"]
            sequence = sequence if isinstance(sequence, str) else json.dumps(sequence)
            text = json.dumps({"counter": run_pulser(sequence, document["job_runs"], seed)})
    except ExecutionError as exc:
        (workdir / "error.txt").write_text(" ".join(str(exc).split()))
        return 1
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
