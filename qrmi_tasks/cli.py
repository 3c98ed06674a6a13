"""``qrmi-task-runner`` command line (argument parsing only; the work is in runner.py)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from qrmi_tasks import __version__
from qrmi_tasks.errors import exit_codes_help
from qrmi_tasks.front import exit_with, run_command

HELP = f"""qrmi_task_runner - Command to run a QRMI task

\b
NAME  QPU resource name (one of SLURM_JOB_QPU_RESOURCES, or 'local')
FILE  Input to QPU resource (QRMI payload JSON)

\b
{exit_codes_help()}
"""


@click.command(
    help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.argument("name", metavar="NAME")
@click.argument("file", metavar="FILE")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Write output to FILE instead of stdout (atomically: complete or untouched).",
)
@click.option(
    "--logs",
    "logs",
    metavar="FILE",
    help="Also save the provider's task logs to FILE (resource types that have logs).",
)
@click.option(
    "--config",
    "config",
    metavar="FILE",
    envvar="QRMI_CONFIG",
    help="Resources in the Slurm QRMI plugin's JSON format [env: QRMI_CONFIG]; "
    "environment variables override it.",
)
@click.option(
    "--task-id",
    metavar="ID",
    help="Use this task id where the provider lets the client choose it "
    "(default: derived from the Slurm job and step, random outside Slurm).",
)
@click.option(
    "--no-cancel-on-sigcont",
    is_flag=True,
    help="Only SIGTERM/SIGINT cancel the task, not SIGCONT (for sites that suspend "
    "and resume jobs) [env: QRMI_NO_CANCEL_ON_SIGCONT=1].",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv: HTTP and SDK details).")
@click.option("-q", "--quiet", is_flag=True, help="Only log errors.")
@click.version_option(
    __version__, "-V", "--version", prog_name="qrmi_task_runner", message="%(prog)s %(version)s"
)
def command(
    name: str,
    file: str,
    output: str | None,
    logs: str | None,
    config: str | None,
    task_id: str | None,
    no_cancel_on_sigcont: bool,
    verbose: int,
    quiet: bool,
) -> int:
    from qrmi_tasks.logsetup import setup_logging
    from qrmi_tasks.runner import RunRequest, run
    from qrmi_tasks.signals import cancel_on_sigcont_default

    setup_logging(verbose, quiet)
    request = RunRequest(
        resource_name=name,
        payload_path=Path(file),
        output_path=Path(output) if output else None,
        logs_path=Path(logs) if logs else None,
        config_path=Path(config) if config else None,
        task_id=task_id,
        cancel_on_sigcont=not no_cancel_on_sigcont and cancel_on_sigcont_default(os.environ),
    )
    # main() exits with the code (os._exit when a call is abandoned)
    return run(request).exit_code


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qrmi-task-runner`` / ``qrmi_task_runner``."""
    exit_with(run_command(command, "qrmi-task-runner", argv), immediate=True)
