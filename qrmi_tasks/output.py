"""Where results go: checked before submitting, written atomically after.

A result file only ever appears complete: it is streamed into a temporary file
beside the target, fsynced, and renamed over it. A failed or cancelled run leaves
the target (if any) exactly as it was.

A temporary file carries the runner's pid in its name (``.out.json.<pid>.<random>.part``)
and the next run for the same target removes one whose process is gone (a SIGKILL).

A symlink is followed: the file it names is replaced, the link stays. A character
device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is never replaced: the
complete result is written into it in place, like stdout (a rename would swap the
device for a regular file when run as root). Block devices and sockets are refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from qrmi_tasks import leftovers
from qrmi_tasks.errors import OutputError, UsageError


def resolved(path: Path) -> Path:
    """The file ``path`` names, its symlinks followed (the one a result replaces)."""
    return Path(os.path.realpath(path))


def is_stream(path: Path) -> bool:
    """Whether ``path`` is (or links to) a character device or a FIFO: written in place."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing (or a dangling link): a new regular file
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def check_target(path: Path) -> None:
    """Fail early (exit 2) if ``path`` cannot become the result file. Creates nothing."""
    if path.is_dir():
        raise UsageError(f"output path {path} is a directory; give a file name")
    if is_stream(path):
        if not os.access(path, os.W_OK):
            raise UsageError(f"output file {path} is not writable")
        return
    if path.exists() and not path.is_file():
        raise UsageError(
            f"output path {path} is neither a regular file, a character device nor a FIFO; "
            "give a file name"
        )
    real = resolved(path)
    directory = real.parent
    if not directory.exists():
        raise UsageError(f"output directory {directory} does not exist; create it first")
    if not directory.is_dir():
        raise UsageError(f"output directory {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {directory} is not writable")
    if real.exists() and not os.access(real, os.W_OK):
        raise UsageError(f"output file {path} exists and is not writable")


def same_file(first: Path, second: Path) -> bool:
    """Whether two output paths name one file (also through symlinks or ``..``)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet
        return False


def _write_error(target: Path | None, exc: OSError) -> OutputError:
    """Exit 4 for a failed write of the result (``target`` None: stdout)."""
    where = "stdout" if target is None else str(target)
    return OutputError(f"cannot write the result for {where}: {exc.strerror or exc}")


class _GuardedStream:
    """The temporary file as providers see it: a write error is an OutputError (exit 4).

    Without this, ENOSPC or EFBIG raised inside a provider's download loop would look
    like any OSError (a network one, or a bug) to whoever catches it.
    """

    def __init__(self, stream: BinaryIO, target: Path | None, limit: int | None = None) -> None:
        self._stream = stream
        self._target = target
        self._limit = limit

    def _fail(self, exc: OSError) -> OutputError:
        return _write_error(self._target, exc)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        if self._limit is not None and self._stream.tell() + len(view) > self._limit:
            # OutputError (exit 4): the task is kept, and the runner says so
            raise OutputError(
                f"the result is larger than QRMI_MAX_RESULT_BYTES ({self._limit} bytes); "
                "its download was stopped: raise the limit to accept it"
            )
        written = 0
        try:
            while written < len(view):  # the file is unbuffered: writes may be partial
                written += self._stream.write(view[written:]) or 0
        except OSError as exc:
            raise self._fail(exc) from None
        return written

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._fail(exc) from None

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._stream.truncate(size)
        except OSError as exc:
            raise self._fail(exc) from None

    def writable(self) -> bool:
        return True


class ResultSink:
    """Receives a result stream and publishes it only when it is complete."""

    def __init__(self, target: Path | None, limit: int | None = None) -> None:
        """``limit``: the most bytes the result may have (None: no limit)."""
        self.target = target
        self.limit = limit
        # a device or FIFO is written in place after the temporary file is complete; a
        # symlink's own target is what the rename replaces
        self._in_place = target is not None and is_stream(target)
        self._final = None if target is None else resolved(target)

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """Yield a binary file to stream into; nothing is published if the block raises.

        Call :meth:`publish` after the block to make the result visible.
        """
        replacing = self._final is not None and not self._in_place
        directory = self._final.parent if replacing else None
        try:
            # the pid in the name: a later run removes this file if a SIGKILL leaves it
            prefix = f".{self._final.name}." if replacing else "qrmi-result."
            leftovers.remove_stale(Path(directory or tempfile.gettempdir()), _part_pattern(prefix))
            fd, name = tempfile.mkstemp(
                prefix=f"{prefix}{os.getpid()}.",
                suffix=".part",
                dir=directory,
            )
        except OSError as exc:
            raise OutputError(f"cannot create a temporary result file: {exc.strerror}") from None
        self._temp = Path(name)
        body_done = False
        try:
            # unbuffered: a full disk fails the write itself, never a later implicit flush
            with os.fdopen(fd, "w+b", buffering=0) as stream:
                yield _GuardedStream(stream, self.target, self.limit)  # type: ignore[misc]
                body_done = True
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as exc:
            self.discard()
            if not body_done:  # the caller's own error (a network one is an OSError too)
                raise
            raise _write_error(self.target, exc) from None
        except BaseException:
            self.discard()
            raise

    def publish(self) -> None:
        """Rename the complete temporary file over the target, or copy it to stdout."""
        temp = self._temp
        try:
            if self.target is None:
                with temp.open("rb") as source:
                    shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
                    if source.tell() and not _ends_with_newline(source):
                        # stdout may share a file with the logs (sbatch without -o):
                        # the next log line must not be glued to the result
                        sys.stdout.buffer.write(b"\n")
                    sys.stdout.buffer.flush()
                temp.unlink()
                return
            if self._in_place:
                # O_APPEND: /dev/stdout may be a log file shared with stderr
                with temp.open("rb") as source, open(self.target, "ab") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                temp.unlink()
                return
            final = self._final
            mode = 0o666 & ~_umask()
            if final.exists():
                mode = final.stat().st_mode & 0o777
            os.chmod(temp, mode)
            os.replace(temp, final)
            _fsync_dir(final.parent)
        except BrokenPipeError:
            self.discard()
            raise OutputError("stdout was closed before the result was written") from None
        except OSError as exc:
            self.discard()
            where = "stdout" if self.target is None else str(self.target)
            raise OutputError(f"cannot write the result to {where}: {exc.strerror}") from None

    def discard(self) -> None:
        """Remove the temporary file, if any."""
        temp = getattr(self, "_temp", None)
        if temp is not None:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _part_pattern(prefix: str) -> re.Pattern[str]:
    """A temporary result file of ``prefix``: ``{prefix}{pid}.{random}.part``."""
    return re.compile(re.escape(prefix) + r"(?P<pid>\d+)\.[^.]+\.part")


def _ends_with_newline(source: BinaryIO) -> bool:
    source.seek(-1, os.SEEK_END)
    return source.read(1) == b"\n"


def _umask() -> int:
    """The process's umask, read without changing it: setting it to learn it (the usual
    trick) would, for that instant, let files another thread creates (the notebook API
    runs tasks in threads) be made with no umask at all."""
    with (
        contextlib.suppress(OSError, ValueError),
        open("/proc/self/status", encoding="ascii", errors="replace") as status,
    ):
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)  # no /proc (not Linux, or an old kernel): the usual trick
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
