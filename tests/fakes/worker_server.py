"""Fork server behind the fakes' jobs (see worker.py): import the simulators once, then
fork one child per job, each running ``qrmi_tasks.providers.local_worker`` as the local
resource's worker process does.

A fresh ``python -m qrmi_tasks.providers.local_worker`` spends seconds of CPU importing
qiskit and qiskit-ibm-runtime (whose RuntimeEncoder encodes results); every Direct
Access, Qiskit Runtime and Pasqal job of the test suite paid that. A forked child starts
with the imports done and is still a process of its own (killed when a job is cancelled).

Protocol (lines): stdin ``WORKDIR`` -> stdout ``started PID``; when a child ends,
``exited PID CODE`` (CODE is -N for signal N). Ends when stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback

# The imports a job needs, done once here; forked children inherit them.
from qrmi_tasks.providers import local_sim, local_worker  # noqa: F401
from qrmi_tasks.quiet import quiet_import_warnings

with quiet_import_warnings():
    import pulser  # noqa: F401
    import pulser_simulation  # noqa: F401
    import qiskit.primitives  # noqa: F401
    import qiskit_ibm_runtime  # noqa: F401

_write = threading.Lock()
_children: set[int] = set()


def _say(line: str) -> None:
    with _write:
        try:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            # the test process has ended (a fake's job thread asked for a job as it
            # exited): nobody is left to tell, and its children end with their jobs
            os._exit(0)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(0.01)
            continue
        _children.discard(pid)
        _say(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


def _child(workdir: str) -> None:
    code = 70
    if not os.path.isdir(workdir):  # removed as the test process exited: no job to run
        os._exit(code)
    try:
        # stderr to a file the client reads when the job fails
        fd = os.open(os.path.join(workdir, "stderr.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.dup2(fd, 2)
        code = local_worker.main([workdir])
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    threading.Thread(target=_reap, daemon=True).start()
    for line in sys.stdin:
        workdir = line.strip()
        if not workdir:
            continue
        with _write:  # no fork while the reaper thread holds the stdout lock
            pid = os.fork()
        if pid == 0:
            _child(workdir)
        _children.add(pid)
        _say(f"started {pid}")
    # the test process has ended: its jobs end with it, and so does this process, at
    # once (tearing down the imported libraries object by object took seconds)
    for pid in list(_children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    os._exit(0)


if __name__ == "__main__":
    main()
