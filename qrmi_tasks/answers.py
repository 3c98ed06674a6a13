"""How large a service's answer may be: one rule for every JSON answer the runner reads.

A service's API answers (a token, a job's status, a batch) are kilobytes; anything near
:data:`MAX_ANSWER_BYTES` is not the API talking (a proxy's error page, a compromised or
broken endpoint), and reading it whole into memory could take the job's memory with it
(a 64 MB IAM body once took 570 MB of RSS). Our own clients read answers through
:func:`read_capped` (the IAM token exchange too); libraries that read them themselves
(qiskit-ibm-runtime's session, the pasqal-cloud SDK's session) get
:func:`answer_hook` as a requests response hook, which stops the body at the cap however
it is read. Beyond the cap: :class:`AnswerTooLarge`, a protocol error (exit 3).

Results are not answers: they are streamed to the output file and limited by
``QRMI_MAX_RESULT_BYTES`` instead (:mod:`qrmi_tasks.output`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qrmi_tasks.errors import ProviderError

#: the cap on one API answer, decoded (gzip included)
MAX_ANSWER_BYTES = 16 << 20
_CHUNK = 1 << 16


class AnswerTooLarge(ProviderError):
    """An answer larger than the cap: not the API's (exit 3, not retried)."""


def too_large(where: str, limit: int = MAX_ANSWER_BYTES) -> AnswerTooLarge:
    """The error for an answer from ``where`` that passed ``limit`` bytes."""
    return AnswerTooLarge(
        f"protocol error: the answer from {where} is larger than {limit >> 20} MiB "
        "(an API answer is kilobytes); not read further"
    )


def read_capped(chunks: Iterable[bytes], where: str, limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The whole body from ``chunks`` (e.g. ``response.iter_content``), or AnswerTooLarge
    as soon as it passes ``limit``."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(where, limit)
        parts.append(chunk)
    return b"".join(parts)


class _CappedRaw:
    """A response's raw stream that raises once more than ``limit`` bytes came out.

    It has ``read`` and no ``stream``: requests then reads the body through ``read``
    (``Response.iter_content``), so ``.content``, ``.json()`` and ``.text`` all stop here.
    """

    def __init__(self, raw: Any, limit: int, where: str) -> None:
        self._raw = raw
        self._limit = limit
        self._where = where
        self._seen = 0

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        data = self._raw.read(amt or _CHUNK, decode_content=True)
        self._seen += len(data)
        if self._seen > self._limit:
            self.close()
            raise too_large(self._where, self._limit)
        return data

    def close(self) -> None:
        self._raw.close()

    def release_conn(self) -> None:
        release = getattr(self._raw, "release_conn", None)
        if release is not None:
            release()

    @property
    def closed(self) -> bool:
        return bool(getattr(self._raw, "closed", True))


def error_body(response: Any) -> Any:
    """An error answer's body: its JSON, else its text (some services answer errors in
    plain text); None without a response. :func:`qrmi_tasks.retry.error_text` words it."""
    if response is None:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def answer_hook(
    limit: int = MAX_ANSWER_BYTES, uncapped: Callable[[str], bool] = lambda url: False
) -> Callable[..., None]:
    """A requests ``response`` hook capping every answer read whole (``stream=False``).

    Streamed requests (``stream=True``: result downloads, our own capped readers) and the
    URLs ``uncapped`` names are left alone. Hooks run before requests reads a body.
    """

    def hook(response: Any, *args: Any, stream: bool = False, **kwargs: Any) -> None:
        if stream or uncapped(response.url):
            return
        where = response.url.split("?", 1)[0]
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            response.close()
            raise too_large(where, limit)
        response.raw = _CappedRaw(response.raw, limit, where)

    return hook
