"""Requeue-safe request ids: stable across a requeue, distinct for concurrent runs."""

from __future__ import annotations

from helpers import EXAMPLES

from qrmi_tasks.payload import load_payload
from qrmi_tasks.runner import request_id_for

BELL = load_payload(EXAMPLES / "qiskit" / "bell_sampler.json")
STEP = {"SLURM_CLUSTER_NAME": "c", "SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0"}


def _id(**env: str) -> str:
    request_id, deterministic = request_id_for("ibm_x", BELL, {**STEP, **env})
    assert deterministic
    return request_id


def test_same_task_after_a_requeue_gets_the_same_id():
    assert _id() == _id(SLURM_RESTART_COUNT="1") == _id(SLURM_RESTART_COUNT="2")


def test_each_rank_array_task_and_step_gets_its_own_id():
    ids = {
        _id(),
        _id(SLURM_PROCID="1"),
        _id(SLURM_PROCID="2"),
        _id(SLURM_STEP_ID="1"),
        _id(SLURM_ARRAY_JOB_ID="40", SLURM_ARRAY_TASK_ID="3"),
        _id(SLURM_ARRAY_JOB_ID="40", SLURM_ARRAY_TASK_ID="4"),
        _id(SLURM_JOB_ID="43"),
    }
    assert len(ids) == 7


def test_outside_slurm_ids_are_random():
    first, deterministic = request_id_for("ibm_x", BELL, {})
    second, _ = request_id_for("ibm_x", BELL, {})
    assert not deterministic and first != second
