"""A Pulser sequence for qrmi-task-runner (the reference runner's Pulser example).

Either let qrmi-gen load it (it reads the variable ``sequence``)::

    qrmi-gen pulser sequence.py --runs 1000          # -> sequence_input.json

or run it: ``python sequence.py [--runs N] [-o FILE]`` writes the payload itself.
"""

from __future__ import annotations

import argparse

from pulser import Pulse, Register, Sequence
from pulser.devices import DigitalAnalogDevice

# Four atoms on a 5 µm square, one constant global Rydberg pulse, then a measurement.
register = Register(
    {
        "q0": (-2.5, -2.5),
        "q1": (2.5, -2.5),
        "q2": (-2.5, 2.5),
        "q3": (2.5, 2.5),
    }
)
sequence = Sequence(register, DigitalAnalogDevice)
sequence.declare_channel("rydberg", "rydberg_global")
sequence.add(Pulse.ConstantPulse(100, 2, 2, 0), "rydberg")
sequence.measure("ground-rydberg")


def main() -> None:
    """Write the payload ``{"sequence": ..., "job_runs": N}``."""
    from generators import pulser_payload

    parser = argparse.ArgumentParser(description="Write the Pulser payload of this sequence")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("-o", "--output", help="output file (default sequence_input.json)")
    args = parser.parse_args()
    payload = pulser_payload(sequence, runs=args.runs)
    print(payload)
    print(f"wrote {payload.save(args.output)}")


if __name__ == "__main__":
    main()
