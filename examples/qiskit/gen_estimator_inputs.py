"""Generate an EstimatorV2 payload, like the reference runner's gen_estimator_inputs.py, offline.

A QAOA ansatz for a ZZ observable on every edge of the fake backend's coupling map; the
circuit is transpiled for the fake backend and the observable gets the circuit's layout.
Writes ``estimator_input_{backend}.json``::

    python gen_estimator_inputs.py [--backend fake_manila] [--default-shots 5000]
"""

from __future__ import annotations

import argparse

from qiskit.circuit.library import qaoa_ansatz
from qiskit.quantum_info import SparsePauliOp

from generators import estimator_payload
from generators.targets import fake_target


def main() -> None:
    """Build observable and circuit for the fake backend, write the payload."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A small backend keeps the ISA circuit small enough for the 'local' simulator.
    parser.add_argument("--backend", default="fake_manila", help="fake backend name")
    parser.add_argument("--default-shots", type=int, default=5000)
    parser.add_argument("--resilience-level", type=int, default=1)
    parser.add_argument("-o", "--output", help="default: estimator_input_{backend}.json")
    args = parser.parse_args()

    target = fake_target(args.backend).target
    edges = sorted({tuple(sorted(edge)) for edge in target.build_coupling_map().get_edges()})
    observable = SparsePauliOp.from_sparse_list(
        [("ZZ", [i, j], 0.5) for i, j in edges], num_qubits=target.num_qubits
    )
    circuit = qaoa_ansatz(observable, reps=2)
    param_values = [0.1, 0.2, 0.3, 0.4]

    payload = estimator_payload(
        [(circuit, observable, param_values)],
        default_shots=args.default_shots,
        resilience_level=args.resilience_level,
        target=args.backend,
    )
    print(payload)
    print(f"wrote {payload.save(args.output)}")


if __name__ == "__main__":
    main()
