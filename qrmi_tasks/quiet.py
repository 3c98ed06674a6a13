"""Keep library import-time warnings out of the user's stderr."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_import_warnings() -> Iterator[None]:
    """Import heavy SDKs without their warnings, and undo filter changes they make.

    pasqal-cloud, for one, calls ``warnings.simplefilter("always", DeprecationWarning)``
    at import time; ``catch_warnings`` restores the process-wide filters on exit.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
