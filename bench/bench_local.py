"""Print the ``local`` resource's cost next to a plain Qiskit Aer script on the same circuit.

Usage: ``.venv/bin/python bench/bench_local.py [--repeat N] [--qubits 16 20 24]``.

For each case, whole processes, one after the other: ``qrmi-task-runner local PAYLOAD -o
FILE`` and a ten-line script that loads the same circuit (from QPY) and calls Aer's
SamplerV2 (or EstimatorV2) itself. Wall time and peak memory (the sum of the resident sets of the
process and its children, sampled every 10 ms) are medians of ``--repeat`` runs. Cases:
random circuits (``qiskit.circuit.random.random_circuit``, depth 430, 4096 shots) of
16, 20 and 24 qubits, and a 20-qubit estimator with 5 observables; plus the Bell sampler
end to end. Figures, not assertions: the target is at most 1.3x the plain script's wall
time and 1.5x its peak memory.

Both sides run in this process's environment: on a machine shared with other work, set
``OMP_WAIT_POLICY=passive`` for both (Aer's OpenMP threads otherwise spin at every gate
while their partner thread waits for a core: 10x slower here under load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RUNNER = [sys.executable, "-m", "qrmi_tasks"]
BELL = ROOT / "examples" / "qiskit" / "bell_sampler.json"
SHOTS = 4096
DEPTH = 430
PRECISION = 0.01

# The plain script: what a user would write with Aer's primitives, on the same circuit
# (read from a QPY file written next to the payload, the leanest way to load it).
PLAIN = """
import json, sys
from qiskit import qpy
from qiskit_aer.primitives import EstimatorV2, SamplerV2
with open(sys.argv[1] + ".qpy", "rb") as file:
    circuit = qpy.load(file)[0]
args = json.load(open(sys.argv[1] + ".args"))
if "shots" in args:
    result = SamplerV2(default_shots=args["shots"], seed=1).run([circuit]).result()
else:
    options = {"default_precision": args["precision"], "run_options": {"seed_simulator": 1}}
    result = EstimatorV2(options=options).run([(circuit, args["observables"])]).result()
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "QRMI_"))}


def measure(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak bytes of the process tree's summed RSS) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass  # a process ended between the listing and the read
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.read()[-500:]}")
    return elapsed, peak


def payloads(directory: Path, qubits: list[int], estimator: bool) -> dict[str, Path]:
    """The benchmark payloads, QPY-encoded as Qiskit Runtime clients send them."""
    import numpy as np
    from qiskit import qpy, transpile
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.circuit.random import random_circuit
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime import RuntimeEncoder

    # in Aer's own gates, so that the plain script runs them as they are (the runner
    # would translate the few random_circuit draws Aer has no kernel for, like cs)
    standard = set(get_standard_gate_name_mapping())
    basis = sorted(standard & set(AerSimulator().target.operation_names))

    def random(n: int, measure: bool, seed: int):
        circuit = random_circuit(n, DEPTH, max_operands=2, measure=measure, seed=seed)
        return transpile(circuit, basis_gates=basis, optimization_level=0)

    def write(name: str, program: str, parameters: dict) -> Path:
        """The payload NAME.json, and NAME.json.qpy / .args for the plain script."""
        path = directory / f"{name}.json"
        document = {"program_id": program, "parameters": {**parameters, "version": 2}}
        path.write_text(json.dumps(document, cls=RuntimeEncoder))
        pub = parameters["pubs"][0]
        with open(f"{path}.qpy", "wb") as file:
            qpy.dump(pub[0], file)
        args = {k: v for k, v in parameters.items() if k in ("shots", "precision")}
        if program == "estimator":
            args["observables"] = pub[1]
        Path(f"{path}.args").write_text(json.dumps(args))
        return path

    found = {}
    for n in qubits:
        circuit = random(n, measure=True, seed=n)
        found[f"sampler {n}q"] = write(f"s{n}", "sampler", {"pubs": [[circuit]], "shots": SHOTS})
    if not estimator:
        return found
    circuit = random(20, measure=False, seed=7)
    rng = np.random.default_rng(7)
    observables = ["".join(rng.choice(list("IXYZ"), 20)) for _ in range(5)]
    found["estimator 20q x5"] = write(
        "e20", "estimator", {"pubs": [[circuit, observables]], "precision": PRECISION}
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--qubits", type=int, nargs="+", default=[16, 20, 24])
    parser.add_argument("--no-estimator", action="store_true", help="skip the estimator case")
    parser.add_argument("--no-bell", action="store_true", help="skip the Bell end-to-end case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        plain = directory / "plain.py"
        plain.write_text(PLAIN)
        out = directory / "out.json"
        print(f"{'case':<18} {'runner s':>9} {'plain s':>8} {'ratio':>6} "
              f"{'runner MiB':>11} {'plain MiB':>10} {'ratio':>6}")  # fmt: skip
        for name, payload in payloads(directory, args.qubits, not args.no_estimator).items():
            ours, theirs = [], []
            for _ in range(args.repeat):  # alternate, so load drifts hit both alike
                ours.append(measure([*RUNNER, "local", str(payload), "-o", str(out)]))
                theirs.append(measure([sys.executable, str(plain), str(payload)]))
            wall = statistics.median(t for t, _ in ours), statistics.median(t for t, _ in theirs)
            peak = statistics.median(m for _, m in ours), statistics.median(m for _, m in theirs)
            print(
                f"{name:<18} {wall[0]:>9.2f} {wall[1]:>8.2f} {wall[0] / wall[1]:>6.2f} "
                f"{peak[0] / 2**20:>11.0f} {peak[1] / 2**20:>10.0f} {peak[0] / peak[1]:>6.2f}",
                flush=True,
            )
        if args.no_bell:
            return
        bell = sorted(measure([*RUNNER, "local", str(BELL), "-o", str(out)])[0] for _ in range(5))
        print(f"Bell sampler end to end: median {bell[2]:.2f} s (min {bell[0]:.2f} s, 5 runs)")


if __name__ == "__main__":
    main()
