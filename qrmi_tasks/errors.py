"""Errors the runner reports to the user, each carrying its documented exit code.

Every error that reaches the CLI is printed as one line, ``error: <message>``,
and the process exits with ``exit_code``. Keep messages actionable: say what was
wrong and what to change, and never include a secret.

The exit codes and their short meanings are one table, :data:`EXIT_CODES`: the README's
"Exit codes" table lists the same codes, and each command's ``--help`` prints it
(:func:`exit_codes_help`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_PROVIDER = 3
EXIT_OUTPUT = 4
EXIT_SIGNAL_BASE = 128
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: an error we did not foresee (a bug)
#: how the table writes the exits of a signal (128 + its number)
EXIT_SIGNAL_ROW = f"{EXIT_SIGNAL_BASE}+N"

#: The runner's exit codes, in the README's order ("### Exit codes", a test keeps the two
#: alike): code as written -> the short meaning ``--help`` prints.
EXIT_CODES: dict[str, str] = {
    str(EXIT_OK): "success",
    str(EXIT_TASK_FAILED): "task failed or cancelled by the provider",
    str(EXIT_USAGE): "usage, configuration or payload error",
    str(EXIT_PROVIDER): "provider unreachable or protocol error",
    str(EXIT_OUTPUT): "result could not be written",
    str(EXIT_INTERNAL): "internal error",
    EXIT_SIGNAL_ROW: f"stopped by signal N ({EXIT_SIGNAL_BASE + signal.SIGTERM} SIGTERM)",
}
# --help paragraphs are laid out as written (click's \b): 75 columns plus click's indent of
# 2 fit an 80-column terminal. A line ends after a whole entry ("...; ") rather than in the
# next one when that leaves at most 12 columns unused: the codes then tend to start lines.
_HELP_WIDTH = 75
_WHOLE_ENTRY_SLACK = 12


def _table_row(code: str) -> int:
    """Where ``code`` stands in :data:`EXIT_CODES` (a signal's exit, 130, in 128+N's row)."""
    rows = list(EXIT_CODES)
    if code in EXIT_CODES:
        return rows.index(code)
    if code.isdigit() and int(code) > EXIT_SIGNAL_BASE:
        return rows.index(EXIT_SIGNAL_ROW)
    raise ValueError(f"exit code {code} is not in the documented table")


def exit_codes_help(meanings: Mapping[str, str] | None = None, width: int = _HELP_WIDTH) -> str:
    """The ``Exit codes: 0 success; ...`` paragraph of a command's ``--help``.

    ``meanings`` (default: the runner's, :data:`EXIT_CODES`) is a command's own wording of
    the codes it uses; each must be one of the table's (ValueError otherwise), so no
    command documents an exit the README does not. A code never ends a line apart from
    its meaning.
    """
    rows = EXIT_CODES if meanings is None else meanings
    glue = "\N{NO-BREAK SPACE}"  # inside a "code meaning" pair: no line break there
    entries = [f"{code}{glue}{rows[code]}" for code in sorted(rows, key=_table_row)]
    words = ("Exit codes: " + "; ".join(entries) + ".").split(" ")
    lines: list[str] = []
    line: list[str] = []
    for word in words:
        while line and len(" ".join([*line, word])) > width:
            cut = len(line)
            ends = [i + 1 for i, w in enumerate(line) if w.endswith(";")]
            if ends and len(" ".join(line[: ends[-1]])) >= width - _WHOLE_ENTRY_SLACK:
                cut = ends[-1]
            lines.append(" ".join(line[:cut]))
            line = line[cut:]
        line.append(word)
    lines.append(" ".join(line))
    return "\n".join(lines).replace(glue, " ")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none (a
    library's multi-line error inside our one-line messages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class QrmiError(Exception):
    """Base class: an error with a one-line message and an exit code."""

    exit_code = EXIT_USAGE
    #: the HTTP status of the foreign failure it translates (:class:`ErrorMap`), if any
    status: int | None = None

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

    def __init__(self, message: str, outcome: Any = None) -> None:
        super().__init__(message)
        #: the run's :class:`~qrmi_tasks.runner.RunOutcome` when the runner raised it
        #: (typed loosely: the runner imports this module, not the other way round)
        self.outcome = outcome


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


# -- foreign failures -> our errors -------------------------------------------------------


def class_names(exc: BaseException) -> set[str]:
    """Dotted names of ``exc``'s class and its bases (``builtins.KeyError``...):
    what an :class:`ErrorRule` matches, so a table never imports the SDK it describes."""
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


@dataclass(frozen=True)
class Failure:
    """A foreign failure being translated: what a rule's message is built from."""

    exc: BaseException
    #: the HTTP status behind it (None: no answer at all), as the table's ``status`` reads it
    status: int | None
    #: the service's own reason, one line (the table's ``detail``)
    detail: str
    #: the call's fields: ``what`` was being done, and whatever else its messages name
    fields: Mapping[str, Any]

    def format(self, template: str) -> str:
        """``template`` with ``{what}``, ``{status}``, ``{detail}``, ``{kind}`` (the foreign
        class's name) and the call's fields filled in."""
        return template.format(
            **{
                "status": self.status,
                "detail": self.detail,
                "kind": type(self.exc).__name__,
                **self.fields,
            }
        )


@dataclass(frozen=True)
class ErrorRule:
    """One row of a vendor's error table: a foreign failure and the error it becomes.

    ``exception``: dotted class name(s), matched anywhere in the raised exception's class
    hierarchy. ``when``: only for these HTTP statuses (the table's reading; None: any).
    ``error``: our class; None means not ours to translate (it propagates unchanged).
    ``message``: a template for :meth:`Failure.format`, or a function of the Failure.
    ``overridable``: a call may name another class for some statuses (``overrides``):
    a 422 on the call that sends the payload is the payload's fault, say.
    """

    exception: str | tuple[str, ...]
    error: type[QrmiError] | None
    message: str | Callable[[Failure], str] = "{what}: {detail}"
    when: Callable[[int | None], bool] | None = None
    overridable: bool = False

    def matches(self, names: set[str], status: int | None) -> bool:
        """Whether the rule applies to an exception of ``names`` with ``status``."""
        wanted = (self.exception,) if isinstance(self.exception, str) else self.exception
        return bool(names.intersection(wanted)) and (self.when is None or self.when(status))


class ErrorMap:
    """A vendor's foreign failures as our one-line errors: an ordered table of
    :class:`ErrorRule` (the first match wins), after httpx's ``map_exceptions``.

    ``status(exc)`` and ``detail(exc)`` read a failure the vendor's way; ``messages`` gives
    the text of a class a call's ``overrides`` asked for.
    """

    def __init__(
        self,
        rules: Sequence[ErrorRule],
        *,
        status: Callable[[BaseException], int | None] = lambda exc: None,
        detail: Callable[[BaseException], str] = first_line,
        messages: Mapping[type[QrmiError], str | Callable[[Failure], str]] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.status = status
        self.detail = detail
        self.messages = dict(messages or {})

    def translate(
        self,
        exc: BaseException,
        *,
        overrides: Mapping[int, type[QrmiError]] | None = None,
        **fields: Any,
    ) -> QrmiError | None:
        """Our error for ``exc`` (its ``status`` set), or None when no rule translates it."""
        names = class_names(exc)
        status = self.status(exc)
        for rule in self.rules:
            if not rule.matches(names, status):
                continue
            if rule.error is None:
                return None
            error, message = rule.error, rule.message
            if rule.overridable and overrides and status in overrides:
                error = overrides[status]
                message = self.messages.get(error, message)
            failure = Failure(exc, status, self.detail(exc), fields)
            text = message(failure) if callable(message) else failure.format(message)
            translated = error(text)
            translated.status = status
            return translated
        return None

    @contextmanager
    def mapped(
        self, *, overrides: Mapping[int, type[QrmiError]] | None = None, **fields: Any
    ) -> Iterator[None]:
        """Raise the translation of any failure inside the block (one line, no chain);
        what no rule translates propagates as it is."""
        try:
            yield
        # BaseException: some SDKs' errors derive from it directly; a rule decides,
        # and KeyboardInterrupt or SystemExit match none
        except BaseException as exc:
            translated = self.translate(exc, overrides=overrides, **fields)
            if translated is None:
                raise
            raise translated from None
