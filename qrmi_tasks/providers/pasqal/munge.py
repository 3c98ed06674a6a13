"""MUNGE credentials, the Pasqal warden's authentication, made with the host's libmunge.

Every authenticated warden request carries a fresh credential in ``x-munge-cred``, as
qrmi's client makes it (qiskit-community/qrmi@b2ed2e5
``dependencies/pasqal_local_client/src/client.rs`` ``create_headers``: ``munge_encode``
with an empty payload, per request; the qrmi 0.26.4 wheel loads ``libmunge.so.2`` at run
time the same way). MUNGE credentials are single use (munged refuses a replayed one), so
none is ever cached. The library is loaded with :mod:`ctypes`: no package to install
beyond the ``munge`` one a Slurm node with ``AuthType=auth/munge`` already has.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

#: what the credential is for, in messages
_INSTALL = (
    "install MUNGE (Debian/Ubuntu: munge; RHEL: munge-libs) and run munged, as Slurm's "
    "auth/munge needs on every node"
)


class MungeError(Exception):
    """No credential could be made (library missing, munged not running)."""


@cache
def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("munge") or "libmunge.so.2"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise MungeError(f"libmunge could not be loaded ({exc}); {_INSTALL}") from None
    lib.munge_encode.argtypes = [
        ctypes.POINTER(ctypes.c_char_p),
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
    ]
    lib.munge_encode.restype = ctypes.c_int
    lib.munge_strerror.argtypes = [ctypes.c_int]
    lib.munge_strerror.restype = ctypes.c_char_p
    return lib


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def credential() -> str:
    """A fresh MUNGE credential for this process's uid (MungeError saying what to do)."""
    lib = _library()
    cred = ctypes.c_char_p()
    status = lib.munge_encode(ctypes.byref(cred), None, None, 0)
    try:
        if status != 0:
            reason = (lib.munge_strerror(status) or b"unknown error").decode(errors="replace")
            raise MungeError(f"munge_encode failed: {reason}; is munged running? {_INSTALL}")
        return (cred.value or b"").decode()
    finally:
        if cred:  # libmunge allocates it with malloc: the caller frees it
            _libc().free(ctypes.cast(cred, ctypes.c_void_p))
