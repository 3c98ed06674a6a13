"""qrmi-tasks: run quantum workloads on QPU resources from HPC batch jobs."""

__version__ = "0.1.0"
