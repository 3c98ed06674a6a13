"""An analog circuit of qiskit-pasqal-provider: one HamiltonianGate on six atoms.

``qrmi-gen qpp analog.py --runs 1000`` converts it to a measured Pulser sequence with the
provider's own helpers and writes ``sequence_input.json``; ``python analog.py`` does the
same through the Python API.
"""

from __future__ import annotations

import argparse

from qiskit.circuit import QuantumCircuit
from qiskit_pasqal_provider.providers.gate import HamiltonianGate, InterpolatePoints

# Six atoms on a triangular grid.
coords = [[0, 0], [3, 5.2], [6, 0], [9, -5.2], [9, 5.2], [12, 0]]

# Nearest-neighbour interaction for a blockade radius of 8.7 µm.
blockade_radius = 8.7
interaction = 5420158.53 / blockade_radius**6

# Adiabatic pulse: the amplitude ramps up 0 -> 4, stays, and ramps down; the detuning
# sweeps from -10 to interaction / 2.
times = [0, 0.2, 0.8, 1]
amplitude = InterpolatePoints(values=[0, 4, 4, 0], times=times)
detuning = InterpolatePoints(values=[-10, -10, interaction / 2, interaction / 2], times=times)

gate = HamiltonianGate(amplitude, detuning, 0.0, coords, grid_transform="triangular")
circuit = QuantumCircuit(len(coords))
circuit.append(gate, circuit.qubits)


def main() -> None:
    """Write the payload ``{"sequence": ..., "job_runs": N}``."""
    from generators import qpp_payload

    parser = argparse.ArgumentParser(description="Write the Pulser payload of this circuit")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--device", default="AnalogDevice", help="a device of pulser.devices")
    parser.add_argument("-o", "--output", help="output file (default sequence_input.json)")
    args = parser.parse_args()
    payload = qpp_payload(circuit, runs=args.runs, device=args.device)
    print(payload)
    print(f"wrote {payload.save(args.output)}")


if __name__ == "__main__":
    main()
