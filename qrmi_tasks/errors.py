"""Errors the runner reports to the user, each carrying its documented exit code.

Every error that reaches the CLI is printed as one line, ``error: <message>``,
and the process exits with ``exit_code``. Keep messages actionable: say what was
wrong and what to change, and never include a secret.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_PROVIDER = 3
EXIT_OUTPUT = 4
EXIT_SIGNAL_BASE = 128
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: an error we did not foresee (a bug)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none (a
    library's multi-line error inside our one-line messages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class QrmiError(Exception):
    """Base class: an error with a one-line message and an exit code."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would break log parsing in slurm-N.out.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return str(self)


class UsageError(QrmiError):
    """Bad command-line usage (exit 2)."""


class ConfigError(QrmiError):
    """Resource list or per-resource settings are wrong or missing (exit 2)."""


class InputError(QrmiError):
    """A file the user named (a result, a circuit, a sequence...) is unreadable or is not
    what it should be (exit 2)."""


class PayloadError(InputError):
    """The payload file is unreadable or invalid (exit 2)."""


class TaskFailed(QrmiError):
    """The task failed or was cancelled on the provider's side (exit 1)."""

    exit_code = EXIT_TASK_FAILED


class ProviderError(QrmiError):
    """Provider unreachable, authentication refused, or protocol error after retries (exit 3)."""

    exit_code = EXIT_PROVIDER


class AuthenticationError(ProviderError):
    """Credentials were refused (exit 3); retrying cannot help."""


class TransientError(ProviderError):
    """A failure another attempt may cure: 5xx, 429, a dropped or refused connection (exit 3
    once the caller gives up). The runner's cancel retries these within its budget."""


class CallTimeout(TransientError):
    """A provider call did not finish within its overall deadline (a hung or slow-drip
    answer); the call is abandoned in its worker thread (exit 3)."""


class OutputError(QrmiError):
    """The result could not be written (exit 4)."""

    exit_code = EXIT_OUTPUT


class Interrupted(Exception):
    """A watched signal arrived while a provider was waiting; the runner cancels the task.

    Providers raise it when ``RunContext.sleep`` returns True inside their own retry or
    wait loops, so a long back-off never delays a cancel. Raised from ``submit`` after
    the remote task may already exist, pass its id: ``raise Interrupted(task_id)``.
    The runner raises it too when a signal arrives while it waits for a provider call
    running in a worker thread; ``pending`` is then that call (still running).
    """

    def __init__(self, task_id: str | None = None, pending: object = None) -> None:
        super().__init__(*(() if task_id is None else (task_id,)))
        self.task_id = task_id
        self.pending = pending
