"""Print the runner's start-up and cancel figures on the embedded ``local`` resource.

Usage: ``.venv/bin/python bench/bench_runner.py [--repeat N]``. Figures, not assertions:
machines here are noisy, so read medians.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from payloads import write_long_estimator  # noqa: E402

RUNNER = [sys.executable, "-m", "qrmi_tasks"]
BELL = ROOT / "examples" / "qiskit" / "bell_sampler.json"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "QRMI_"))}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def cancel_latency(payload: Path) -> float:
    """Seconds from SIGTERM to the runner's exit, on a running local task."""
    proc = subprocess.Popen(
        [*RUNNER, "local", str(payload)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if ": running" in line:
            break
    start = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    elapsed = time.perf_counter() - start
    assert proc.returncode == 143, proc.returncode
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"help_s": [], "bell_local_s": [], "sigterm_exit_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        payload = write_long_estimator(Path(tmp) / "long.json", bindings=100_000)
        for _ in range(args.repeat):
            figures["help_s"].append(timed([*RUNNER, "--help"]))
            figures["bell_local_s"].append(timed([*RUNNER, "local", str(BELL), "-q"]))
            figures["sigterm_exit_s"].append(cancel_latency(payload))
    for name, values in figures.items():
        print(
            f"{name:16s} median {statistics.median(values):7.3f}  min {min(values):7.3f}  "
            f"max {max(values):7.3f}  (n={len(values)})"
        )
    print(json.dumps({k: round(statistics.median(v), 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
