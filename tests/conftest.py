"""Fixtures shared by the test modules (helper functions live in helpers.py)."""

from __future__ import annotations

import os
import signal

import pytest
from helpers import (
    ROOT,
    ConnectionCounter,
    InProcessCli,
    clean_env,
    process_state_restored,
    use_forked_local_workers,
)


def pytest_configure(config: pytest.Config) -> None:
    """Tests send Ctrl-C (SIGINT) to processes as a terminal would. A suite started in
    the background (``make test &``, nohup, some CI runners) inherits SIGINT *ignored*,
    which every child inherits in turn, and Python then never turns SIGINT into
    KeyboardInterrupt: give this process (and so its children) the default again."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller still ends on SIGTERM
        for signum in _GUARDED:
            signal.signal(signum, _stray_signal)


# In-process runs send this process scancel's signals (tests/scripted.py). One that came
# after its run had ended and put our handlers back would kill a pytest-xdist worker by
# the default action: "node down", and with --dist loadgroup a replaced worker can hang
# the whole run (pytest-dev/pytest-xdist#1323, #1378). Such a signal fails the test
# during which it came instead, naming itself.
_GUARDED = (signal.SIGTERM, signal.SIGHUP)
_stray: list[str] = []


def _stray_signal(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    _stray.append(name)
    os.write(2, f"\ntest process: stray {name} (no run was watching); failing the test\n".encode())


@pytest.fixture(autouse=True)
def no_stray_signal():
    """Fail the test during which this process got a signal no run of it was watching."""
    yield
    if _stray:
        names = ", ".join(_stray)
        _stray.clear()
        pytest.fail(f"this test process got {names} after the run meant to handle it had ended")


#: vendor packages of the tests' own resource types (the ``scripted`` fixture adds them)
VENDORS = ROOT / "tests" / "vendors"


@pytest.fixture(scope="session", autouse=True)
def forked_local_workers():
    """The ``local`` resource's workers started in this process (in-process runs, the
    notebook API) are forked from a server with Qiskit and Pulser imported, not fresh
    interpreters that import them again each time (:func:`helpers.use_forked_local_workers`).
    The runners that tests start as processes do the same; fresh ones do not."""
    with use_forked_local_workers():
        yield


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
def in_process(monkeypatch, capsys):
    """Our commands called in this process, as their ``main`` does minus the exit.

    Yields an :class:`InProcessCli`: ``.run(*args)`` is ``qrmi-task-runner ARGS``,
    ``.gen(*args)`` is ``qrmi-gen ARGS``, ``.result(*args)`` is ``qrmi-result ARGS``, each
    returning its exit code and output;
    ``.use_env(env)`` replaces the environment (clean_env() until then: no Slurm or QRMI
    variable of the developer's leaks in). Afterwards restores what a command changes in
    its process (:func:`helpers.process_state_restored`).
    """
    cli = InProcessCli(capsys, monkeypatch)
    cli.use_env(clean_env())
    with process_state_restored():
        yield cli


@pytest.fixture
def scripted(in_process, monkeypatch):
    """The runner's CLI, in this process, on a ``scripted`` resource (tests/scripted.py).

    The :class:`InProcessCli` of ``in_process`` with ``.script``, what the provider
    answers. The type is declared by a vendor package of its own (tests/vendors), found
    by the provider registry for this test only, as any vendor package is.
    """
    import scripted as module

    from qrmi_tasks import providers

    monkeypatch.setattr(providers, "__path__", [*providers.__path__, str(VENDORS)])
    monkeypatch.setenv("QRMI_JOB_QPU_RESOURCES", module.RESOURCE)
    monkeypatch.setenv("QRMI_JOB_QPU_TYPES", module.TYPE)
    in_process.script = module.Script()
    monkeypatch.setattr(module, "current", in_process.script)
    return in_process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the tests marked ``long`` first: under pytest-xdist they then run while the
    other workers go through the short ones, instead of finishing the session alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
