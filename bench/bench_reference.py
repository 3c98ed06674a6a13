"""Ours vs qrmi 0.26.4's ``task_runner`` on the fake IBM services (printed only).

Usage: ``.venv/bin/python bench/bench_reference.py [--type direct-access|runtime]
[--repeat N] [--array N] [--check on|off]``: the fake Direct Access + moto S3, or the fake
Qiskit Runtime service (``qiskit-runtime-service``; ``--runners`` picks who runs).

Both runners get the same payload (an ISA Bell sampler, generated for the fake's documents
so that our default target check passes) and the same environment; every job returns a
fixed result after exactly ``--job-seconds``. Per runner, medians of ``--repeat`` runs:

* CPU: user+sys of the runner's process tree (``wait4``: the runner and its reaped children);
* peak RSS (``ru_maxrss``: the largest process of the tree; the small spawner that starts
  each runner is its floor, about 10 MiB);
* pick-up: the fake's completion time to the result file's last write, and to the exit;
* status requests (``GET .../jobs...``) and IAM token requests per run;

then ``--array`` runners started together (a job array on one node): the largest sum of
their resident memory seen by psutil (sampled every 20 ms), the sum of their peaks, and
the IAM token requests they made together. Each runner kind starts with an empty state
directory and runtime directory (``QRMI_STATE_DIR``, ``XDG_RUNTIME_DIR``); the single runs
after the first find the backend documents and the IAM token cached there, as a user's
successive runs on a node do, and the token cache is emptied before the array starts.
Targets (issue 25): CPU <= 0.35 s, peak RSS <= 80 MiB, pick-up median <= 0.2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fakes import qiskit_runtime  # noqa: E402
from fakes.direct_access import FakeDirectAccess, moto_s3, runner_env  # noqa: E402
from fakes.server import FakeServer  # noqa: E402

BACKEND = "fake_heron"
TOKEN_PATH = re.compile(r".*/identity/token")
RUN_TIMEOUT = 120  # seconds: a runner that never ends fails the bench instead of hanging it
BELL_QASM = ROOT / "examples" / "qiskit" / "bell.qasm"
BIN = Path(sys.executable).parent
RUNNERS = {
    "ours": [sys.executable, "-m", "qrmi_tasks"],
    "qrmi 0.26.4": [str(BIN / "task_runner")],
}


@dataclass
class Figures:
    """One runner's measured runs."""

    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    write_delay: list[float] = field(default_factory=list)
    exit_delay: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    array_sampled: float = 0.0
    array_peaks: float = 0.0
    array_tokens: int = 0


# A runner's ru_maxrss keeps the high-water mark of the process it was forked from (the
# fork's pages count until exec): runners are started from this small interpreter, not
# from the bench (moto and the fake weigh ~150 MiB), which writes the rusage to argv[1].
_SPAWN = (
    "import json, os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime,"
    " usage.ru_maxrss], f)\n"
)


def command(runner: str, payload: Path, out: Path) -> list[str]:
    """The command line of ``runner`` (ours takes ``-o``, qrmi's a positional output)."""
    if runner == "ours":
        return [*RUNNERS[runner], BACKEND, str(payload), "-o", str(out)]
    return [*RUNNERS[runner], BACKEND, str(payload), str(out)]


def spawned(runner: str, payload: Path, out: Path, usage: Path) -> list[str]:
    """``command`` started by the small spawner, which records its rusage in ``usage``."""
    return [sys.executable, "-S", "-c", _SPAWN, str(usage), *command(runner, payload, out)]


def token_requests(fake: FakeServer, since: int = 0) -> int:
    """IAM token requests the fake received after its ``since``-th request."""
    return sum(
        1
        for r in fake.requests[since:]
        if r["method"] == "POST" and TOKEN_PATH.fullmatch(r["path"])
    )


def run_once(fake: FakeServer, runner: str, payload: Path, out: Path, env: dict[str, str]) -> None:
    """Run ``runner`` once; raise if it fails."""
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(
        command(runner, payload, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"{runner} did not end within {RUN_TIMEOUT} s") from None
    if proc.returncode != 0:
        raise SystemExit(f"{runner} failed: {proc.stderr.read().decode()[-2000:]}")


def measure(
    fake: FakeServer, runner: str, payload: Path, out: Path, env: dict[str, str]
) -> tuple[float, float, float, float, int, int]:
    """One run: (CPU s, peak RSS MiB, completion->write s, completion->exit s, polls,
    IAM token requests)."""
    out.unlink(missing_ok=True)
    before = len(fake.requests)
    record = out.with_suffix(".usage")
    proc = subprocess.Popen(
        spawned(runner, payload, out, record),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit(f"{runner} did not end within {RUN_TIMEOUT} s") from None
    ended = time.time()
    code, cpu, maxrss = json.loads(record.read_text())
    if code != 0:
        raise SystemExit(f"{runner} failed: {proc.stderr.read().decode()[-2000:]}")
    completed = fake.completed_at[-1]
    polls = sum(
        1
        for r in fake.requests[before:]
        if r["method"] == "GET" and re.match(r"(/api)?/v1/jobs", r["path"])
    )
    return (
        cpu,
        maxrss / 1024,
        out.stat().st_mtime - completed,
        ended - completed,
        polls,
        token_requests(fake, before),
    )


def array_memory(runner: str, payload: Path, tmp: Path, env: dict[str, str], count: int):
    """Start ``count`` runners together: (largest sampled RSS sum, sum of peaks), MiB."""
    records = [tmp / f"array-{i}.usage" for i in range(count)]
    procs = [
        subprocess.Popen(
            spawned(runner, payload, tmp / f"array-{i}.json", records[i]),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    handles = [psutil.Process(p.pid) for p in procs]
    peaks: list[float] = []
    done = threading.Event()

    def reap() -> None:
        for proc, record in zip(procs, records, strict=True):
            proc.wait()
            peaks.append(json.loads(record.read_text())[2] / 1024)
        done.set()

    threading.Thread(target=reap, daemon=True).start()
    largest = 0.0
    while not done.wait(0.02):
        total = 0
        for handle in handles:
            try:
                total += handle.memory_info().rss
                total += sum(c.memory_info().rss for c in handle.children(recursive=True))
            except psutil.Error:
                continue  # ended between the listing and the reading
        largest = max(largest, total / 2**20)
    return largest, sum(peaks)


@contextlib.contextmanager
def service(kind: str, job_seconds: float) -> Iterator[tuple[FakeServer, dict[str, str]]]:
    """The fake of ``kind`` and the variables both runners need to use it."""
    if kind == "runtime":
        fake = qiskit_runtime.FakeQiskitRuntime((BACKEND,), job_seconds=job_seconds).start()
        try:
            yield fake, qiskit_runtime.runner_env(BACKEND, fake)
        finally:
            fake.stop()
        return
    with moto_s3() as s3_url:
        fake = FakeDirectAccess((BACKEND,), job_seconds=job_seconds).start()
        try:
            # qrmi 0.26.4 knows the type as ibm-quantum-system and reads QRMI_IBM_QS_ only
            yield (
                fake,
                runner_env(BACKEND, fake.url, s3_url, 600, "QRMI_IBM_QS_", "ibm-quantum-system"),
            )
        finally:
            fake.stop()


def fresh_dirs(tmp: Path, runner: str) -> dict[str, str]:
    """An empty state directory and runtime directory (0700) for ``runner``."""
    dirs = {}
    for variable in ("QRMI_STATE_DIR", "XDG_RUNTIME_DIR"):
        path = tmp / runner.replace(" ", "_") / variable.lower()
        path.mkdir(mode=0o700, parents=True)
        dirs[variable] = str(path)
    return dirs


def isa_bell(tmp: Path) -> Path:
    """The Bell sampler transpiled for the fake's documents (qiskit-ibm-runtime's Torino)."""
    payload = tmp / "bell_isa.json"
    generate = [str(BIN / "qrmi-gen"), "sampler", str(BELL_QASM), "--target", "fake_torino"]
    subprocess.run([*generate, "-o", str(payload)], check=True)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--type", choices=("direct-access", "runtime"), default="direct-access")
    # qrmi 0.26.4's task_runner polls a job of the Runtime fake forever: its JobResponse
    # model needs an integer `cost`, which the fake answers null when none was sent; with
    # one, it then fails to decode the results answer. On --type runtime only ours runs
    # unless asked
    parser.add_argument("--runners", nargs="+", choices=tuple(RUNNERS), default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--array", type=int, default=50)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--check", choices=("on", "off"), default="on")
    args = parser.parse_args()
    if args.runners is None:
        args.runners = ["ours"] if args.type == "runtime" else list(RUNNERS)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "QRMI_"))}
    base.pop("XDG_RUNTIME_DIR", None)
    # pip byte-compiles an installed package (the reference's is): the warm-up run writes
    # ours, which an editable install would otherwise compile again on every run
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    with (
        service(args.type, args.job_seconds) as (fake, names),
        tempfile.TemporaryDirectory() as name,
    ):
        tmp = Path(name)
        payload = isa_bell(tmp)
        common = dict(base, **names, QRMI_CHECK_TARGET=args.check)
        out = tmp / "out.json"
        # one real run, then every job returns that result after exactly job_seconds
        run_once(fake, "ours", payload, out, dict(common, **fresh_dirs(tmp, "first")))
        fake.configure(fixed_result=out.read_text())
        figures = {}
        for runner in args.runners:
            env = dict(common, **fresh_dirs(tmp, runner))
            run_once(fake, runner, payload, out, env)  # warm the page cache
            f = figures[runner] = Figures()
            for _ in range(args.repeat):
                cpu, rss, write_delay, exit_delay, polls, tokens = measure(
                    fake, runner, payload, out, env
                )
                f.cpu.append(cpu)
                f.rss.append(rss)
                f.write_delay.append(write_delay)
                f.exit_delay.append(exit_delay)
                f.polls.append(polls)
                f.tokens.append(tokens)
            if args.array:
                # a job array starts with no token on the node
                shutil.rmtree(Path(env["XDG_RUNTIME_DIR"]) / "qrmi-tasks", ignore_errors=True)
                before = len(fake.requests)
                f.array_sampled, f.array_peaks = array_memory(runner, payload, tmp, env, args.array)
                f.array_tokens = token_requests(fake, before)
    med = statistics.median
    print(
        f"{args.type}, {args.job_seconds:g} s Bell sampler, target check {args.check}, "
        f"medians of {args.repeat} runs; {args.array} runners together"
    )
    header = (
        f"{'runner':<12} {'CPU s':>6} {'RSS MiB':>8} {'write s':>8} {'exit s':>7} "
        f"{'polls':>5} {'IAM':>4} {'array MiB (sampled / sum of peaks)':>36} {'array IAM':>9}"
    )
    print(header)
    print("-" * len(header))
    for runner, f in figures.items():
        print(
            f"{runner:<12} {med(f.cpu):>6.2f} {med(f.rss):>8.0f} {med(f.write_delay):>8.3f} "
            f"{med(f.exit_delay):>7.3f} {med(f.polls):>5.0f} {med(f.tokens):>4.0f} "
            f"{f.array_sampled:>22.0f} / {f.array_peaks:>9.0f} {f.array_tokens:>9}"
        )
    print("targets (ours): CPU <= 0.35 s, RSS <= 80 MiB, pick-up (write) median <= 0.2 s")


if __name__ == "__main__":
    main()
