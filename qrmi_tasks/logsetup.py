"""Logging to stderr with srun-compatible verbosity, and a filter that masks secrets.

Level: ``-q`` / ``-v`` win; otherwise ``SRUN_DEBUG`` as srun sets it
(<=2 errors only, 3 info — srun's default, 4 debug, >=5 debug including HTTP and SDK
libraries). Results never go through logging: stdout carries only the result.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping

LOGGER_NAME = "qrmi_tasks"
log = logging.getLogger(LOGGER_NAME)

# Third-party loggers that print request details at DEBUG (headers, signed URLs).
_CHATTY = (
    "urllib3",
    "botocore",
    "boto3",
    "s3transfer",
    "requests",
    "ibm_cloud_sdk_core",
    "ibm-cloud-sdk-core",  # the logger name the library really uses
    "spnego",  # pulled in by requests_ntlm (qiskit-ibm-runtime); gssapi chatter at -v
    "qiskit",
    "qiskit_ibm_runtime",
    "pulser",
    "pasqal_cloud",
    "stevedore",
    "matplotlib",
)

# Names of variables whose values are credentials, whatever their resource prefix.
_SECRET_NAME = re.compile(r"(APIKEY|API_KEY|TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY)", re.I)
# Credentials that appear inside text: auth headers, presigned-URL signatures, form bodies.
# botocore at DEBUG prints request headers as a dict of bytes (``'Authorization':
# b'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'``) and each
# signature it computes, presigned URLs included, as ``Signature:\n<hex>``.
_SECRET_PATTERNS = (
    # a quoted header value, whole (AWS4 values hold spaces and commas): '...' or b"..."
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*b?')[^']*(')"), r"\1***\2"),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*b?\")[^\"]*(\")"), r"\1***\2"),
    # an unquoted header line (``Authorization: Bearer x``), up to the end of the line
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(?!b?['\"])[^\r\n\\'\"]+"), r"\1***"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (
        re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)(?:=|%3D))[^&\s'\"]+"),
        r"\1***",
    ),
    (
        re.compile(r"(?i)([?&](?:Signature|AWSAccessKeyId|x-amz-security-token)=)[^&\s'\"]+"),
        r"\1***",
    ),
    (
        re.compile(
            r"(?i)(\b(?:apikey|api_key|access_token|refresh_token|password)['\"]?\s*[=:]\s*"
            r"['\"]?)[^&\s'\",}]+"
        ),
        r"\1***",
    ),
    # anywhere else: ``Signature=...`` (header values, URLs) and botocore's ``Signature:\n``
    (re.compile(r"(?i)(\b(?:Signature|Credential)=)[^&\s'\",]+"), r"\1***"),
    (re.compile(r"(?i)(\bSignature:\s*)[0-9a-f]{16,}"), r"\1***"),
)
_MIN_SECRET_LEN = 4


class SecretFilter(logging.Filter):
    """Mask known secret values and credential-shaped text in every record."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        """Register more values to mask (for example a freshly issued token)."""
        self._secrets.update(v for v in values if v and len(v) >= _MIN_SECRET_LEN)

    def redact(self, text: str) -> str:
        """Return ``text`` with every known secret and credential pattern masked."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        for pattern, repl in _SECRET_PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in a library must not kill the run
            message = str(record.msg)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


SECRETS = SecretFilter()


class _UTCFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + (
            f".{int(record.msecs):03d}Z"
        )


def level_from(verbose: int, quiet: bool, environ: Mapping[str, str]) -> tuple[int, bool]:
    """Return (our log level, whether library loggers go to DEBUG too)."""
    if quiet:
        return logging.ERROR, False
    if verbose:
        return logging.DEBUG, verbose >= 2
    try:
        srun_debug = int(environ.get("SRUN_DEBUG", "3"))
    except ValueError:
        srun_debug = 3
    if srun_debug <= 2:
        return logging.ERROR, False
    if srun_debug == 3:
        return logging.INFO, False
    return logging.DEBUG, srun_debug >= 5


def secret_env_values(environ: Mapping[str, str]) -> list[str]:
    """Values of environment variables whose names say they hold credentials."""
    return [v for k, v in environ.items() if _SECRET_NAME.search(k) and v]


def setup_logging(
    verbose: int = 0,
    quiet: bool = False,
    environ: Mapping[str, str] | None = None,
    program: str = "qrmi-task-runner",
    capture_warnings: bool = True,
) -> None:
    """Send logs to stderr at the srun-compatible level, with secrets masked.

    ``capture_warnings`` routes Python warnings through logging (hidden unless debugging
    libraries); ``qrmi-gen`` shows its own warnings as lines and passes False.
    """
    environ = os.environ if environ is None else environ
    level, libraries_debug = level_from(verbose, quiet, environ)
    SECRETS.add(secret_env_values(environ))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UTCFormatter(f"%(asctime)s {program} %(levelname)s %(message)s"))
    handler.addFilter(SECRETS)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # the command owns this process's logging: our lines reach this handler, whatever
    # the Python API (qrmi_tasks.run) set up on our logger earlier in the process
    ours = logging.getLogger(LOGGER_NAME)
    for old in list(ours.handlers):
        ours.removeHandler(old)
    ours.propagate = True
    ours.setLevel(logging.NOTSET)
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if libraries_debug else logging.WARNING)
    if not capture_warnings:
        return
    logging.captureWarnings(True)
    # Python warnings (deprecations in SDKs) are noise for batch users unless debugging.
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if libraries_debug else logging.ERROR)
