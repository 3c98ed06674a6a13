"""What every provider's retries share: which failures are transient, and ``Retry-After``.

Providers keep their own loops for now (each wraps a different client library), but
decide with these, so a status code or a header means the same thing everywhere.
"""

from __future__ import annotations

import email.utils
import time

#: HTTP statuses another attempt may cure (429 throttling, 5xx, Cloudflare's 52x).
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 524})
#: The longest ``Retry-After`` honoured; a larger one is capped, not obeyed blindly.
MAX_RETRY_AFTER = 300.0


def retry_after_seconds(value: str | None, cap: float = MAX_RETRY_AFTER) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date).

    None when absent or neither form (a malformed header is ignored, never an error).
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(text).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(cap, max(0.0, seconds))


def is_transient(status: int | None) -> bool:
    """Whether a failure with this HTTP status (None: no answer at all) may be retried."""
    return status is None or status in TRANSIENT_STATUSES
