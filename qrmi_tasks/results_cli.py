"""``qrmi-result``: summaries and plots of qrmi-task-runner outputs."""

from __future__ import annotations

import json

import click

from qrmi_tasks.front import exit_with, run_command
from qrmi_tasks.results import DEFAULT_TOP

PROGRAM = "qrmi-result"
VERBOSE_HINT = f"rerun as '{PROGRAM} -v ...'"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Debug log on stderr (tracebacks included).")
def cli(verbose: int) -> None:
    """qrmi-result - look at qrmi-task-runner results."""
    if verbose:
        from qrmi_tasks.logsetup import setup_logging

        setup_logging(verbose, program=PROGRAM)


@cli.command()
@click.argument("file", metavar="FILE")
@click.option(
    "--top",
    "-k",
    default=DEFAULT_TOP,
    show_default=True,
    type=click.IntRange(1),
    help="Show the K most frequent bitstrings.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
def summary(file: str, top: int, as_json: bool) -> None:
    """Summarize a result FILE: counts (sampler, Pulser) or expectation values (estimator)."""
    from qrmi_tasks.results import format_text, summarize

    result = summarize(file)
    if as_json:
        click.echo(json.dumps(result.to_dict(top), indent=2))
    else:
        click.echo(format_text(result, top))


@cli.command()
@click.argument("file", metavar="FILE")
@click.option("-o", "--output", required=True, metavar="PNG", help="Image file to write.")
@click.option(
    "--top",
    "-k",
    default=DEFAULT_TOP,
    show_default=True,
    type=click.IntRange(1),
    help="Plot the K most frequent bitstrings.",
)
def plot(file: str, output: str, top: int) -> None:
    """Plot a result FILE as a histogram or expectation values with error bars."""
    from pathlib import Path

    from qrmi_tasks.output import check_target
    from qrmi_tasks.results import plot as draw
    from qrmi_tasks.results import summarize

    check_target(Path(output))
    draw(summarize(file), output, top)
    click.echo(f"wrote {output}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qrmi-result``."""
    exit_with(run_command(cli, PROGRAM, argv, VERBOSE_HINT))
