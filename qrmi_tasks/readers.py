"""Bounded reads of the files users name, and strict decoding of the JSON they write.

Shared by the payload (:mod:`qrmi_tasks.payload`), the resource config file
(:mod:`qrmi_tasks.config`), result files (:mod:`qrmi_tasks.results`) and the generators'
inputs: every one is refused with a one-line error naming the file instead of a traceback,
and none is read without a size bound. Only the standard library and
:mod:`qrmi_tasks.errors` are imported here.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from qrmi_tasks.errors import InputError, PayloadError, QrmiError, first_line

MIB = 1 << 20
# 1000 ISA circuits with parameters are ~2 MB; a payload of hundreds of MB is a mistake
# (or /dev/zero), and reading without a bound would exhaust the node's memory first.
PAYLOAD_LIMIT = 512 * MIB
# The plugin's config file lists a few resources: kilobytes.
CONFIG_LIMIT = 16 * MIB

# User text quoted in a message beyond this would swamp the one error line.
_MAX_MESSAGE = 300


def short_text(text: str) -> str:
    """``text`` on one line and at most 300 characters, to quote it in an error message."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def size_text(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


def read_input(
    path: str | Path,
    what: str,
    limit: int = PAYLOAD_LIMIT,
    error: type[QrmiError] = InputError,
) -> bytes:
    """A user-given file's bytes, or a one-line ``error`` naming what it was for.

    Reads at most ``limit + 1`` bytes, so ``/dev/zero``, an endless FIFO or a huge file
    is refused ("larger than the N MiB limit") instead of filling the memory.
    """
    path = Path(path)
    too_large = f"{what} file {path} is larger than the {size_text(limit)} limit"
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise error(too_large)  # known without reading it
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{what} file {path} is a directory, not a file") from None
    except OSError as exc:
        raise error(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise error(too_large)
    return data


#: The file name that means standard input (``qrmi-result summary -``).
STDIN = "-"


def read_stdin(what: str, limit: int = PAYLOAD_LIMIT, error: type[QrmiError] = InputError) -> bytes:
    """Standard input's bytes (a pipe: ``... | qrmi-result summary -``), bounded as in
    :func:`read_input`."""

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise error(f"cannot read the {what} from standard input: it is not open")
    try:
        data = stream.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read the {what} from standard input: {exc.strerror}") from None
    if len(data) > limit:
        raise error(f"{what} on standard input is larger than the {size_text(limit)} limit")
    return data


def read_text_input(
    path: str | Path,
    what: str,
    limit: int = PAYLOAD_LIMIT,
    error: type[QrmiError] = InputError,
) -> str:
    """A user-given UTF-8 text file (a BOM is allowed), bounded as in :func:`read_input`."""
    raw = read_input(path, what, limit, error)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} file {path} is not UTF-8 text (bad byte at offset {exc.start})"
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys silently; which one the user meant is unknowable
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document


def too_many_digits(exc: ValueError) -> str | None:
    """The end of a message for JSON with an integer Python refuses to convert (more than
    ``sys.get_int_max_str_digits()`` digits), else None."""
    if "integer string conversion" not in str(exc):
        return None
    return (
        f"holds an integer of more than {sys.get_int_max_str_digits()} digits; no field "
        "takes one (write it as a float, or a string, if it is meant)"
    )


def decode_json(text: str, described: str, error: type[QrmiError] = PayloadError) -> Any:
    """Decode user-written JSON strictly: syntax, nesting depth and duplicate keys.

    ``described`` starts each message (``payload.json``, ``config file qrmi.json``).
    """
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise error(
            f"{described} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        # Python refuses to convert an integer of more than 4300 digits (int_max_str_digits,
        # a guard against quadratic-time conversions): not JSONDecodeError, same meaning
        problem = too_many_digits(exc) or f"is not usable JSON: {short_text(first_line(exc))}"
        raise error(f"{described} {problem}") from None
    except RecursionError:
        raise error(
            f"{described} is nested too deeply (JSON arrays/objects inside each other "
            "beyond Python's recursion limit)"
        ) from None
    except _DuplicateKey as exc:
        raise error(
            f"{described} has the key {short_text(json.dumps(exc.key))} twice in one object; "
            "keep only one"
        ) from None
