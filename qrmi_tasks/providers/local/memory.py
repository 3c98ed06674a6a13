"""How much memory a local simulation needs, and how much this job may use.

No heavy imports: the ``local`` resource checks a Pulser register here before it starts
its worker, and the worker checks a Qiskit payload's circuits after decoding them and
before building any simulator, so a state that cannot fit is refused at once instead of
ending in the OOM killer or a swap storm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: bytes per amplitude: complex128, Aer's default precision and numpy's/torch's
AMPLITUDE_BYTES = 16
#: headroom kept free: the interpreter, qiskit, result buffers, the runner itself
HEADROOM_BYTES = 256 << 20
#: Aer's statevector is updated in place; the reference primitives (numpy) copy the
#: state at each gate and keep the probabilities next to it
DENSE_FACTOR = {"aer": 1.1, "reference": 4.0}

#: bytes a sampled shot keeps until the result is written: Aer's per-shot memory (a
#: Python string each), the sampler's BitArray and the result's encoding (10**7 shots
#: of a 2-qubit Bell sampler held 2.5 GB; an IQM job's per-shot lists cost as much)
SHOT_BYTES = 256
#: SamplerV2's default shots where the payload sets none (IBM's default)
DEFAULT_SAMPLER_SHOTS = 4096

# cgroup files that mean "no limit"
_NO_LIMIT = {"max", ""}
_HUGE = 1 << 60  # cgroup v1 writes "no limit" as a page-rounded 2**63 - 1


def dense_state_bytes(num_qubits: int, method: str) -> int | None:
    """Bytes of the dense state ``method`` keeps for ``num_qubits``; None when not dense.

    ``statevector`` holds 2**n amplitudes, ``density_matrix`` 4**n. Stabilizer tableaux
    are O(n²) and matrix-product states grow with entanglement, not with the qubit
    count, so they are not estimated here.
    """
    if method == "statevector":
        return AMPLITUDE_BYTES << num_qubits
    if method == "density_matrix":
        return AMPLITUDE_BYTES << (2 * num_qubits)
    return None


# Bytes a Pulser engine holds per amplitude of the register's state: QuTiP keeps the
# state, its ODE solver's work vectors and a sparse Hamiltonian (about n+1 entries a row);
# emu-sv a Krylov basis of a few tens of vectors. Estimates, on the generous side.
_PULSER_BYTES_PER_AMPLITUDE = {"qutip": 16 * 12 + 24, "emu-sv": 16 * 32}


def pulser_state_bytes(engine: str, atoms: int, levels: int) -> int | None:
    """Bytes Pulser ``engine`` needs to emulate ``atoms`` atoms of ``levels`` levels each;
    None for emu-mps, whose memory grows with entanglement, not with the atom count."""
    per_amplitude = _PULSER_BYTES_PER_AMPLITUDE.get(engine)
    if per_amplitude is None:
        return None
    if engine == "qutip":
        per_amplitude += 24 * atoms  # the Hamiltonian's entries
    return per_amplitude * levels**atoms


def sampled_shots(program_id: str, parameters: dict[str, Any]) -> tuple[int, int]:
    """(total shots, circuits) a Qiskit sampler payload samples: each pub's own shots, else
    ``shots``, else ``options.default_shots``, else 4096. (0, 0) for an estimator, which
    keeps no per-shot data. Parameter sweeps multiply this further and are not counted."""
    if program_id != "sampler":
        return 0, 0
    options = parameters.get("options") or {}
    default = next(
        (v for v in (parameters.get("shots"), options.get("default_shots")) if v is not None),
        DEFAULT_SAMPLER_SHOTS,
    )
    pubs = parameters.get("pubs") or []
    total = 0
    for pub in pubs:
        own = pub[2] if isinstance(pub, list) and len(pub) > 2 else None
        total += int(own if own is not None else default)
    return total, len(pubs)


def shots_refusal(shots: int, circuits: int, available: int | None = None) -> str | None:
    """Why ``shots`` sampled over ``circuits`` would not fit this job's memory, or None
    (``available`` as for :func:`refusal`)."""
    return refusal(
        shots * SHOT_BYTES,
        f"sampling {shots:,} shots over {circuits} circuit{'s' if circuits != 1 else ''} "
        "keeps about",
        "Lower the shots, split the circuits over several runs, or ask the job for more memory",
        available,
    )


def refusal(needed: int, what_needs: str, remedy: str, available: int | None = None) -> str | None:
    """Why a simulation of ``needed`` bytes cannot run in this job's memory, or None when
    it fits: ``{what_needs} 17.6 TiB of memory; this job can use 2.1 GiB. {remedy}``.
    ``available``: :func:`available_bytes` if the caller has just read it."""
    if available is None:
        available = available_bytes()
    if fits(needed, available):
        return None
    return (
        f"{what_needs} {human_bytes(needed)} of memory; this job can use "
        f"{human_bytes(available)}. {remedy}"
    )


def available_bytes(proc: Path = Path("/proc"), cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """Memory this process may still allocate: the tightest of its cgroup limits and
    MemAvailable.

    Slurm confines a job with a cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``);
    its usage is subtracted. Every ancestor of the process's cgroup is checked, as a job's
    limit is usually set on the job's cgroup, above the task's own.
    """
    budgets = [_mem_available(proc)]
    for limit, usage in _cgroup_limits(proc, cgroup):
        budgets.append(max(0, limit - usage))
    known = [b for b in budgets if b is not None]
    return min(known) if known else _HUGE


def _mem_available(proc: Path) -> int | None:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_limits(proc: Path, cgroup: Path) -> list[tuple[int, int]]:
    """(limit, usage) of every limited cgroup from this process's up to the root."""
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2, unified
            found += _walk(cgroup, path, "memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # cgroup v1 memory controller
            v1 = ("memory.limit_in_bytes", "memory.usage_in_bytes")
            found += _walk(cgroup / "memory", path, *v1)
    return found


def _walk(mount: Path, path: str, limit_name: str, usage_name: str) -> list[tuple[int, int]]:
    # Inside a container the cgroup namespace may show a path that is not under the
    # mount (the mount is the container's own root): then only the mount's root counts.
    parts = [p for p in path.strip("/").split("/") if p]
    directories = [mount.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    found = []
    for directory in directories:
        limit = _read_int(directory / limit_name)
        if limit is None or limit >= _HUGE:
            continue
        usage = _read_int(directory / usage_name) or 0
        found.append((limit, usage))
    return found


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text in _NO_LIMIT:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def fits(needed: int, available: int) -> bool:
    """Whether ``needed`` bytes fit in ``available`` with the headroom kept free."""
    return needed + HEADROOM_BYTES <= available


def human_bytes(count: float) -> str:
    """``17179869184`` -> ``16.0 GiB``; beyond 1024 PiB a power of two (``2^1029 B``)."""
    if count >= 1 << 60:
        # the estimate of 1,020 atoms or more is an int no float holds (OverflowError)
        return f"2^{int(count).bit_length() - 1} B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
