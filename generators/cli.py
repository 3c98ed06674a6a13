"""``qrmi-gen``: build QRMI payloads from circuits and Pulser sequences."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """qrmi-gen - build QRMI payloads (Qiskit primitives, Pulser sequences)."""


def main() -> None:
    """Entry point of ``qrmi-gen``."""
    cli()
