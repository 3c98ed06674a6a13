"""Alice & Bob: Felis, Alice & Bob's cloud API (:mod:`.felis`, human-readable QIR programs
through our own REST client, :mod:`.felis_client`).

Everything about the ``alice-bob-felis`` type is declared here: its name and prefix, the
settings with qrmi's unprefixed fallbacks, the variables qrmi reads for it and how the
client's failures become our errors. qrmi's names are from qiskit-community/qrmi@b2ed2e5
``src/alice_bob/felis.rs`` (``AliceBobFelis::new``: ``{name}_QRMI_AB_FELIS_API_KEY``, else
``QRMI_AB_FELIS_API_KEY``; the same for ``..._BASE_ENDPOINT``), checked against the strings
of the ``qrmi==0.26.4`` wheel's ``_core.abi3.so`` (which also words the API key check:
"not a base64-encoded 'user:password' API key"). Imports no HTTP library.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from qrmi_tasks.config import ResourceType, Setting, http_url
from qrmi_tasks.errors import (
    AuthenticationError,
    ErrorMap,
    ErrorRule,
    Failure,
    PayloadError,
    ProviderError,
    TransientError,
    class_names,
)
from qrmi_tasks.providers.declaration import (
    ACQUISITION_TOKEN,
    ALIAS,
    IGNORED,
    SAME,
    ProviderDeclaration,
    QrmiVariable,
)
from qrmi_tasks.retry import error_text, is_transient, one_line

_FELIS = ("alice-bob-felis",)
PREFIX = "QRMI_AB_FELIS_"


def api_key(text: str) -> str:
    """API_KEY: Felis keys are HTTP Basic credentials, base64 of ``user:password`` (qrmi's
    ``decode_api_key``); anything else is refused before a request is made."""
    value = text.strip()
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        decoded = ""
    if ":" not in decoded:
        raise ValueError("is not a base64-encoded 'user:password' API key (as Felis issues them)")
    return value


ALICE_BOB_FELIS = ProviderDeclaration(
    provider="qrmi_tasks.providers.alice_bob.felis:FelisProvider",
    types=(ResourceType("alice-bob-felis", PREFIX),),
    settings=(
        # qrmi reads the unprefixed names when the resource's own are unset
        Setting(
            "API_KEY",
            secret=True,
            parse=api_key,
            aliases=(Setting(PREFIX + "API_KEY", shared=True),),
        ),
        Setting(
            "BASE_ENDPOINT",
            parse=http_url,
            aliases=(Setting(PREFIX + "BASE_ENDPOINT", shared=True),),
        ),
    ),
    qrmi_variables=(
        QrmiVariable(
            "{p}API_KEY",
            _FELIS,
            SAME,
            "required: the Felis API key (base64 of `user:password`, sent as HTTP Basic "
            "credentials); a key that does not decode is refused before any request; masked",
        ),
        QrmiVariable(
            "QRMI_AB_FELIS_API_KEY",
            _FELIS,
            ALIAS,
            "of `{name}_QRMI_AB_FELIS_API_KEY`, read when that is unset (process-wide, as in "
            "qrmi); masked",
            shared=True,
        ),
        QrmiVariable(
            "{p}BASE_ENDPOINT",
            _FELIS,
            SAME,
            "required: the Felis API's base URL (e.g. `https://api.alice-bob.com/`); routes "
            "are `{BASE_ENDPOINT}/v1/...`",
        ),
        QrmiVariable(
            "QRMI_AB_FELIS_BASE_ENDPOINT",
            _FELIS,
            ALIAS,
            "of `{name}_QRMI_AB_FELIS_BASE_ENDPOINT`, read when that is unset (process-wide)",
            shared=True,
        ),
        QrmiVariable(
            ACQUISITION_TOKEN,
            _FELIS,
            IGNORED,
            "qrmi's `acquire()` returns a random UUID for this type (Felis has no sessions)",
        ),
    ),
)

DECLARATIONS = (ALICE_BOB_FELIS,)

# -- the Felis client's failures -----------------------------------------------------------
_HTTP_ERROR = "qrmi_tasks.providers.alice_bob.felis_client.FelisHttpError"
_PROTOCOL_ERROR = "qrmi_tasks.providers.alice_bob.felis_client.FelisProtocolError"
_NO_ANSWER = "requests.exceptions.RequestException"


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a Felis error answer (None: no answer at all)."""
    return getattr(exc, "status", None)


def _detail(exc: BaseException) -> str:
    """The service's reason: ``{"error": {"message"}}`` (Felis's own errors) or FastAPI's
    ``{"detail": [...]}`` (its 422s) through :func:`retry.error_text`; the body as text
    when it is not JSON."""
    if _HTTP_ERROR in class_names(exc):
        return error_text(exc.body, f"HTTP {exc.status}")  # type: ignore[attr-defined]
    return one_line(exc, 300)


def _unreachable(failure: Failure) -> str:
    return (
        f"Felis at {failure.fields['endpoint']}: cannot {failure.fields['what']}: "
        f"{type(failure.exc).__name__} (no answer)"
    )


#: our Felis client's failures. The call names ``what`` it was doing, the ``endpoint`` and
#: the ``key`` variable(s) in use; the calls that send the job override 400/422
#: (``overrides={400: PayloadError, 422: PayloadError}``): Felis refuses bad input params
#: with 400, FastAPI a malformed body with 422.
FELIS_ERRORS = ErrorMap(
    (
        ErrorRule(
            _HTTP_ERROR,
            AuthenticationError,
            "authentication failed: Felis at {endpoint} refused the API key while trying to "
            "{what} (HTTP {status}: {detail}); check {key}",
            when=lambda status: status in (401, 403),
        ),
        ErrorRule(
            _HTTP_ERROR,
            TransientError,
            "Felis: cannot {what}: HTTP {status}: {detail}",
            when=is_transient,
        ),
        ErrorRule(
            _HTTP_ERROR,
            ProviderError,
            "Felis: cannot {what}: HTTP {status}: {detail}",
            overridable=True,
        ),
        ErrorRule(_PROTOCOL_ERROR, ProviderError, "Felis: cannot {what}: {detail}"),
        ErrorRule(_NO_ANSWER, TransientError, _unreachable),
    ),
    status=_status,
    detail=_detail,
    messages={
        PayloadError: "Felis refused the job (HTTP {status}): {detail}; fix the payload's "
        "input_params or human_qir and submit again"
    },
)


def job_errors(job: dict[str, Any]) -> str:
    """A job's ``errors[].content`` as one line (``code: message``, as Felis records them)."""
    parts = []
    for error in job.get("errors") or []:
        content = error.get("content") if isinstance(error, dict) else error
        if isinstance(content, dict):
            code, message = content.get("code"), content.get("message")
            text = f"{code}: {message}" if code not in (None, "") and message else message
            parts.append(str(text or content))
        elif content not in (None, ""):
            parts.append(str(content))
    return one_line("; ".join(parts)) or "no error details"
