"""Access tokens shared by a user's runners on one node: one token request, not one a runner.

Fifty runners of a job array starting together would each exchange the same API key for
a token; with this cache the first one asks and the others read its answer. One small
JSON file per (user, token service URL, digest of the key — never the key) in the
user's runtime directory (``$XDG_RUNTIME_DIR/qrmi-tasks/tokens``: node-local, the
user's own), else ``tokens/`` of the runner's state directory
(:func:`qrmi_tasks.journal.state_root`). Directory 0700, files 0600, written atomically
(the house style of :mod:`qrmi_tasks.backend_cache`).

Who asks is decided by a lock file beside the entry (:func:`qrmi_tasks.filelock.exclusive`);
a holder that is stuck (stopped, or hung on the token service) is waited for
:data:`LOCK_WAIT_SECONDS` at most, then the waiting runner asks for a token of its own.

A token file is never trusted blindly: one that is not a regular file, is not owned by
this user, can be read or written by anyone else, is not valid JSON, or was written for
another key is ignored (the next write replaces it), and so is a directory that is not
the user's own with mode 0700. A cache that cannot be read or written costs a token
request, never the run. Tokens are not logged here (the caller registers them with the
log masker).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from qrmi_tasks import filelock, journal

log = logging.getLogger("qrmi_tasks.runner")

#: the longest a runner waits for another runner's token request before making its own
LOCK_WAIT_SECONDS = 5.0
_MAX_ENTRY = 64 << 10  # an entry is a token (a few KB) and three numbers
_FORMAT = "qrmi-tasks token cache v1"


@dataclass(frozen=True)
class Token:
    """An access token, when it expires and when to replace it (epoch seconds)."""

    value: str
    expires_at: float
    refresh_at: float


def directory(environ: Mapping[str, str]) -> Path:
    """The cache's directory for this environment (see the module's docstring)."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "qrmi-tasks" / "tokens"
    return journal.state_root(environ) / "tokens"


def _own_private(info: os.stat_result, kind: int) -> bool:
    return (
        stat.S_IFMT(info.st_mode) == kind
        and info.st_uid == os.getuid()
        and not info.st_mode & 0o077
    )


class SharedToken:
    """The shared entry of one token service and key (``parts``: its URL, a key digest)."""

    def __init__(self, folder: Path, *parts: str) -> None:
        # the user is part of the key too: a runtime directory shared by mistake
        # never hands one user's token to another
        self.key = hashlib.sha256("\0".join((_FORMAT, str(os.getuid()), *parts)).encode())
        self.key = self.key.hexdigest()
        self.folder = folder
        self.path = folder / f"{self.key[:40]}.json"
        self.lock_path = folder / f"{self.key[:40]}.lock"

    def _folder_ready(self) -> bool:
        """Create the directory if needed; False (cache unused) if it is not ours alone."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(self.folder)
        except OSError as exc:
            log.debug("token cache %s unusable: %r", self.folder, exc)
            return False
        if not _own_private(info, stat.S_IFDIR):
            log.warning(
                "not sharing IAM tokens through %s: not a directory of this user with mode "
                "0700 (mode %o, owner uid %d)",
                self.folder,
                stat.S_IMODE(info.st_mode),
                info.st_uid,
            )
            return False
        return True

    def read(self) -> Token | None:
        """The cached token, or None (none, or an entry not to be trusted)."""
        try:
            if not _own_private(os.lstat(self.folder), stat.S_IFDIR):
                return None  # _folder_ready says why when the cache is written
            handle = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP for a symbolic link among them
            log.debug("ignoring the token cache %s: %r", self.path, exc)
            return None
        with os.fdopen(handle, "rb") as stream:
            info = os.fstat(stream.fileno())
            if not _own_private(info, stat.S_IFREG):
                log.warning(
                    "ignoring the shared IAM token file %s: not a file of this user with "
                    "mode 0600 (mode %o, owner uid %d)",
                    self.path,
                    stat.S_IMODE(info.st_mode),
                    info.st_uid,
                )
                return None
            try:
                entry = json.loads(stream.read(_MAX_ENTRY + 1))
                token = Token(
                    str(entry["value"]), float(entry["expires_at"]), float(entry["refresh_at"])
                )
                if entry["key"] != self.key or not token.value:
                    return None
            except (OSError, ValueError, TypeError, KeyError) as exc:
                # the exception's text could quote the file: its type only
                log.debug("ignoring the token cache %s: %s", self.path, type(exc).__name__)
                return None
        return token

    def write(self, token: Token) -> None:
        """Replace the entry with ``token`` (atomically, 0600); a failure is logged only."""
        if not self._folder_ready():
            return
        try:
            journal.write_private_json(self.path, {"key": self.key, **asdict(token)})
        except OSError as exc:
            log.debug("cannot cache the token in %s: %r", self.folder, exc)

    def discard(self, value: str) -> None:
        """Drop the entry if it still holds ``value`` (a token the service refused)."""
        with self.locked(LOCK_WAIT_SECONDS):
            cached = self.read()
            if cached is not None and cached.value == value:
                with contextlib.suppress(OSError):
                    self.path.unlink()

    @contextlib.contextmanager
    def locked(self, wait: float) -> Iterator[bool]:
        """Hold the entry's lock while inside; yields False when it could not be had
        within ``wait`` seconds (or at all): the caller goes on without it."""
        if not self._folder_ready():
            yield False
            return
        with filelock.exclusive(self.lock_path, wait) as held:
            yield held
