"""The front door of every command (``qrmi-task-runner``, ``qrmi-gen``, ``qrmi-result``).

One place for the rules the README promises: an error is one ``error:`` line on stderr
and its documented exit code, never a traceback (``-v`` logs it); Ctrl-C exits 130; a
closed stdout (``qrmi-result summary r.json | head -1``) is exit 4, not a traceback at
interpreter shutdown. Only click and :mod:`qrmi_tasks.errors` are imported here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sys
from typing import NoReturn

import click

from qrmi_tasks.errors import (
    EXIT_INTERNAL,
    EXIT_OUTPUT,
    EXIT_SIGNAL_BASE,
    QrmiError,
)

# click >= 8.2 raises it for a group run without a command (older click shows the help)
_NoArgsIsHelp: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {})
)

#: Ctrl-C (SIGINT) outside the runner's own signal handling: 128 + 2
EXIT_INTERRUPTED = EXIT_SIGNAL_BASE + signal.SIGINT


def report(exc: BaseException, program: str, verbose_hint: str = "rerun with -v") -> int:
    """Print a one-line error for ``exc`` and return the exit code.

    Anything that is not one of our errors is a bug or an SDK failure nobody foresaw:
    still one line (the traceback goes to the debug log, ``-v``), exit 70.
    ``verbose_hint`` says how to get that log from this program.
    """
    from qrmi_tasks.logsetup import SECRETS

    if isinstance(exc, QrmiError):
        line, code = exc.message, exc.exit_code
    elif isinstance(exc, click.ClickException):
        line = " ".join(exc.format_message().split())
        if isinstance(exc, click.UsageError):
            line += f" (see '{program} --help')"
        code = exc.exit_code
    else:
        logging.getLogger("qrmi_tasks").debug("internal error", exc_info=exc)
        detail = " ".join(str(exc).split())[:300]
        line = (
            f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} "
            f"(please report it; {verbose_hint} for the traceback)"
        )
        code = EXIT_INTERNAL
    # provider messages may quote server text: mask credentials here too
    click.echo(f"error: {SECRETS.redact(line)}", err=True)
    return code


def run_command(
    command: click.Command,
    program: str,
    argv: list[str] | None = None,
    verbose_hint: str = "rerun with -v",
) -> int:
    """Run click ``command`` as ``program`` and return the process exit code; never raises
    (but for SystemExit from code that calls ``sys.exit`` itself)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # click's own main() would turn any EPIPE (a socket's too) into a silent exit 1:
        # parse and invoke here, so every outcome is decided below
        with command.make_context(program, args) as context:
            code = command.invoke(context)
        # what the command printed must reach the pipe now, where a failure is ours to report
        sys.stdout.flush()
    except click.exceptions.Exit as exc:  # --help, --version
        code = exc.exit_code
    except _NoArgsIsHelp as exc:  # a group run without a command: its help, exit 2
        exc.show()
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):  # Abort: Ctrl-C at a click prompt
        code = EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        if _stdout_closed():
            _silence_stdout()
            click.echo("error: stdout was closed before all output was written", err=True)
            code = EXIT_OUTPUT
        else:  # a socket's, say: not ours to excuse
            code = report(exc, program, verbose_hint)
    except Exception as exc:
        code = report(exc, program, verbose_hint)
    return code if isinstance(code, int) else 0


def exit_with(code: int, immediate: bool = False) -> NoReturn:
    """Exit with ``code``; at once if ``immediate`` or a provider call is still blocked in
    a worker thread.

    An abandoned call (a hung read the cancel went around) must not hold the exit or
    print noise while the interpreter winds down. ``immediate`` (the runner, whose work
    is done and written by then) skips the interpreter's teardown, which takes seconds
    of a scancel's KillWait once the SDKs have loaded torch and friends.
    """
    calls = sys.modules.get("qrmi_tasks.calls")  # only the runner makes such calls
    if immediate or (calls is not None and calls.abandoned()):
        logging.shutdown()  # flushes every log handler (a --logs file is a sink, not one)
        with contextlib.suppress(OSError):
            sys.stdout.flush()
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone (POLLERR)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
