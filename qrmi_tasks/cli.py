"""``qrmi-task-runner`` command line (argument parsing only; the work is in runner.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from qrmi_tasks import __version__
from qrmi_tasks.errors import EXIT_INTERNAL, EXIT_USAGE, QrmiError

HELP = """qrmi_task_runner - Command to run a QRMI task

\b
NAME  QPU resource name (one of SLURM_JOB_QPU_RESOURCES, or 'local')
FILE  Input to QPU resource (QRMI payload JSON)

\b
Exit codes: 0 success; 1 task failed or cancelled by the provider;
2 usage, configuration or payload error; 3 provider unreachable or protocol
error; 4 result could not be written; 70 internal error; 128+N stopped by
signal N (143 SIGTERM).
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
    return run(request)  # main() exits with it (os._exit when a call is abandoned)


def report(exc: BaseException, program: str) -> int:
    """Print a one-line error for ``exc`` and return the exit code (shared by our CLIs).

    Anything that is not one of our errors is a bug or an SDK failure nobody foresaw:
    still one line (the traceback goes to the debug log, ``-v``), exit 70.
    """
    from qrmi_tasks.logsetup import SECRETS

    if isinstance(exc, QrmiError):
        line, code = exc.message, exc.exit_code
    elif isinstance(exc, click.exceptions.UsageError):
        line = f"{' '.join(exc.format_message().split())} (see '{program} --help')"
        code = EXIT_USAGE
    else:
        import logging

        logging.getLogger("qrmi_tasks").debug("internal error", exc_info=exc)
        detail = " ".join(str(exc).split())[:300]
        line = (
            f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} "
            f"(please report it; rerun with -v for the traceback)"
        )
        code = EXIT_INTERNAL
    # provider messages may quote server text: mask credentials here too
    click.echo(f"error: {SECRETS.redact(line)}", err=True)
    return code


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``qrmi-task-runner`` / ``qrmi_task_runner``."""
    program = "qrmi-task-runner"
    try:
        code = command.main(args=argv, prog_name=program, standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        code = 130
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        code = report(exc, program)
    code = code if isinstance(code, int) else 0
    from qrmi_tasks import calls

    if calls.abandoned():
        # A provider call still blocked in a worker thread (a hung read the cancel went
        # around) must not hold the exit or print noise while the interpreter winds down.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
