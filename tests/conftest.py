"""Fixtures shared by the test modules (helper functions live in helpers.py)."""

from __future__ import annotations

import pytest
from helpers import ConnectionCounter, clean_env


@pytest.fixture(scope="session")
def s3_url():
    """One moto S3 server (with the Direct Access fake's bucket) per test process.

    Under pytest-xdist each worker starts its own, on a free port.
    """
    from fakes.direct_access import moto_s3

    with moto_s3() as url:
        yield url


@pytest.fixture
def env() -> dict[str, str]:
    """A clean environment dict a test may extend."""
    return clean_env()


@pytest.fixture
def listener():
    """A TCP listener counting connection attempts (a test asserts it stays at zero)."""
    counter = ConnectionCounter()
    yield counter
    counter.close()
