"""Result pick-up latency and status-request counts (printed, not asserted).

Usage: ``.venv/bin/python bench/bench_polling.py [--repeat N] [--lengths 1,10,60]``.

Against the fake Direct Access service + moto S3 on loopback (every job returns a fixed
result after exactly its length), for jobs of each length (minus 0-2 s, so that the end
falls anywhere between two polls): the time from the fake
completing the job to the result file being written (median and max of N runs), and the
number of status requests. Then the same for a job array's tasks, each the same kind of
task as the one before: the runner places its polls around where the earlier ones ended
(qrmi_tasks/durations.py). Last, from the same ``PollPolicy`` the runner uses, the request
count and pick-up delay for long jobs and for jobs that queue first (an hour of real
polling is not run).
Targets: median pick-up <= 0.2 s for short array tasks at <= 1 status request per second;
without history, median pick-up <= 1 s for jobs up to a minute; never > 5 s; <= 45 status
requests for a 60 s job, <= 800 for an hour-long job.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fakes.direct_access import FakeDirectAccess, moto_s3, runner_env  # noqa: E402

from qrmi_tasks.providers.base import PollPolicy, TaskStatus  # noqa: E402

BACKEND = "fake_heron"
BELL = ROOT / "examples" / "qiskit" / "bell_sampler.json"
RUNNER = [sys.executable, "-m", "qrmi_tasks"]


def simulate(policy: PollPolicy, length: float, queued: float = 0.0) -> tuple[int, float, float]:
    """Polls of a job that queues ``queued`` s then runs ``length`` s, from the policy alone.

    Returns the status requests, the largest gap between polls and the pick-up delay
    (from the job's end to the poll that sees it).
    """
    schedule = policy.schedule()
    t, polls, gap = 0.0, 1, 0.0
    while t < queued + length:
        status = TaskStatus.QUEUED if t < queued else TaskStatus.RUNNING
        wait = schedule.next_wait(status, t)
        gap = max(gap, wait)
        t += wait
        polls += 1
    return polls, gap, t - queued - length


def one_run(fake, env: dict[str, str], out: Path) -> tuple[float, int]:
    """Run the runner once; the pick-up delay and the status requests it made."""
    before = len(fake.requests)
    subprocess.run(
        [*RUNNER, BACKEND, str(BELL), "-o", str(out)],
        env=env,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    requests = sum(
        1
        for r in fake.requests[before:]
        if r["method"] == "GET" and r["path"].startswith("/v1/jobs/")
    )
    return out.stat().st_mtime - fake.completed_at[-1], requests


def report(length: float, latencies: list[float], counts: list[int]) -> None:
    """One line of figures for jobs of ``length`` seconds."""
    rate = statistics.median(counts) / length
    print(
        f"{length:>5.0f}s {statistics.median(latencies):>14.3f}s "
        f"{max(latencies):>5.2f}s {statistics.median(counts):>16.0f} {rate:>8.2f}/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--lengths", default="1,10,30,60")
    args = parser.parse_args()
    lengths = [float(x) for x in args.lengths.split(",")]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "QRMI_"))}
    policy = PollPolicy()
    print(f"policy: {policy}")
    header = f"{'job':>6} {'pick-up median':>15} {'max':>6} {'status requests':>16} {'rate':>10}"
    with moto_s3() as s3_url, tempfile.TemporaryDirectory() as tmp:
        fake = FakeDirectAccess((BACKEND,), job_seconds=0.2).start()
        env = dict(base, **runner_env(BACKEND, fake.url, s3_url))
        env["QRMI_STATE_DIR"] = str(Path(tmp) / "warm-up")
        env["QRMI_CHECK_TARGET"] = "off"  # the logical Bell circuit; polling is measured here
        out = Path(tmp) / "out.json"
        subprocess.run(
            [*RUNNER, BACKEND, str(BELL), "-o", str(out)],
            env=env,
            check=True,
            stderr=subprocess.DEVNULL,
        )
        fake.configure(fixed_result=out.read_text())
        print("the first task of its kind (no earlier task to learn from): ordinary schedule")
        print(header)
        for length in lengths:
            latencies, counts = [], []
            for n in range(args.repeat):
                # up to 2 s shorter: the pick-up delay depends on where the end falls
                # between two polls (at most 1.6 s apart in the first minute), and a
                # fixed length would sample one phase only
                fake.configure(job_seconds=max(0.1, length - random.uniform(0, 2)))
                env["QRMI_STATE_DIR"] = str(Path(tmp) / f"first-{length}-{n}")
                latency, count = one_run(fake, env, out)
                latencies.append(latency)
                counts.append(count)
            report(length, latencies, counts)
        print(
            "a job array's next task (the same kind of task as the one before, its length "
            "varying by +-2 %): polls placed around where the earlier ones ended"
        )
        print(header)
        for length in lengths:
            env["QRMI_STATE_DIR"] = str(Path(tmp) / f"array-{length}")
            latencies, counts = [], []
            for n in range(args.repeat + 1):
                fake.configure(job_seconds=length * random.uniform(0.98, 1.02))
                latency, count = one_run(fake, env, out)
                if n:  # the array's first task learns, the others are measured
                    latencies.append(latency)
                    counts.append(count)
            report(length, latencies, counts)
        fake.stop()
    print("from the policy (no service): requests, largest gap, pick-up delay (median, max)")
    for queued, length in ((0, 60), (0, 600), (0, 3600), (0, 4 * 3600), (3600, 10), (3600, 600)):
        runs = [simulate(policy, length * random.uniform(0.9, 1), queued) for _ in range(200)]
        delays = [r[2] for r in runs]
        label = f"{length}s job" + (f" after {queued}s queued" if queued else "")
        print(
            f"{label:>26}: {statistics.mean(r[0] for r in runs):>5.0f} status requests, "
            f"largest gap {max(r[1] for r in runs):.2f} s, pick-up "
            f"{statistics.median(delays):.2f} s / {max(delays):.2f} s"
        )


if __name__ == "__main__":
    main()
