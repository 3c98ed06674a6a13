"""A running munged for the Pasqal warden's tests: the warden authenticates every request
with a MUNGE credential, which the runner (and qrmi) make through the host's munged, and
the fake warden checks by decoding it with the same libmunge.

:func:`ensure_munged` reuses a working munged, or as root starts one the way
tests/slurm/start-slurm.sh does (Debian's ``munge`` package: key in /etc/munge, daemon as
user munge, default socket); it is left running for the rest of the machine's tests, as
that script leaves it. Without MUNGE it returns why, and the tests skip saying so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import shutil
import subprocess
import time
from functools import cache

_LOCK = "/tmp/qrmi-tasks-munged.lock"


def _round_trip() -> bool:
    try:
        encoded = subprocess.run(["munge", "-n"], capture_output=True, timeout=5, check=False)
        if encoded.returncode != 0:
            return False
        decoded = subprocess.run(
            ["unmunge"], input=encoded.stdout, capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return decoded.returncode == 0


@cache
def ensure_munged() -> str | None:
    """None once ``munge -n | unmunge`` works; otherwise why MUNGE is unavailable."""
    if not shutil.which("munge") or not shutil.which("munged"):
        return "MUNGE is not installed (apt-get install munge)"
    with open(_LOCK, "w") as lock:  # one starter among the test workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _round_trip():
            return None
        if os.geteuid() != 0:
            return "munged is not running and only root can start it here"
        for path in ("/run/munge", "/var/log/munge", "/var/lib/munge", "/etc/munge"):
            os.makedirs(path, exist_ok=True)
        key = "/etc/munge/munge.key"
        if not os.path.exists(key) or os.path.getsize(key) == 0:
            with open(key, "wb") as out:
                out.write(os.urandom(1024))
        for path in ("/etc/munge", key, "/run/munge", "/var/log/munge", "/var/lib/munge"):
            shutil.chown(path, "munge", "munge")
        os.chmod("/etc/munge", 0o700)
        os.chmod(key, 0o400)
        os.chmod("/run/munge", 0o755)
        started = subprocess.run(
            ["runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if started.returncode != 0:
            return f"munged did not start: {started.stderr.decode(errors='replace').strip()}"
        for _ in range(50):
            if _round_trip():
                return None
            time.sleep(0.1)
        return "munged started but a MUNGE round trip fails"


@cache
def _decoder() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("munge") or "libmunge.so.2")
    lib.munge_decode.argtypes = [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_uint),
        ctypes.POINTER(ctypes.c_uint),
    ]
    lib.munge_decode.restype = ctypes.c_int
    lib.munge_strerror.argtypes = [ctypes.c_int]
    lib.munge_strerror.restype = ctypes.c_char_p
    return lib


def decode(credential: str) -> tuple[int | None, str]:
    """(uid, '') of a valid credential, else (None, libmunge's reason: expired, replayed...)."""
    lib = _decoder()
    buf, length = ctypes.c_void_p(), ctypes.c_int()
    uid, gid = ctypes.c_uint(), ctypes.c_uint()
    status = lib.munge_decode(
        credential.encode(),
        None,
        ctypes.byref(buf),
        ctypes.byref(length),
        ctypes.byref(uid),
        ctypes.byref(gid),
    )
    if buf:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.free(buf)
    if status != 0:
        return None, (lib.munge_strerror(status) or b"?").decode(errors="replace")
    return uid.value, ""
