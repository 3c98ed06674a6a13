"""``qrmi-result``: summaries and plots of qrmi-task-runner outputs."""

from __future__ import annotations

import json

import click

from qrmi_tasks import __version__
from qrmi_tasks.front import exit_with, run_command
from qrmi_tasks.summary import DEFAULT_TOP

PROGRAM = "qrmi-result"
VERBOSE_HINT = f"rerun as '{PROGRAM} -v ...'"

_PAYLOAD_OPTION = click.option(
    "--payload",
    metavar="FILE",
    help="The payload the result came from: names the estimator's observables.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "-V", "--version", prog_name=PROGRAM, message="%(prog)s %(version)s"
)
@click.option("-v", "--verbose", count=True, help="Debug log on stderr (tracebacks included).")
def cli(verbose: int) -> None:
    """qrmi-result - look at qrmi-task-runner results.

    FILE is a result file, or a slurm-N.out in which the result sits among log lines;
    '-' reads it from standard input.
    """
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
@_PAYLOAD_OPTION
def summary(file: str, top: int, as_json: bool, payload: str | None) -> None:
    """Summarize a result FILE: counts (sampler, Pulser) or expectation values (estimator)."""
    from qrmi_tasks.results import format_text, summarize

    result = summarize(file, payload)
    if as_json:
        click.echo(json.dumps(result.to_dict(top), indent=2))
    else:
        click.echo(format_text(result, top))


@cli.command()
@click.argument("file", metavar="FILE")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="IMAGE",
    help="Image file to write; the format follows its extension (.png, .pdf, .svg...).",
)
@click.option(
    "--top",
    "-k",
    default=DEFAULT_TOP,
    show_default=True,
    type=click.IntRange(1),
    help="Plot the K most frequent bitstrings (their true probabilities; the others as "
    "one 'rest' bar).",
)
@_PAYLOAD_OPTION
def plot(file: str, output: str, top: int, payload: str | None) -> None:
    """Plot a result FILE: histograms per pub and binding, or evs ± std per observable."""
    import io
    from pathlib import Path

    import matplotlib

    from qrmi_tasks.errors import UsageError
    from qrmi_tasks.output import ResultSink, check_target
    from qrmi_tasks.results import summarize

    target = Path(output)
    check_target(target)
    # this process only writes a file: no GUI backend, whatever the session's DISPLAY
    matplotlib.use("Agg")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    image_format = target.suffix.lower().lstrip(".") or "png"
    if image_format not in formats:
        raise UsageError(
            f"cannot tell the image format from {output}: use one of the extensions "
            + ", ".join(f".{f}" for f in sorted(formats))
        )
    import matplotlib.pyplot as plt

    from qrmi_tasks.plots import matplotlib_quiet, plot_summary

    figure = plot_summary(summarize(file, payload), top)
    image = io.BytesIO()
    with matplotlib_quiet():  # drawing happens here: missing glyphs are noticed now
        figure.savefig(image, format=image_format, dpi=100)
    plt.close(figure)
    sink = ResultSink(target)  # complete or untouched, like the runner's results
    with sink.open() as stream:
        stream.write(image.getvalue())
    sink.publish()
    click.echo(f"wrote {output} ({image_format})", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qrmi-result``."""
    exit_with(run_command(cli, PROGRAM, argv, VERBOSE_HINT))
