"""Vendor packages: a resource type is declared by one package, found by the registry; each
vendor's foreign failures become our errors through its table (errors.ErrorMap); both IBM
clients get IAM tokens from one wrapper; the Direct Access client's HTTP session is
injectable (its rules tested here without a server process)."""

from __future__ import annotations

import importlib
import inspect
import io
import textwrap
from pathlib import Path

import pytest
import requests
import requests.adapters
import urllib3
from fakes.qiskit_runtime import API_KEY, FakeQiskitRuntime
from helpers import EXAMPLES

from qrmi_tasks import errors
from qrmi_tasks.errors import (
    AuthenticationError,
    ConfigError,
    ErrorMap,
    ErrorRule,
    PayloadError,
    ProviderError,
    TransientError,
)

BELL = EXAMPLES / "qiskit" / "bell_sampler.json"

_ACME = '''
"""A vendor package written by a test: one type, one secret setting, one qrmi name."""

from qrmi_tasks.config import ResourceType, Setting
from qrmi_tasks.providers.declaration import SAME, ProviderDeclaration, QrmiVariable

ACME = ProviderDeclaration(
    provider="scripted:ScriptedProvider",
    types=(ResourceType("acme-qpu", "QRMI_ACME_"), ResourceType("acme", "QRMI_ACME_OLD_")),
    settings=(Setting("TOKEN", secret=True),),
    qrmi_variables=(QrmiVariable("{p}TOKEN", ("acme-qpu",), SAME, "the API token"),),
)

DECLARATIONS = (ACME,)
'''


@pytest.fixture
def acme(tmp_path, monkeypatch):
    """A directory holding one more vendor package, on the providers' search path."""
    from qrmi_tasks import providers

    package = tmp_path / "vendors" / "acme_vendor"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(_ACME))
    monkeypatch.setattr(providers, "__path__", [*providers.__path__, str(package.parent)])
    return package


def test_a_resource_type_is_declared_by_one_package_only(acme, in_process, monkeypatch):
    import scripted

    from qrmi_tasks.providers import compat, open_provider, provider_class, resource_type

    assert resource_type("acme").prefix == "QRMI_ACME_OLD_"
    assert provider_class("acme-qpu") is scripted.ScriptedProvider
    env = {"QRMI_JOB_QPU_RESOURCES": "qpu1", "QRMI_JOB_QPU_TYPES": "acme-qpu"}
    with pytest.raises(ConfigError, match="missing variable: qpu1_QRMI_ACME_TOKEN"):
        open_provider("qpu1", env)
    typo = {**env, "qpu1_QRMI_ACME_TOKNE": "t"}
    (warning,) = compat.unknown_variable_warnings(
        open_provider("qpu1", {**typo, "qpu1_QRMI_ACME_TOKEN": "t"}).resource
    )
    assert warning.endswith("did you mean qpu1_QRMI_ACME_TOKEN?")
    assert "| `{name}_QRMI_ACME_TOKEN` | `acme-qpu` | same | the API token |" in (
        compat.markdown_table()
    )
    # and the runner runs it, its secret masked, with no other table touched
    script = scripted.Script()
    monkeypatch.setattr(scripted, "current", script)
    in_process.use_env({**env, "qpu1_QRMI_ACME_TOKEN": "acme-secret-0123", "SRUN_DEBUG": "5"})
    done = in_process.run("qpu1", str(BELL))
    assert done.returncode == 0, done.stderr
    assert [call for call, _ in script.calls][:2] == ["submit", "status"]
    assert "acme-secret-0123" not in done.stderr


def test_without_the_package_the_type_is_unknown():
    from qrmi_tasks.providers import resource_type

    with pytest.raises(ConfigError, match="unknown resource type 'acme-qpu'; known types: "):
        resource_type("acme-qpu")


def test_a_type_declared_twice_is_refused(acme):
    from qrmi_tasks.providers import resource_types

    twin = acme.parent / "acme_twin"
    twin.mkdir()
    (twin / "__init__.py").write_text(textwrap.dedent(_ACME))
    with pytest.raises(ConfigError, match="resource type 'acme-qpu' is declared twice"):
        resource_types()


def _error_maps() -> dict[str, ErrorMap]:
    """Every ErrorMap the vendor packages declare, by ``package.NAME``."""
    from qrmi_tasks.providers import declarations

    found = {}
    for module_name in sorted({d.provider.rpartition(".")[0] for d in declarations()}):
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if isinstance(value, ErrorMap):
                found[f"{module_name}.{name}"] = value
    return found


def test_every_error_table_names_classes_that_exist():
    """A typo in a dotted name would make a rule silently never match."""
    tables = _error_maps()
    assert {"qrmi_tasks.providers.ibm.S3_ERRORS", "qrmi_tasks.providers.pasqal.CLOUD_ERRORS"} <= (
        set(tables)
    )
    assert "qrmi_tasks.providers.ibm.RUNTIME_ERRORS" in tables
    for table_name, table in tables.items():
        for rule in table.rules:
            names = (rule.exception,) if isinstance(rule.exception, str) else rule.exception
            for dotted in names:
                module_name, _, class_name = dotted.rpartition(".")
                cls = getattr(importlib.import_module(module_name), class_name, None)
                assert inspect.isclass(cls) and issubclass(cls, BaseException), (
                    f"{table_name}: {dotted}"
                )
                # and the name is the one the class reports (what class_names matches)
                assert f"{cls.__module__}.{cls.__qualname__}" == dotted, (table_name, dotted)


def test_error_map_first_match_wins_statuses_overrides_and_pass_through():
    class Boom(Exception):
        def __init__(self, status):
            super().__init__(f"boom {status}")
            self.status = status

    dotted = f"{Boom.__module__}.{Boom.__qualname__}"
    table = ErrorMap(
        (
            ErrorRule(
                dotted, AuthenticationError, "denied: {what} ({status})", when={401}.__contains__
            ),
            ErrorRule(dotted, None, when={409}.__contains__),  # not ours: propagate
            ErrorRule(dotted, ProviderError, "{what}: HTTP {status}: {detail}", overridable=True),
            ErrorRule("builtins.KeyError", ProviderError, "{kind} in {what}"),
        ),
        status=lambda exc: getattr(exc, "status", None),
        messages={PayloadError: "refused ({status}): {detail}; fix {file}"},
    )
    denied = table.translate(Boom(401), what="submit", file="x")
    assert isinstance(denied, AuthenticationError) and denied.message == "denied: submit (401)"
    assert denied.status == 401
    assert table.translate(Boom(409), what="submit") is None
    plain = table.translate(Boom(500), what="submit")
    assert type(plain) is ProviderError and plain.message == "submit: HTTP 500: boom 500"
    refused = table.translate(
        Boom(422), overrides={422: PayloadError}, what="submit", file="f.json"
    )
    assert isinstance(refused, PayloadError)
    assert refused.message == "refused (422): boom 422; fix f.json"
    assert table.translate(KeyError("k"), what="look up").message == "KeyError in look up"
    assert table.translate(ValueError("other"), what="x") is None
    with (
        pytest.raises(ProviderError, match="cannot: HTTP 503") as caught,
        table.mapped(what="cannot"),
    ):
        raise Boom(503)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(Boom), table.mapped(what="x"):
        raise Boom(409)


def _http_error(status: int, body: bytes, content_type: str = "application/json") -> Exception:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    return requests.HTTPError(f"{status} error", response=response)


def test_pasqal_table_on_real_library_failures():
    from qrmi_tasks.providers.pasqal import CLOUD_ERRORS

    fields = {"what": "create the batch", "credential": "X_AUTH_TOKEN"}
    jsend = b'{"status":"fail","message":"Unprocessable","data":{"description":[{"msg":"bad"}]}}'
    refused = CLOUD_ERRORS.translate(
        _http_error(422, jsend), overrides={422: PayloadError}, **fields
    )
    assert isinstance(refused, PayloadError)
    assert refused.message.startswith("Pasqal Cloud refused the payload (HTTP 422): Unprocess")
    assert isinstance(CLOUD_ERRORS.translate(_http_error(422, jsend), **fields), ProviderError)
    denied = CLOUD_ERRORS.translate(_http_error(401, b""), **fields)
    assert isinstance(denied, AuthenticationError) and "check X_AUTH_TOKEN" in denied.message
    busy = CLOUD_ERRORS.translate(_http_error(503, b"down"), **fields)
    assert isinstance(busy, TransientError)
    assert busy.message == "Pasqal Cloud: cannot create the batch: HTTP 503: down"
    # the SDK's own errors derive from BaseException, not Exception: still translated
    from pasqal_cloud.errors import BatchCreationError

    with pytest.raises(TransientError, match="HTTP 503: busy"), CLOUD_ERRORS.mapped(**fields):
        cause = _http_error(503, b'{"message":"busy"}')
        raise BatchCreationError(cause) from cause
    gone = CLOUD_ERRORS.translate(requests.ConnectionError("refused"), **fields)
    assert isinstance(gone, TransientError) and "ConnectionError: refused" in gone.message


def test_ibm_tables_on_real_library_failures():
    from qrmi_tasks.providers.ibm import RUNTIME_ERRORS, S3_ERRORS
    from qrmi_tasks.providers.ibm.da_storage import S3Error
    from qrmi_tasks.providers.ibm.iam import IamError
    from qrmi_tasks.providers.ibm.rest import ApiError, ProtocolError, Unavailable

    where = {"action": "upload", "bucket": "b", "endpoint": "http://s3"}
    denied = S3Error(403, "AccessDenied", "no")
    assert S3_ERRORS.translate(denied, **where).message == (
        "S3 upload failed (bucket b at http://s3): AccessDenied: no"
    )
    assert S3_ERRORS.translate(S3Error(400, "HTTP 400", ""), **where).message.endswith(": HTTP 400")

    fields = {
        "what": "create the job",
        "endpoint": "http://api",
        "iam": "http://iam",
        "apikey": "K",
        "crn": "C",
    }
    missing = ApiError(404, "Job x not found", "GET", "/jobs/x")
    assert RUNTIME_ERRORS.translate(missing, **fields).message == (
        "Qiskit Runtime: cannot create the job: HTTP 404: Job x not found"
    )
    assert type(RUNTIME_ERRORS.translate(missing, **fields)) is ProviderError
    assert isinstance(
        RUNTIME_ERRORS.translate(missing, overrides={404: ConfigError}, **fields), ConfigError
    )
    forbidden = RUNTIME_ERRORS.translate(ApiError(403, "x", "GET", "/jobs"), **fields)
    assert isinstance(forbidden, AuthenticationError) and "check C" in forbidden.message
    stale = RUNTIME_ERRORS.translate(ApiError(401, "x", "GET", "/jobs"), **fields)
    assert isinstance(stale, AuthenticationError) and "check K and C" in stale.message
    busy = RUNTIME_ERRORS.translate(Unavailable("HTTP 503: busy", 503), **fields)
    assert isinstance(busy, TransientError)
    assert busy.message == "Qiskit Runtime: cannot create the job: HTTP 503"
    cut = ConnectionError("[Errno 111] Connection refused")
    gone = RUNTIME_ERRORS.translate(Unavailable("ConnectionError", cause=cut), **fields)
    assert isinstance(gone, TransientError) and gone.message.endswith(
        "no answer from http://api ([Errno 111] Connection refused)"
    )
    html = RUNTIME_ERRORS.translate(ProtocolError("protocol error: HTML", protocol=True), **fields)
    assert type(html) is ProviderError and html.message.endswith(": protocol error: HTML")
    iam_down = Unavailable("IAM answered HTTP 503", 0, cause=IamError(503, "down"))
    outage = RUNTIME_ERRORS.translate(iam_down, **fields)
    assert isinstance(outage, TransientError) and outage.message.endswith("IAM at http://iam: down")
    refused = RUNTIME_ERRORS.translate(IamError(400, "BXNIM0415E: not found"), **fields)
    assert isinstance(refused, AuthenticationError) and refused.status == 400
    unreachable = RUNTIME_ERRORS.translate(IamError(None, "ConnectionError: x"), **fields)
    assert isinstance(unreachable, TransientError) and unreachable.status == 0


@pytest.fixture(scope="module")
def iam():
    fake = FakeQiskitRuntime().start()
    yield fake
    fake.stop()


def test_one_iam_wrapper_refuses_a_wrong_key_and_masks_tokens(iam):
    from qrmi_tasks.logsetup import SECRETS
    from qrmi_tasks.providers.ibm.iam import IamError, IamTokens

    with pytest.raises(IamError) as caught:
        IamTokens(iam.iam_url, "wrong-key").token()
    assert caught.value.refused and caught.value.status == 400
    assert "BXNIM0415E" in caught.value.detail
    tokens = IamTokens(iam.iam_url, API_KEY)
    first = tokens.token()
    assert first in iam.issued and SECRETS.redact(f"x {first}") != f"x {first}"
    assert tokens.token() == first  # cached until shortly before expiry
    tokens.invalidate()
    assert tokens.token() != first


# the SDK's IAM classes, and IAM's own token request (grant type, operation path)
_IAM_MARKS = ("IAMTokenManager", "IAMAuthenticator", "grant-type:apikey", "/identity/token")


def test_both_ibm_clients_take_tokens_from_the_one_wrapper():
    """The IAM workarounds (timeouts, pacing reset, masking) exist once: both clients
    hold an IamTokens, and no other module of the IBM package talks to IAM."""
    from qrmi_tasks.providers.ibm import direct_access, qiskit_runtime_api

    ibm = Path(direct_access.__file__).parent
    talks_to_iam = sorted(
        path.name
        for path in ibm.glob("*.py")
        if any(mark in path.read_text() for mark in _IAM_MARKS)
    )
    assert talks_to_iam == ["iam.py"]
    assert "IamTokens(" in inspect.getsource(qiskit_runtime_api.RuntimeApi.__init__)
    assert "IamTokens(" in inspect.getsource(direct_access.DirectAccessProvider.__init__)


# -- the Direct Access client on an injected session --------------------------------------
class _Transport(requests.adapters.HTTPAdapter):
    """Answers each request with the next scripted (status, body); records the requests."""

    def __init__(self, answers):
        super().__init__(max_retries=0)
        self.answers = list(answers)
        self.sent = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), status=status, preload_content=False, decode_content=False
        )
        return self.build_response(request, raw)


class _Tokens:
    """Stands in for IamTokens: numbered tokens, and how often one was invalidated."""

    endpoint = "http://iam.invalid"

    def __init__(self):
        self.issued = 0

    def token(self):
        return f"token-{self.issued}"

    def invalidate(self):
        self.issued += 1


def _client(transport, tokens=None):
    from qrmi_tasks.providers.ibm.da_client import DirectAccessClient

    def session():
        made = requests.Session()
        made.mount("https://", transport)
        return made

    return DirectAccessClient(
        "https://da.invalid", "crn:1", tokens or _Tokens(), lambda s: None, None, session
    )


def test_da_client_renews_a_rejected_token_once_on_an_injected_session():
    transport = _Transport([(401, b'{"errors":[{"message":"expired"}]}'), (200, b'{"jobs":[]}')])
    tokens = _Tokens()
    assert _client(transport, tokens).json("GET", "/v1/jobs") == {"jobs": []}
    assert [r.headers["Authorization"] for r in transport.sent] == [
        "Bearer token-0",
        "Bearer token-1",
    ]
    transport = _Transport([(401, b'{"errors":[{"message":"revoked"}]}')])
    with pytest.raises(AuthenticationError, match="rejected the token for GET /v1/jobs: revoked"):
        _client(transport).json("GET", "/v1/jobs")
    assert len(transport.sent) == 2  # renewed once, not again


def test_da_client_protocol_errors_are_not_an_outage_on_an_injected_session():
    transport = _Transport([(200, b"<html>proxy login</html>")])
    with pytest.raises(ProviderError, match="is HTML, not JSON") as caught:
        _client(transport).json("GET", "/v1/jobs")
    assert not isinstance(caught.value, TransientError)  # the runner must not wait it out
    assert len(transport.sent) == 6  # MAX_TRANSIENT_ATTEMPTS
    transport = _Transport([(404, b'{"errors":[{"message":"no such job"}]}')])
    with pytest.raises(ProviderError, match="HTTP 404: no such job"):
        _client(transport).json("GET", "/v1/jobs/x")
    assert len(transport.sent) == 1


def test_errors_module_has_no_vendor_knowledge():
    """The mechanism is generic; which failure becomes what lives in the vendor packages."""
    source = inspect.getsource(errors)
    for vendor_word in ("botocore", "qiskit_ibm_runtime", "pasqal", "requests"):
        assert vendor_word not in source, vendor_word
