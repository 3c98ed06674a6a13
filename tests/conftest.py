"""Fixtures shared by the test modules (helper functions live in helpers.py)."""

from __future__ import annotations

import logging
import os
import signal

import pytest
from helpers import ConnectionCounter, ScriptedCli, clean_env


def pytest_configure(config: pytest.Config) -> None:
    """Tests send Ctrl-C (SIGINT) to processes as a terminal would. A suite started in
    the background (``make test &``, nohup, some CI runners) inherits SIGINT *ignored*,
    which every child inherits in turn, and Python then never turns SIGINT into
    KeyboardInterrupt: give this process (and so its children) the default again."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture
def scripted(monkeypatch, capsys):
    """The runner's CLI, in this process, on a ``scripted`` resource (tests/scripted.py).

    Yields a :class:`ScriptedCli`: ``.script`` is what the provider answers, ``.run(*args)``
    runs ``qrmi-task-runner ARGS`` and returns its exit code and output. Registers the
    resource type for this test only and restores what the runner changes in a process
    (signal handlers, root log handlers).
    """
    import signal

    import scripted as module

    from qrmi_tasks import config, providers

    monkeypatch.setitem(
        config.RESOURCE_TYPES, module.TYPE, config.ResourceType(module.TYPE, module.PREFIX)
    )
    monkeypatch.setitem(providers.PROVIDERS, module.TYPE, module.TARGET)
    keep = clean_env()  # no Slurm or QRMI variable of the developer's leaks in
    for name in [name for name in os.environ if name not in keep]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("QRMI_JOB_QPU_RESOURCES", module.RESOURCE)
    monkeypatch.setenv("QRMI_JOB_QPU_TYPES", module.TYPE)
    script = module.Script()
    monkeypatch.setattr(module, "current", script)
    handlers = {s: signal.getsignal(s) for s in module.interrupt_signals()}
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    try:
        yield ScriptedCli(script, capsys)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        root.handlers[:] = root_state[0]
        root.setLevel(root_state[1])
        logging.captureWarnings(False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the tests marked ``long`` first: under pytest-xdist they then run while the
    other workers go through the short ones, instead of finishing the session alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
