"""The ``local`` resource computing in the caller's process (the Python API's mode).

A Qiskit payload runs on a thread of this process with :mod:`.sim`, the worker's own
code: the same engine choice, the same honest stds, the same memory refusal before
anything is allocated. No interpreter start, no Qiskit import per run. The CLI keeps
its worker (:mod:`.worker`), which a cancel can kill.

A cancel here cannot stop a simulation that has started: Aer's C++ call runs to its end
on its thread. The cancel is final all the same: the task reports ``cancelled`` at once
and its result, when the thread ends, is dropped, never returned.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from qrmi_tasks.errors import first_line

_numbers = itertools.count(1)


class InProcessRun:
    """One primitive payload computing on a daemon thread of this process."""

    def __init__(self, document: dict[str, Any], engine: Any, seed: int | None) -> None:
        self.task_id = f"local-inproc-{next(_numbers)}"
        self.text: str | None = None  # the encoded result, once computed
        self.error: str | None = None
        self.rejected = False  # refused before simulating: an input error (exit 2)
        self.cancelled = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._compute,
            args=(document, engine, seed),
            name=f"qrmi: {self.task_id}",
            daemon=True,  # an uninterruptible simulation must not hold the interpreter's exit
        )
        self._thread.start()

    def _compute(self, document: dict[str, Any], engine: Any, seed: int | None) -> None:
        from qrmi_tasks.providers.local.sim import (
            ExecutionError,
            Rejected,
            encode_primitive_result,
            run_primitive,
        )
        from qrmi_tasks.providers.local.worker import seeded

        try:
            params = document["parameters"]
            if seed is not None:
                params = seeded(document["program_id"], params, seed)
            result = run_primitive(document["program_id"], params, engine)
            if not self.cancelled:  # a cancelled result is not even encoded
                keep_types = params.get("support_qiskit", True) is not False
                self.text = encode_primitive_result(result, keep_types)
        except ExecutionError as exc:
            self.error = " ".join(str(exc).split())
            self.rejected = isinstance(exc, Rejected)
        except MemoryError:
            self.error = "the simulation ran out of memory"
        except Exception as exc:  # an engine's own failure: one line, as the worker's
            self.error = f"simulator failed: {first_line(exc)}"
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        """Whether the computation has ended (result or error)."""
        return self._done.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the computation; whether it ended."""
        return self._done.wait(timeout)
