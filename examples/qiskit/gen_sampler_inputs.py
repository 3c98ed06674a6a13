"""Generate a SamplerV2 payload, like the reference runner's gen_sampler_inputs.py, offline.

The reference tool fetches the target of a Direct Access backend; this one transpiles for a
fake backend of qiskit_ibm_runtime.fake_provider (``qrmi-gen sampler --resource NAME``
fetches a live target instead). Writes ``sampler_input_{backend}.json``::

    python gen_sampler_inputs.py [--backend fake_manila] [--num-qubits 4] [--shots 10000]
"""

from __future__ import annotations

import argparse

import numpy as np
from qiskit.circuit.library import efficient_su2

from generators import sampler_payload


def main() -> None:
    """Build the circuit, transpile it for the fake backend, write the payload."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A small backend keeps the ISA circuit small enough for the 'local' simulator.
    parser.add_argument("--backend", default="fake_manila", help="fake backend name")
    parser.add_argument("--num-qubits", type=int, default=4)
    parser.add_argument("--shots", type=int, default=10000)
    parser.add_argument("-o", "--output", help="output file (default sampler_input_{backend}.json)")
    args = parser.parse_args()

    # A parametrized circuit, measured, and random values for its parameters.
    circuit = efficient_su2(args.num_qubits, entanglement="linear")
    circuit.measure_all()
    param_values = np.random.default_rng(1234).random(circuit.num_parameters)

    payload = sampler_payload(
        (circuit, param_values), shots=args.shots, target=args.backend, optimization_level=1
    )
    print(payload)
    print(f"wrote {payload.save(args.output)}")


if __name__ == "__main__":
    main()
