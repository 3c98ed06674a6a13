"""``qrmi-result``: summaries and plots of qrmi-task-runner outputs."""

from __future__ import annotations

import json
import sys

import click

from qrmi_tasks.results import DEFAULT_TOP


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """qrmi-result - look at qrmi-task-runner results."""


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
    from qrmi_tasks.cli import report

    program = "qrmi-result"
    try:
        code = cli.main(args=argv, prog_name=program, standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except Exception as exc:  # report() prints every error as one line
        code = report(exc, program)
    sys.exit(code if isinstance(code, int) else 0)
