"""Payload builders for qrmi-task-runner (Qiskit primitives, Pulser sequences)."""
