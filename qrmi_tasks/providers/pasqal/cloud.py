"""Pasqal Cloud (``pasqal-cloud``) provider: Pulser sequences through the pasqal-cloud SDK.

The resource name is the device type (``FRESNEL``, ``EMU_MPS``, ...). A run creates a
closed batch with one job of ``job_runs`` runs (``wait=False``: the runner polls with its
own deadline-free but cancellable loop), writes the job's full result on DONE and cancels
the batch on a signal. Every batch carries the tag ``qrmi:<request id>``: a requeued
Slurm job finds and attaches to its batch, and a create that the SDK retried after a lost
answer (it retries POSTs on 5xx) cannot leave a second batch running unnoticed — extra
batches with our tag are cancelled. Only batches whose ``tags`` carry our tag are ever
attached to or cancelled, checked here whatever the server's tag filter returned. Every
batch also carries ``qrmi-digest-<16 hex>``, its payload's digest (:mod:`qrmi_tasks.binding`):
a ``--task-id`` reused for another payload is refused instead of attached, and such a
batch is never taken for a duplicate of ours or cancelled.

Status comes from the batch and, once the batch is terminal, from its job: Pasqal marks a
batch DONE when all its jobs reached a terminal status, so a DONE batch may hold an ERROR
job. ``PAUSED`` counts as queued, ``CANCELING`` is waited out, and a status this module
does not know yet is logged and polled again (statuses and shapes: tests/conformance/pasqal).

The SDK's own HTTP retries sleep with ``time.sleep`` (up to ~1 min in total) and its
result download has no timeout: the runner makes every call in a worker thread with an
overall deadline, so a signal is acted on at once, and the cancel goes out through a
fresh client (its own connections). Every request gets connect/read timeouts through
the SDK's ``client_class`` hook.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar

from qrmi_tasks import binding
from qrmi_tasks.answers import answer_hook
from qrmi_tasks.config import Resource
from qrmi_tasks.errors import (
    ConfigError,
    Interrupted,
    PayloadError,
    ProviderError,
    QrmiError,
    TransientError,
)
from qrmi_tasks.payload import PULSER, CheckedPayload
from qrmi_tasks.providers.base import Provider, StatusReport, TaskStatus
from qrmi_tasks.providers.pasqal import CLOUD_ERRORS
from qrmi_tasks.providers.pasqal import auth as pasqal_auth

log = logging.getLogger("qrmi_tasks.pasqal_cloud")
T = TypeVar("T")

# Device types of pasqal_cloud.device.DeviceTypeName (a test compares them with the
# installed SDK); kept here so a bad name is rejected without importing the SDK.
DEVICE_TYPES = ("EMU_FREE", "EMU_TN", "EMU_FRESNEL", "EMU_MPS", "EMU_SV", "FRESNEL", "FRESNEL_CAN1")
# Batch statuses (tests/conformance/pasqal/statuses.json names the sources). A batch that
# is live keeps its QPU slot: PAUSED is the service holding it, counted as queued.
_LIVE = {"PENDING": TaskStatus.QUEUED, "PAUSED": TaskStatus.QUEUED, "RUNNING": TaskStatus.RUNNING}
# On its way to CANCELED: not final yet, so the runner keeps polling.
_CANCELING = "CANCELING"
_BATCH_FINAL = frozenset({"DONE", "ERROR", "TIMED_OUT", "CANCELED"})
# A terminal batch's outcome is its job's (DONE batches may hold ERROR jobs).
_JOB_FINAL = {
    "DONE": TaskStatus.COMPLETED,
    "ERROR": TaskStatus.FAILED,
    "TIMED_OUT": TaskStatus.FAILED,
    "CANCELED": TaskStatus.CANCELLED,
}
# Batches a rerun must not attach to (they will never produce a result).
_DEAD = frozenset({"CANCELED", _CANCELING, "ERROR", "TIMED_OUT"})
TAG_PREFIX = "qrmi:"
# Per socket operation; the SDK's own is 30 s for API calls and none for result downloads.
TIMEOUTS = (10.0, 30.0)


def _sdk() -> Any:
    from qrmi_tasks.quiet import quiet_import_warnings

    with quiet_import_warnings():  # pasqal_cloud turns DeprecationWarnings on globally
        import pasqal_cloud
        from pasqal_cloud import authentication, endpoints, errors
        from pasqal_cloud.device import DeviceTypeName
        from pasqal_cloud.pasqal_cloud_client import PasqalCloudClient
        from pasqal_cloud.utils import filters
    del pasqal_cloud
    return authentication, endpoints, errors, DeviceTypeName, PasqalCloudClient, filters


class PasqalCloudProvider(Provider):
    """Run Pulser sequences on a Pasqal Cloud device or emulator."""

    payload_kinds: ClassVar[frozenset[str]] = frozenset({PULSER})
    can_reattach: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None
        self._sdk: Any = None
        self._batches: dict[str, Any] = {}
        self._token_provider: Any = None
        self._seen: dict[str, str] = {}  # last raw status logged, per batch or job
        self._reported: TaskStatus = TaskStatus.QUEUED  # last status handed to the runner

    @classmethod
    def check_settings(cls, resource: Resource, settings: dict[str, Any]) -> None:
        """The resource name is a device type, and one credential is set."""
        if resource.name not in DEVICE_TYPES:
            raise ConfigError(
                f"'{resource.name}' is not a Pasqal Cloud device type; the resource name must "
                f"be one of: {', '.join(DEVICE_TYPES)}"
            )
        if pasqal_auth.credential_kind(settings) is None:
            prefix = resource.variable_prefix
            # qrmi would also look in ~/.pasqal/config; say that we do not, if one is there
            home_file = Path.home() / ".pasqal" / "config"
            hint = (
                f" ({home_file}, which qrmi reads, is not read here)" if home_file.is_file() else ""
            )
            raise ConfigError(
                f"resource '{resource.name}' (pasqal-cloud) has no credential: set "
                f"{prefix}AUTH_TOKEN, or PASQAL_USERNAME and PASQAL_PASSWORD, or "
                f"{prefix}CLIENT_ID and {prefix}CLIENT_SECRET{hint}"
            )

    @property
    def tag(self) -> str:
        return TAG_PREFIX + self.context.request_id

    @property
    def digest_tag(self) -> str:
        """The tag that ties a batch to this run's payload."""
        return binding.label(self.context.payload_digest)

    def _digest_of(self, batch: Any) -> str | None:
        return binding.digest_in(getattr(batch, "tags", None) or [], ignore=self.tag)

    def _same_payload(self, batch: Any) -> bool:
        """Whether a batch of our tag was made for this run's payload (else another run
        reused the task id for another payload: not ours to take or cancel)."""
        return binding.matches(self._digest_of(batch), self.context.payload_digest)

    def client(self) -> Any:
        """The SDK client (created on first use: importing the SDK costs about a second)."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> Any:
        """An SDK client with connections of its own (the cancel path uses a fresh one).

        Clients share one token provider, so a login is not repeated for the cancel.
        """
        if self._sdk is None:
            self._sdk = _sdk()
        authentication, endpoints, _, _, client_class, _ = self._sdk
        core, account = pasqal_auth.api_urls(self.settings)
        urls = endpoints.Endpoints(core=core, account=account)
        if self._token_provider is None:
            self._token_provider = pasqal_auth.token_provider(
                authentication, endpoints, self.settings
            )
        from qrmi_tasks.quiet import quiet_import_warnings

        with quiet_import_warnings():  # the SDK warns about its own support window
            return client_class(
                token_provider=self._token_provider,
                endpoints=urls,
                project_id=self.settings["PROJECT_ID"],
                client_class=_timed_http_client(self._verify_tls()),
            )

    def _verify_tls(self) -> bool:
        """Whether TLS certificates are checked: yes unless PASQAL_SKIP_SSL_VERIFY is true."""
        if not self.settings.get("PASQAL_SKIP_SSL_VERIFY"):
            return True
        log.warning("PASQAL_SKIP_SSL_VERIFY is set: TLS certificates are NOT checked")
        return False

    def _credential_hint(self) -> str:
        """The variables of the credential in use, for an authentication error."""
        prefix = self.resource.variable_prefix
        return {
            "token": f"{prefix}AUTH_TOKEN",
            "password": "PASQAL_USERNAME / PASQAL_PASSWORD",
            "client": f"{prefix}CLIENT_ID / {prefix}CLIENT_SECRET",
        }.get(pasqal_auth.credential_kind(self.settings) or "", f"{prefix}AUTH_TOKEN")

    def _call(
        self,
        what: str,
        action: Callable[[], T],
        refused_payload: frozenset[int] = frozenset(),
    ) -> T:
        """Run an SDK call; its failures become one-line errors (the package's CLOUD_ERRORS).

        A status in ``refused_payload`` means the service refused what we sent: a
        :class:`PayloadError` with the service's reason.
        """
        overrides = dict.fromkeys(refused_payload, PayloadError)
        with CLOUD_ERRORS.mapped(
            overrides=overrides, what=what, credential=self._credential_hint()
        ):
            return action()

    def _ours(self, batches: list[Any]) -> list[Any]:
        """The batches that carry our tag: never trust the server's filter with another's."""
        mine = []
        for batch in batches:
            if self.tag in (getattr(batch, "tags", None) or []):
                mine.append(batch)
            else:
                log.warning(
                    "ignoring batch %s: listed for tag %s but it does not carry it (tags %s)",
                    batch.id,
                    self.tag,
                    getattr(batch, "tags", None),
                )
        return mine

    def _our_batches(self, client: Any = None) -> list[Any]:
        filters = self._sdk[5]
        client = client or self.client()
        page = self._call(
            "list batches", lambda: client.get_batches(filters=filters.BatchFilters(tag=self.tag))
        )
        return self._ours(list(page.results))

    def submit(self, payload: CheckedPayload) -> str:
        client = self.client()
        if self.context.deterministic_id:
            for batch in self._our_batches():
                if str(batch.status) not in _DEAD:
                    log.info(
                        "batch %s (tag %s) already exists, status %s",
                        batch.id,
                        self.tag,
                        batch.status,
                    )
                    self._batches[batch.id] = batch
                    self.attached = True
                    self.attached_digest = self._digest_of(batch)  # the runner checks it
                    return batch.id
        device = self._sdk[3](self.resource.name)
        if self.context.interrupted():
            raise Interrupted  # no batch exists yet
        try:
            batch = self._call(
                "create the batch",
                lambda: client.create_batch(
                    serialized_sequence=payload.sequence_json,
                    jobs=[{"runs": payload.job_runs}],
                    open=False,
                    device_type=device,
                    wait=False,
                    tags=[self.tag, self.digest_tag],
                ),
                refused_payload=frozenset({422}),
            )
        except Interrupted:
            raise
        except TransientError as exc:
            batch = self._created_anyway(exc)
        except QrmiError:
            raise  # refused (4xx): nothing was created
        except Exception as exc:  # e.g. an answer the SDK cannot parse: it may exist
            batch = self._created_anyway(exc)
        log.info("batch %s created on %s (tag %s)", batch.id, self.resource.name, self.tag)
        if self.tag not in (batch.tags or []):
            log.warning(
                "batch %s does not carry its tag %s (tags %s): a rerun cannot find it",
                batch.id,
                self.tag,
                batch.tags,
            )
        self._batches[batch.id] = batch
        if self.context.interrupted():
            raise Interrupted(batch.id)  # the runner cancels it
        try:
            self._cancel_duplicates(batch.id)
        except Interrupted:
            raise Interrupted(batch.id) from None
        except QrmiError as exc:
            self._give_up_on(batch.id, "the check for duplicate batches", exc)
        except Exception as exc:  # a bug or an SDK surprise: name the batch, still cancel it
            log.error("batch %s was created, then checking for duplicates failed", batch.id)
            self._give_up_on(batch.id, "the check for duplicate batches", exc, reraise=True)
        return batch.id

    def _created_anyway(self, exc: Exception) -> Any:
        """The create got no usable answer, but it may have reached the service.

        A batch carrying our tag is then ours and running: use it rather than leave it
        unattended. Re-raises ``exc`` when there is none.
        """
        reason = exc.message if isinstance(exc, QrmiError) else f"{type(exc).__name__}: {exc}"
        try:
            found = [
                b
                for b in self._our_batches()
                if str(b.status) not in _DEAD and self._same_payload(b)
            ]
        except QrmiError as list_exc:
            raise ProviderError(
                f"{reason}; whether a batch was created anyway is unknown ({list_exc.message}): "
                f"look for tag {self.tag} in the Pasqal Cloud portal"
            ) from None
        if not found:
            raise exc
        log.warning(
            "creating the batch failed (%s) but batch %s carries our tag: the create reached "
            "the service; using that batch",
            reason,
            found[0].id,
        )
        return found[0]

    def _give_up_on(self, batch_id: str, step: str, exc: Exception, reraise: bool = False) -> None:
        """``step`` after the create failed: cancel our batch, and say so naming it.

        Nobody would wait for the batch: left running, it would spend the project's QPU
        time for nothing.
        """
        try:
            self._call("cancel the batch", lambda: self._new_client().cancel_batch(batch_id))
            outcome = "it was cancelled"
        except QrmiError as cancel_exc:
            outcome = (
                f"cancelling it failed too ({cancel_exc.message}); cancel it in the Pasqal "
                "Cloud portal"
            )
        if reraise:
            log.error("batch %s: %s", batch_id, outcome)
            raise exc
        reason = exc.message if isinstance(exc, QrmiError) else str(exc)
        raise ProviderError(
            f"Pasqal Cloud: batch {batch_id} was created but {step} failed ({reason}); {outcome}"
        ) from None

    def _cancel_duplicates(self, keep: str) -> None:
        """A create retried after a lost answer may have made two batches: keep one.

        A duplicate whose cancel fails is named and left (ours still delivers the result).
        """
        client = self.client()
        for other in self._our_batches():
            status = str(other.status)
            if other.id == keep or status in _BATCH_FINAL or status == _CANCELING:
                continue
            if not self._same_payload(other):  # another run's, under the same task id
                continue
            log.warning("cancelling duplicate batch %s (same tag as %s)", other.id, keep)
            try:
                self._call("cancel a duplicate batch", lambda o=other: client.cancel_batch(o.id))
            except QrmiError as exc:
                log.error(
                    "duplicate batch %s could not be cancelled (%s); cancel it in the Pasqal "
                    "Cloud portal",
                    other.id,
                    exc.message,
                )

    def _batch(self, task_id: str) -> Any:
        client = self.client()
        batch = self._call("get the batch", lambda: client.get_batch(task_id))
        self._batches[task_id] = batch
        return batch

    def _job(self, task_id: str, batch: Any = None) -> Any:
        batch = batch or self._batches.get(task_id) or self._batch(task_id)
        jobs = self._call("list the batch's jobs", lambda: batch.ordered_jobs)
        if not jobs:
            raise ProviderError(f"Pasqal Cloud: batch {task_id} has no job")
        return jobs[0]

    def _note(self, what: str, ident: str, status: str, known: bool) -> None:
        """Log a status worth explaining, once per change."""
        if self._seen.get(ident) == status:
            return
        self._seen[ident] = status
        if not known:
            log.warning(
                "%s %s: status %s is unknown to this runner; polling again", what, ident, status
            )
        elif status == "PAUSED":
            log.info("%s %s: PAUSED by the service; waiting (counted as queued)", what, ident)
        elif status == _CANCELING:
            log.info("%s %s: CANCELING on the service; waiting for CANCELED", what, ident)

    def status(self, task_id: str) -> StatusReport:
        report = self._status(task_id)
        self._reported = report.status
        return report

    def _status(self, task_id: str) -> StatusReport:
        batch = self._batch(task_id)
        raw = str(batch.status)
        live = _LIVE.get(raw)
        self._note(
            "batch", task_id, raw, live is not None or raw in _BATCH_FINAL or raw == _CANCELING
        )
        if live is not None:
            return StatusReport(live)
        if raw not in _BATCH_FINAL:  # CANCELING, or new: nothing changed for the runner yet
            return StatusReport(self._reported)
        job = self._job(task_id, batch)
        job_raw = str(job.status)
        errors = "; ".join(map(str, job.errors or [])) or "no error details"
        outcome = _JOB_FINAL.get(job_raw)
        if raw == "DONE":
            if outcome is None:
                # The batch is terminal only once its jobs are: the job's update is late
                known = job_raw in _LIVE or job_raw == _CANCELING
                self._note("job", job.id, job_raw, known)
                return StatusReport(self._reported)
            if outcome is TaskStatus.COMPLETED:
                return StatusReport(outcome)
            return StatusReport(outcome, f"batch DONE, job {job.id} {job_raw}: {errors}")
        if raw == "CANCELED":
            return StatusReport(TaskStatus.CANCELLED, f"batch CANCELED, job {job.id} {job_raw}")
        return StatusReport(TaskStatus.FAILED, f"batch {raw}, job {job.id} {job_raw}: {errors}")

    def fetch_result(self, task_id: str, into: BinaryIO) -> None:
        job = self._job(task_id)
        result = self._call("download the job result", lambda: job.full_result)
        if result is None:
            raise ProviderError(f"Pasqal Cloud: job {job.id} has no result")
        into.write(json.dumps(dict(result)).encode())

    def device_specs(self) -> dict[str, str]:
        """The device specs the service lists, ``{device type: Pulser device abstract repr
        (JSON text)}`` (``GET /api/v1/devices/specs``, as pulser-pasqal's PasqalCloud reads
        them; tests/conformance/pasqal/device_specs.json)."""
        client = self.client()
        errors = self._sdk[2]

        def fetch() -> Any:
            try:
                return client.get_device_specs_dict()
            except errors.DeviceSpecsFetchingError as exc:
                # a BaseException wrapping the HTTPError: the error table reads the latter
                raise exc.__cause__ or ProviderError(f"Pasqal Cloud: {exc}") from None

        specs = self._call("get the device specs", fetch)
        return {str(kind): str(text) for kind, text in dict(specs).items()}

    def cancel(self, task_id: str) -> None:
        client = self._new_client()  # the old one may be stuck in a read or a retry sleep
        self._call("cancel the batch", lambda: client.cancel_batch(task_id))

    def cancel_submission(self) -> list[str]:
        client = self._new_client()
        cancelled = []
        for batch in self._our_batches(client):
            status = str(batch.status)
            if status in _BATCH_FINAL or status == _CANCELING or not self._same_payload(batch):
                continue
            self._call("cancel the batch", lambda b=batch: client.cancel_batch(b.id))
            cancelled.append(batch.id)
        return cancelled


def _timed_http_client(verify: bool) -> Any:
    """The SDK's HTTPClient with connect/read timeouts on every request (results too).

    ``verify`` replaces the SDK's reading of ``PASQAL_SKIP_SSL_VERIFY`` (any non-empty
    value, ``0`` included, turns its checks off) on every request its session sends.
    """
    import requests.adapters
    from pasqal_cloud.http_client import HTTPClient

    class TimeoutAdapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, timeout: Any = None, **kwargs: Any) -> Any:
            # here, not only on the session: requests swaps a session's verify=False for
            # REQUESTS_CA_BUNDLE when that is set, and the SDK passes verify=False itself
            if not verify:
                kwargs["verify"] = False
            elif kwargs.get("verify") is False:
                kwargs["verify"] = True
            return super().send(request, timeout=timeout or TIMEOUTS, **kwargs)

    class TimedHTTPClient(HTTPClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.session.verify = verify
            # the SDK reads every API answer whole: capped; a result (its presigned link,
            # on another host) is not an API answer and is limited by the runner instead
            apis = (self.endpoints.core, self.endpoints.account)
            self.session.hooks["response"].append(
                answer_hook(uncapped=lambda url: not url.startswith(apis))
            )
            adapter = TimeoutAdapter()
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    return TimedHTTPClient
