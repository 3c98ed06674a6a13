"""The ``local`` resource's engine choices: what its settings accept.

Light on purpose (no imports): the runner validates the settings with these before the
worker, which imports the simulators, is started.
"""

from __future__ import annotations

#: Qiskit engines: Aer's V2 primitives, or qiskit's reference (teaching) primitives
QISKIT_ENGINES = ("aer", "reference")
#: Aer simulation methods a primitive can use (unitary/superop produce no samples)
AER_METHODS = (
    "automatic",
    "statevector",
    "density_matrix",
    "matrix_product_state",
    "stabilizer",
    "extended_stabilizer",
)
#: Aer methods its GPU build runs
GPU_METHODS = ("statevector", "density_matrix")
#: settings values are lower case (``config.one_of``); Aer spells devices CPU, GPU
DEVICES = ("auto", "cpu", "gpu")
#: Pulser engines: pulser-simulation (QuTiP), Pasqal's state-vector and MPS emulators
PULSER_ENGINES = ("qutip", "emu-sv", "emu-mps")
#: the module each Pulser engine needs, and the package that provides it
PULSER_MODULES = {
    "qutip": ("pulser_simulation", "pulser-simulation"),
    "emu-sv": ("emu_sv", "emu-sv"),
    "emu-mps": ("emu_mps", "emu-mps"),
}
