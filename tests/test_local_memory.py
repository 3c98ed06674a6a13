"""The memory guard's arithmetic and its reading of cgroup v1/v2 limits and /proc/meminfo."""

from __future__ import annotations

from pathlib import Path

from qrmi_tasks.providers.local import memory as local_memory

GIB = 1 << 30


def _proc(tmp_path: Path, cgroup_lines: str, available_kib: int) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "cgroup").write_text(cgroup_lines)
    (proc / "meminfo").write_text(
        f"MemTotal:       99999999 kB\nMemFree:  1 kB\nMemAvailable:   {available_kib} kB\n"
    )
    return proc


def _write(directory: Path, **files: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name.replace("_", ".", 1)).write_text(text)


def test_state_sizes():
    assert local_memory.dense_state_bytes(20, "statevector") == 16 * 2**20
    assert local_memory.dense_state_bytes(40, "statevector") == 16 * 2**40
    assert local_memory.dense_state_bytes(10, "density_matrix") == 16 * 4**10
    assert local_memory.dense_state_bytes(1000, "stabilizer") is None
    assert local_memory.dense_state_bytes(1000, "matrix_product_state") is None


def test_meminfo_when_no_cgroup_limits(tmp_path):
    proc = _proc(tmp_path, "0::/\n", available_kib=8 * 1024 * 1024)
    _write(tmp_path / "cg", memory_max="max\n", memory_current="123\n")
    assert local_memory.available_bytes(proc, tmp_path / "cg") == 8 * GIB


def test_cgroup_v2_limit_of_an_ancestor_minus_its_usage(tmp_path):
    # Slurm sets the job's limit on job_7, above the task's own cgroup
    proc = _proc(tmp_path, "0::/system.slice/job_7/step_0/task_0\n", available_kib=64 << 20)
    root = tmp_path / "cg"
    _write(root / "system.slice" / "job_7", memory_max=str(4 * GIB), memory_current=str(GIB))
    _write(root / "system.slice" / "job_7" / "step_0" / "task_0", memory_max="max")
    assert local_memory.available_bytes(proc, root) == 3 * GIB


def test_cgroup_v1_limit(tmp_path):
    proc = _proc(tmp_path, "4:memory:/slurm/uid_0/job_9\n1:cpu:/\n", available_kib=64 << 20)
    job = tmp_path / "cg" / "memory" / "slurm" / "uid_0" / "job_9"
    _write(job, memory_limit_in_bytes=str(2 * GIB), memory_usage_in_bytes=str(GIB // 2))
    # v1 writes "no limit" as a huge number
    _write(tmp_path / "cg" / "memory", memory_limit_in_bytes="9223372036854771712")
    assert local_memory.available_bytes(proc, tmp_path / "cg") == GIB + GIB // 2


def test_container_path_outside_the_mount_uses_the_mounts_root(tmp_path):
    # a container shows the host's cgroup path but mounts its own cgroup as the root
    proc = _proc(tmp_path, "4:memory:/process_api/abc\n", available_kib=64 << 20)
    _write(tmp_path / "cg" / "memory", memory_limit_in_bytes=str(GIB), memory_usage_in_bytes="0")
    assert local_memory.available_bytes(proc, tmp_path / "cg") == GIB


def test_meminfo_is_tighter_than_the_cgroup(tmp_path):
    proc = _proc(tmp_path, "0::/job\n", available_kib=1024 * 1024)
    _write(tmp_path / "cg" / "job", memory_max=str(8 * GIB), memory_current="0")
    assert local_memory.available_bytes(proc, tmp_path / "cg") == GIB


def test_this_machine_reports_something_positive():
    assert local_memory.available_bytes() > 0


def test_fits_keeps_headroom():
    assert local_memory.fits(GIB, 2 * GIB)
    assert not local_memory.fits(GIB, GIB)
    assert local_memory.human_bytes(16 * 2**40) == "16.0 TiB"
    assert local_memory.human_bytes(512) == "512 B"


def _register_payload(atoms: int):
    from pulser import Pulse, Register, Sequence
    from pulser.devices import MockDevice

    from qrmi_tasks.payload import CheckedPayload

    sequence = Sequence(Register.rectangle(1, atoms, spacing=6, prefix="q"), MockDevice)
    sequence.declare_channel("rydberg", "rydberg_global")
    sequence.add(Pulse.ConstantPulse(100, 2.0, 0.0, 0.0), "rydberg")
    document = {"sequence": sequence.to_abstract_repr(), "job_runs": 10}
    return CheckedPayload("pulser", document, "big.json")


def _local_provider(**environ: str):
    from qrmi_tasks.providers import open_provider

    return open_provider("local", environ)


def test_a_register_that_cannot_fit_is_refused_before_the_worker_starts(monkeypatch):
    import pytest

    from qrmi_tasks.errors import PayloadError

    monkeypatch.setattr(local_memory, "available_bytes", lambda: 4 * GIB)
    provider = _local_provider()
    # 25 two-level atoms on QuTiP: (216 + 24 * 25) bytes per amplitude, 2**25 amplitudes
    with pytest.raises(PayloadError, match=r"emulating 25 atoms with qutip needs about 25\.5 GiB"):
        provider.submit(_register_payload(25))
    assert provider._child is None and provider._workdir is None  # no worker, no files
    assert local_memory.pulser_state_bytes("emu-mps", 25, 2) is None  # MPS: not estimated
