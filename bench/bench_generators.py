"""Print how long generating a 1000-circuit sampler payload takes.

Usage: ``.venv/bin/python bench/bench_generators.py [--circuits N] [--qubits Q]``.
Figures, not assertions. Measures, in this process:

* the API without a target (export to OpenQASM 3, JSON, validation),
* the API with ``target="fake_torino"`` (plus transpiling to ISA), and
* the ``qrmi-gen sampler`` command on N QPY circuits (plus interpreter start and imports).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from qiskit import QuantumCircuit, qpy
from qiskit.circuit.library import efficient_su2

from generators import IsaWarning, sampler_payload


def circuits(count: int, qubits: int) -> list[QuantumCircuit]:
    """``count`` distinct bound circuits (efficient_su2 with random angles), measured."""
    template = efficient_su2(qubits, entanglement="linear", reps=2)
    template.measure_all()
    rng = np.random.default_rng(7)
    return [template.assign_parameters(rng.random(template.num_parameters)) for _ in range(count)]


def timed(label: str, func) -> float:
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    print(f"{label:<48} {elapsed:8.2f} s  {result}")
    return elapsed


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuits", type=int, default=1000)
    parser.add_argument("--qubits", type=int, default=4)
    args = parser.parse_args()
    batch = circuits(args.circuits, args.qubits)
    n = args.circuits
    print(f"{n} circuits of {args.qubits} qubits ({len(batch[0].data)} instructions each)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IsaWarning)
        timed(f"API, no target ({n} circuits)", lambda: sampler_payload(batch, shots=100))
    timed(
        f"API, target fake_torino ({n} circuits)",
        lambda: sampler_payload(batch, shots=100, target="fake_torino"),
    )
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(workdir) / "circuits.qpy"
        with source.open("wb") as handle:
            qpy.dump(batch, handle)
        out = Path(workdir) / "payload.json"
        command = [sys.executable, "-m", "generators", "sampler", str(source)]
        command += ["--shots", "100", "--target", "fake_torino", "-o", str(out)]
        elapsed = timed(
            f"qrmi-gen sampler --target fake_torino ({n} QPY)",
            lambda: subprocess.run(command, check=True, capture_output=True).returncode,
        )
        size = out.stat().st_size
        print(f"payload: {size / 1e6:.1f} MB; {elapsed / n * 1000:.1f} ms per circuit end to end")


if __name__ == "__main__":
    main()
