"""A task id names one payload: a rerun under the same id attaches only to a task of the
same payload, and anything else is refused before the task is taken over.

A request id is either derived from the payload (under Slurm: a UUID5 over, among others,
the payload's SHA-256, see :func:`qrmi_tasks.runner.request_id_for`) or the user's
``--task-id`` (``qrmi_tasks.run(task_id=...)``), which two different payloads can share.
So every task we submit carries the digest of its payload where the service keeps
something of ours (a tag, the name of its input object, our journal entry), and the task a
rerun finds is compared with the payload at hand here, in one rule for every provider:
:func:`check`. Providers only report what they found (``Provider.attached_digest``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qrmi_tasks.errors import UsageError

#: hex digits of the SHA-256 a service label carries: 64 bits tell payloads apart (an
#: accidental match is a 1 in 2^64 chance) and fit the shortest tag limits
DIGEST_CHARS = 16
#: the label that carries a payload's digest where the service keeps labels (job tags)
LABEL_PREFIX = "qrmi-digest-"
_LABEL = re.compile(rf"{re.escape(LABEL_PREFIX)}([0-9a-f]{{{DIGEST_CHARS}}})")


def short(digest: str) -> str:
    """The part of a payload's SHA-256 (hex) that labels carry."""
    return digest[:DIGEST_CHARS]


def label(digest: str) -> str:
    """The label (``qrmi-digest-<16 hex>``) that ties a task to the payload of ``digest``."""
    return LABEL_PREFIX + short(digest)


def digest_in(labels: Iterable[object], ignore: str = "") -> str | None:
    """The digest that ``labels`` (a task's tags) carry, or None: none, or several.

    ``ignore`` is the task id's own label, which a task id such as
    ``digest-0123456789abcdef`` could make look like a digest label.
    """
    found = {m.group(1) for t in labels if t != ignore and (m := _LABEL.fullmatch(str(t)))}
    return found.pop() if len(found) == 1 else None


def matches(found: str | None, digest: str) -> bool:
    """Whether ``found`` (a digest or its labelled prefix) is that of the payload ``digest``."""
    return found is not None and len(found) >= DIGEST_CHARS and digest.startswith(found)


def refusal(task_id: str, task: str, where: str, reason: str) -> UsageError:
    """The one-line refusal (exit 2) of a task id that names another payload's task."""
    return UsageError(
        f"task id {task_id} already names task {task} on {where}, {reason}; it was not "
        "attached: choose another --task-id, or rerun the same payload"
    )


def check(
    task_id: str, task: str, where: str, digest: str, found: str | None, id_from_payload: bool
) -> None:
    """Refuse to attach to ``task`` unless it ran the payload of ``digest``.

    ``found`` is the digest the task carries (None: it carries none, e.g. an older
    version submitted it). Such a task is refused too, unless the task id was derived from
    this payload's digest (``id_from_payload``: a Slurm requeue), which proves it: whether
    a user-chosen id ran this payload cannot be told, and attaching would hand over
    another payload's result.
    """
    if matches(found, digest):
        return
    if found is None:
        if id_from_payload:
            return
        reason = "which carries no payload digest (submitted by an older version?) to check"
    else:
        reason = f"submitted for another payload (sha256 {found[:12]}, this one {digest[:12]})"
    raise refusal(task_id, task, where, reason)
