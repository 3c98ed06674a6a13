"""Print the cost of a parameter sweep with qrmi_tasks' primitives on ``local`` (in this
process) next to the same sweep with plain qiskit-aer primitives.

Usage: ``.venv/bin/python bench/bench_primitives.py [--iterations 50] [--qubits 4] [--repeat 5]``.

The sweep is what a VQE loop does: ``--iterations`` calls, each one ``run()`` of one pub
(a hardware-efficient ansatz of ``--qubits`` qubits, two layers of RY and a CX chain) at
new parameter values, waiting for its ``result()``. EstimatorV2 with two observables,
then SamplerV2 with 1024 shots. Both sides are warmed up once (imports, Aer's first
call); the figures are the best of ``--repeat`` sweeps, the two sides alternating.
Also, once: the old path,
``qrmi_tasks.run`` of the same estimator payload on ``local`` in a worker process.
Figures, not assertions: the target is at most 1.5x the plain Aer loop.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _ansatz(qubits: int):
    from qiskit.circuit.library import n_local

    return n_local(qubits, "ry", "cx", entanglement="linear", reps=2)


def _sweep(primitive, pubs_at, iterations: int, **kwargs) -> float:
    started = time.perf_counter()
    for i in range(iterations):
        primitive.run([pubs_at(i)], **kwargs).result()
    return time.perf_counter() - started


def _best_pair(aer, ours, pubs_at, iterations: int, repeat: int, **kwargs) -> tuple[float, float]:
    """Best sweep time of each side, the sweeps alternating (a shared machine's load
    then weighs on both alike)."""
    for primitive in (aer, ours):
        primitive.run([pubs_at(0)], **kwargs).result()  # warm-up
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for side, primitive in enumerate((aer, ours)):
            times[side].append(_sweep(primitive, pubs_at, iterations, **kwargs))
    return min(times[0]), min(times[1])


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from qiskit.quantum_info import SparsePauliOp
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    import qrmi_tasks

    circuit = _ansatz(args.qubits)
    measured = circuit.measure_all(inplace=False)
    observables = [
        SparsePauliOp("Z" * args.qubits),
        SparsePauliOp.from_sparse_list([("ZZ", [0, 1], 1.0)], args.qubits),
    ]
    rng = np.random.default_rng(7)
    points = rng.uniform(0, np.pi, (args.iterations, circuit.num_parameters))

    def est_pub(i: int):
        return (circuit, observables, points[i])

    def sam_pub(i: int):
        return (measured, points[i])

    print(
        f"{args.iterations}-iteration sweep, {args.qubits}-qubit ansatz "
        f"({circuit.num_parameters} parameters), best of {args.repeat}"
    )
    cases = [
        ("EstimatorV2", AerEstimator(), qrmi_tasks.EstimatorV2("local"), est_pub, {}),
        ("SamplerV2", AerSampler(), qrmi_tasks.SamplerV2("local"), sam_pub, {"shots": 1024}),
    ]
    for name, aer, ours, pub_at, kwargs in cases:
        plain, local = _best_pair(aer, ours, pub_at, args.iterations, args.repeat, **kwargs)
        print(
            f"  {name}: plain Aer {plain:.3f} s ({plain / args.iterations * 1e3:.2f} ms/call), "
            f"qrmi_tasks local in process {local:.3f} s "
            f"({local / args.iterations * 1e3:.2f} ms/call): ratio {local / plain:.2f}x"
        )

    from generators import estimator_payload

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        payload = estimator_payload(est_pub(0))
    for in_process in (False, True):
        started = time.perf_counter()
        qrmi_tasks.run(payload, "local", log_level=None, in_process=in_process)
        where = "in process" if in_process else "worker process"
        print(
            f"  qrmi_tasks.run of the estimator payload on local ({where}), one iteration: "
            f"{time.perf_counter() - started:.3f} s"
        )


if __name__ == "__main__":
    main()
