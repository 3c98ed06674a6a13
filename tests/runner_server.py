"""Fork server for the tests' processes (runners, simulator workers, the fakes' jobs):
import once, fork one child per run.

A fresh ``python -m qrmi_tasks`` on a cloud resource spends seconds importing its SDK
before it sends a request (qiskit-ibm-runtime about 2 s, pasqal-cloud with Pulser about
2.4 s, more under coverage), and the provider tests start a runner per test, often
several. This server imports the runner and every provider's libraries once; each run is
a child forked from it that calls ``qrmi_tasks.cli.main`` with the test's arguments,
environment, working directory and standard streams. The child is a process of its own,
as ``subprocess.Popen`` gives: signals reach it by pid, it exits with the runner's exit
code (or dies by a signal), its children are its own.

What a fork cannot show (what a fresh interpreter imports and prints at start-up, the
installed entry point script) is tested with real processes: ``helpers.run_runner`` /
``start_runner`` with ``fresh=True``, or ``QRMI_TEST_FRESH_RUNNERS=1`` for every run.

One server serves the whole test run (every pytest-xdist worker): its imports cost
seconds of CPU, which the suite paid once per worker before.

Protocol: ``python runner_server.py NAME`` binds a Unix SOCK_SEQPACKET socket at the
abstract address ``\\0NAME`` and prints ``ready`` (or ``taken``, and exits, if another
server has it), then does its imports. A test process connects and
sends ``{"hold": true}`` to hold the server; the server ends (and kills what it forked)
when the last holder's connection closes. To run a child, a client connects and sends
one packet, JSON ``{"argv": [...], "env": {...}, "cwd": "..."}`` (or ``{"worker":
[...], "session": bool, "measured": bool, ...}`` for a ``local`` simulator worker, see
tests/forked.py; ``measured`` false: coverage does not trace it, as for the fakes' jobs)
with three file descriptors (the child's stdin, stdout, stderr) attached; the server
answers ``started PID``, and ``exited CODE`` when the child ends (CODE is -N when
signal N killed it), then closes the connection.

Kept single-threaded on purpose: a fork copies only the forking thread, and a lock held
by another thread at that moment would stay held in the child forever.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import posix
import selectors
import signal
import socket
import sys
import threading
import traceback

import forked


def _import_libraries() -> None:
    """Everything a run imports on its way to the first request (a child inherits it)."""
    from qrmi_tasks import cli, config, isa, payload, runner  # noqa: F401
    from qrmi_tasks.providers.ibm import (  # noqa: F401
        da_client,
        da_storage,
        direct_access,
        qiskit_runtime,
        qiskit_runtime_api,
    )
    from qrmi_tasks.providers.local import provider, worker  # noqa: F401
    from qrmi_tasks.providers.pasqal import cloud  # noqa: F401
    from qrmi_tasks.quiet import quiet_import_warnings

    with quiet_import_warnings():
        import jsonschema  # noqa: F401
        import pasqal_cloud as pasqal_sdk  # noqa: F401
        import pulser  # noqa: F401
        import qiskit_ibm_runtime  # noqa: F401
        import requests  # noqa: F401
        from botocore.auth import S3SigV4QueryAuth  # noqa: F401
        from qiskit_ibm_runtime.utils.backend_converter import convert_to_target  # noqa: F401


_MAX_REQUEST = 1 << 20


def _reset_process(fds: list[int], inherited: list[socket.socket], request: dict) -> None:
    """In a forked child: a fresh interpreter's signal dispositions (the runner installs
    its own handlers), the request's stdio, directory and environment."""
    for sock in inherited:
        sock.close()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCONT, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])


def _child(request: dict, fds: list[int], inherited: list[socket.socket]) -> None:
    """In the forked child: become ``qrmi-task-runner ARGV``, or the ``local`` resource's
    worker (``python -m qrmi_tasks.providers.local.worker ARGS``), and never return."""
    code = 70
    exit_ = os._exit  # coverage's: it saves the measurements first
    try:
        _reset_process(fds, inherited, request)
        from qrmi_tasks import cli
        from qrmi_tasks.providers.local import worker as local_worker

        if not request.get("measured", True):
            # a fakes' job: machinery, not the product under test; tracing it cost CPU
            sys.settrace(None)
            threading.settrace(None)
            exit_ = posix._exit  # os._exit as it was before coverage wrapped it
        if "worker" in request:
            if request["session"]:
                os.setsid()
            sys.argv = ["local_worker", *request["worker"]]
            code = local_worker.main(request["worker"])
        else:
            sys.argv = ["qrmi-task-runner", *request["argv"]]
            try:
                cli.main(request["argv"])
                code = 0
            except SystemExit as end:
                code = end.code if isinstance(end.code, int) else (end.code is not None)
    except BaseException:  # what a fresh interpreter would print, then exit 1
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing left to say
                stream.flush()
        exit_(code)


_simulators_imported = False


def _import_simulators() -> None:
    """What a ``local`` worker imports to simulate: done once, before the first worker is
    forked (not at start: most test processes never run one)."""
    global _simulators_imported
    if not _simulators_imported:
        from qrmi_tasks.quiet import quiet_import_warnings

        with quiet_import_warnings():
            import pulser_simulation  # noqa: F401
            import qiskit_aer.primitives  # noqa: F401

            from qrmi_tasks.providers.local import sim  # noqa: F401
        _simulators_imported = True


def _send(conn: socket.socket, text: str) -> None:
    with contextlib.suppress(OSError):  # the client went away; the child runs on
        conn.send(text.encode())


def serve(name: str) -> None:
    """Serve fork requests at the abstract Unix socket ``name`` until the last holder
    has gone; print ``taken`` and return if another server already serves there."""
    path = "\0" + name  # Linux's abstract namespace: no file left behind, ever
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        listener.bind(path)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print("taken", flush=True)  # another test process started it first: use that one
        return
    listener.listen(64)
    # clients may connect now: they wait in the backlog while the imports are done
    print("ready", flush=True)
    _import_libraries()
    from qrmi_tasks.providers.local.provider import LocalProvider

    # the runners forked from here ask this server for their local workers too
    forked.serve_from(path)
    LocalProvider.worker_launcher = forked.worker_launcher()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    children: dict[int, socket.socket] = {}
    holders: set[socket.socket] = set()
    while True:
        for key, _ in selector.select(timeout=0.005):
            if key.data == "holder":  # readable only once a test process has gone
                selector.unregister(key.fileobj)
                holders.discard(key.fileobj)
                key.fileobj.close()
                if not holders:
                    _end_children(children)
                    # at once: tearing down the imported libraries object by object
                    # took seconds (coverage still saves its data on os._exit)
                    os._exit(0)
                continue
            if key.data != "accept":  # a worker's client: readable only once it has gone
                _client_gone(key.data, selector, key.fileobj)
                continue
            conn, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
            request = json.loads(message)
            if request.get("hold"):
                holders.add(conn)
                selector.register(conn, selectors.EVENT_READ, "holder")
                continue
            if "worker" in request:
                _import_simulators()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(request, fds, [listener, conn, *children.values(), *holders])
            for fd in fds:
                os.close(fd)
            children[pid] = conn
            if "worker" in request:
                selector.register(conn, selectors.EVENT_READ, pid)
            _send(conn, f"started {pid}")
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid)
            _send(conn, f"exited {os.waitstatus_to_exitcode(status)}")
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(conn)
            conn.close()


def _end_children(children: dict[int, socket.socket]) -> None:
    """The test processes have ended: nothing they started may run on without them."""
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _client_gone(pid: int, selector: selectors.BaseSelector, conn: socket.socket) -> None:
    """A worker's client (the runner) closed its connection: the runner has ended, so its
    worker goes too, as a real worker's parent-death signal (SIGKILL) makes it."""
    with contextlib.suppress(OSError):
        if conn.recv(64):
            return  # clients send nothing after their request; not an end
    selector.unregister(conn)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    serve(sys.argv[1])
