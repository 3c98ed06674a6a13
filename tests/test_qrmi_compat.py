"""Drop-in for qrmi sites (issue 12): qrmi's variable names, the spank_qrmi plugin's
acquisition token, and qrmi_config.json files written for qrmi, against the fakes.

The interop test drives the real ``qrmi`` package (a test-only dependency, ``qrmi==0.26.4``)
the way the Slurm plugin does: ``QuantumResource.acquire()`` before the job step, the
token in the step's environment, ``release(token)`` after it; those plugin steps are
processes, as at a site.

The runner's command runs in this process (the ``in_process`` fixture: ``cli.main`` minus
its exit, in the environment the test gives) against the fakes, real HTTP servers; none
of these tests is about signals, Slurm or the process itself, which test_signals.py and
test_slurm.py run as processes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from fakes import direct_access as da_fake
from fakes import pasqal_cloud as pasqal_fake
from fakes.qiskit_runtime import API_KEY, SERVICE_CRN, FakeQiskitRuntime, runner_env
from helpers import EXAMPLES, ROOT, clean_env
from payloads import write_pulser_payload

from qrmi_tasks.config import Resource, Setting
from qrmi_tasks.errors import ConfigError
from qrmi_tasks.providers import compat, declaration, resolve_resource, resource_type

pytestmark = pytest.mark.timeout(180)
BACKEND = "ibm_fake"
SAMPLER = EXAMPLES / "qiskit" / "bell_sampler.json"
SESSIONS = r"/api/v1/sessions.*"


@pytest.fixture(scope="module")
def pulser_payload(tmp_path_factory) -> str:
    return str(write_pulser_payload(tmp_path_factory.mktemp("pulser") / "seq.json", runs=50))


@pytest.fixture
def runtime():
    server = FakeQiskitRuntime(backends=(BACKEND,), job_seconds=0.4).start()
    yield server
    server.stop()


def _session_calls(fake: FakeQiskitRuntime) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in fake.requests if re.fullmatch(SESSIONS, r["path"])]


def _open_session(fake: FakeQiskitRuntime, session_id: str) -> None:
    fake.sessions[session_id] = {
        "id": session_id,
        "mode": "dedicated",
        "backend_name": BACKEND,
        "accepting_jobs": True,
        "state": "open",
    }


# -- Qiskit Runtime: the plugin's acquisition token --------------------------------------
@pytest.mark.parametrize(
    ("rtype", "prefix"),
    [("qiskit-runtime-service", "QRMI_IBM_QRS_"), ("ibm-quantum-compute-service", "QRMI_IBM_QCS_")],
)
def test_acquisition_token_is_the_session_and_is_left_open(in_process, runtime, rtype, prefix):
    _open_session(runtime, "s-plugin")
    # SESSION_MODE as a qrmi site sets it for the plugin's acquire(): the token still wins
    env = clean_env(
        **runner_env(BACKEND, runtime, prefix=prefix, rtype=rtype, SESSION_MODE="batch"),
        **{f"{BACKEND}_QRMI_JOB_ACQUISITION_TOKEN": "s-plugin"},
    )
    in_process.use_env(env)
    proc = in_process.run(BACKEND, str(SAMPLER))
    assert proc.returncode == 0, proc.stderr
    assert [body["session_id"] for body in runtime.created] == ["s-plugin"]
    assert _session_calls(runtime) == []  # neither opened nor closed a session
    assert runtime.sessions["s-plugin"]["accepting_jobs"] is True
    assert f"{BACKEND}_QRMI_JOB_ACQUISITION_TOKEN" in proc.stderr  # the log names the source
    assert "is not read" not in proc.stderr  # the token is a known variable


def test_session_id_wins_over_the_acquisition_token(in_process, runtime):
    _open_session(runtime, "s-given")
    _open_session(runtime, "s-plugin")
    env = clean_env(
        **runner_env(BACKEND, runtime, SESSION_ID="s-given"),
        **{f"{BACKEND}_QRMI_JOB_ACQUISITION_TOKEN": "s-plugin"},
    )
    in_process.use_env(env)
    proc = in_process.run(BACKEND, str(SAMPLER))
    assert proc.returncode == 0, proc.stderr
    assert [body["session_id"] for body in runtime.created] == ["s-given"]
    assert _session_calls(runtime) == []


def test_job_timeout_fallback_and_session_max_ttl(in_process, runtime):
    # qrmi: TIMEOUT_SECONDS falls back to {name}_QRMI_JOB_TIMEOUT_SECONDS; SESSION_MAX_TTL
    # is the max_ttl of a session we open
    env = clean_env(
        **runner_env(BACKEND, runtime, SESSION_MODE="dedicated", SESSION_MAX_TTL="900"),
        **{f"{BACKEND}_QRMI_JOB_TIMEOUT_SECONDS": "300"},
    )
    in_process.use_env(env)
    proc = in_process.run(BACKEND, str(SAMPLER))
    assert proc.returncode == 0, proc.stderr
    (session,) = runtime.sessions.values()
    assert session["max_ttl"] == 900 and session["mode"] == "dedicated"
    assert runtime.created[0]["cost"] == 300
    assert runtime.created[0]["session_id"] == session["id"]
    assert session["accepting_jobs"] is False  # ours, so closed after the job

    # the type's own TIMEOUT_SECONDS wins over the generic one
    env[f"{BACKEND}_QRMI_IBM_QRS_TIMEOUT_SECONDS"] = "120"
    in_process.use_env(env)
    proc = in_process.run(BACKEND, str(SAMPLER))
    assert proc.returncode == 0, proc.stderr
    assert runtime.created[1]["cost"] == 120


# -- the real qrmi package, as the spank_qrmi plugin drives it ---------------------------
_QRMI_STEP = """
import sys
import qrmi

resource = qrmi.QuantumResource(sys.argv[1], qrmi.ResourceType.IBMQuantumComputeService)
if sys.argv[2] == "acquire":
    print(resource.acquire())
else:
    resource.release(sys.argv[3])
"""


def _qrmi(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", _QRMI_STEP, BACKEND, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_qrmi_acquire_runner_job_in_session_qrmi_release(in_process, runtime):
    pytest.importorskip("qrmi", reason="qrmi==0.26.4 is a test dependency (pip install '.[dev]')")
    env = clean_env(
        **runner_env(BACKEND, runtime, prefix="QRMI_IBM_QCS_", rtype="ibm-quantum-compute-service")
    )
    # job prolog: the plugin acquires the resource (qrmi opens a dedicated session)
    token = _qrmi(env, "acquire")
    assert token in runtime.sessions and runtime.sessions[token]["accepting_jobs"] is True
    opened = _session_calls(runtime)
    assert opened == [("POST", "/api/v1/sessions")]

    # job step: our runner with the token the plugin exports
    step_env = dict(env, **{f"{BACKEND}_QRMI_JOB_ACQUISITION_TOKEN": token})
    in_process.use_env(step_env)
    proc = in_process.run(BACKEND, str(SAMPLER))
    assert proc.returncode == 0, proc.stderr
    assert [body["session_id"] for body in runtime.created] == [token]
    assert _session_calls(runtime) == opened  # the runner touched no session
    assert runtime.sessions[token]["accepting_jobs"] is True

    # job epilog: the plugin releases it; no job is pending, so qrmi closes it gently
    _qrmi(env, "release", token)
    assert runtime.sessions[token]["accepting_jobs"] is False
    assert _session_calls(runtime)[1:] == [("PATCH", f"/api/v1/sessions/{token}")]
    # qrmi asked which jobs of the session were still pending (ours had completed)
    (listing,) = runtime.calls("GET", "/api/v1/jobs")
    assert listing["query"]["session_id"] == [token] and listing["query"]["pending"] == ["true"]


# -- qrmi_config.json files written for qrmi ---------------------------------------------
def _qrmi_config(tmp_path: Path, name: str, rtype: str, environment: dict[str, str]) -> Path:
    # the plugin's format (qrmi@b2ed2e5 src/models/config.rs ResourceDef: name, type,
    # environment, is_dynamic)
    path = tmp_path / "qrmi_config.json"
    resource = {"name": name, "type": rtype, "is_dynamic": False, "environment": environment}
    path.write_text(json.dumps({"resources": [resource]}, indent=2))
    return path


def _config_env(name: str, rtype: str) -> dict[str, str]:
    # what the plugin exports for --qpu=NAME besides the resource's variables
    return clean_env(SLURM_JOB_QPU_RESOURCES=name, SLURM_JOB_QPU_TYPES=rtype)


def test_qrmi_config_ibm_quantum_system(in_process, tmp_path):
    fake = da_fake.FakeDirectAccess(("fake_heron",), job_seconds=0.3).start()
    try:
        with da_fake.moto_s3() as s3_url:
            config = _qrmi_config(
                tmp_path,
                "fake_heron",
                "ibm-quantum-system",
                {
                    "QRMI_IBM_QS_ENDPOINT": fake.url,
                    "QRMI_IBM_QS_IAM_ENDPOINT": fake.url,
                    "QRMI_IBM_QS_IAM_APIKEY": da_fake.API_KEY,
                    "QRMI_IBM_QS_SERVICE_CRN": da_fake.SERVICE_CRN,
                    "QRMI_IBM_QS_AWS_ACCESS_KEY_ID": da_fake.AWS_KEY_ID,
                    "QRMI_IBM_QS_AWS_SECRET_ACCESS_KEY": da_fake.AWS_SECRET,
                    "QRMI_IBM_QS_S3_ENDPOINT": s3_url,
                    "QRMI_IBM_QS_S3_ENDPOINT_FOR_QSAPI": s3_url,
                    "QRMI_IBM_QS_S3_BUCKET": da_fake.BUCKET,
                    "QRMI_IBM_QS_S3_REGION": da_fake.REGION,
                    "QRMI_JOB_TIMEOUT_SECONDS": "600",
                },
            )
            env = _config_env("fake_heron", "ibm-quantum-system")
            env["fake_heron_QRMI_JOB_ACQUISITION_TOKEN"] = "8a5b0c1e-dummy-uuid"  # accepted
            in_process.use_env(env)
            proc = in_process.run("fake_heron", str(SAMPLER), "--config", str(config))
    finally:
        fake.stop()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)  # the result document
    assert len(fake.calls("POST", "/v1/jobs")) == 1 and len(fake.deleted) == 1
    assert "WARNING" not in proc.stderr.upper(), proc.stderr


def test_qrmi_config_ibm_quantum_compute_service(in_process, runtime, tmp_path):
    config = _qrmi_config(
        tmp_path,
        BACKEND,
        "ibm-quantum-compute-service",
        {
            "QRMI_IBM_QCS_ENDPOINT": runtime.api_url,
            "QRMI_IBM_QCS_IAM_ENDPOINT": runtime.iam_url,
            "QRMI_IBM_QCS_IAM_APIKEY": API_KEY,
            "QRMI_IBM_QCS_SERVICE_CRN": SERVICE_CRN,
            "QRMI_IBM_QCS_SESSION_MODE": "batch",
            "QRMI_IBM_QCS_SESSION_MAX_TTL": "3600",
            "QRMI_JOB_TIMEOUT_SECONDS": "240",
        },
    )
    env = _config_env(BACKEND, "ibm-quantum-compute-service")
    in_process.use_env(env)
    proc = in_process.run(BACKEND, str(SAMPLER), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    (session,) = runtime.sessions.values()  # no plugin token: the runner's own session
    assert (session["mode"], session["max_ttl"], session["accepting_jobs"]) == (
        "batch",
        3600,
        False,
    )
    assert runtime.created[0]["cost"] == 240
    assert "WARNING" not in proc.stderr.upper(), proc.stderr


@pytest.fixture
def pasqal():
    server = pasqal_fake.FakePasqalCloud(job_seconds=0.2).start()
    yield server
    server.stop()


def test_qrmi_config_pasqal_cloud_service_account(in_process, pasqal, pulser_payload, tmp_path):
    config = _qrmi_config(
        tmp_path,
        "EMU_FREE",
        "pasqal-cloud",
        {
            "QRMI_PASQAL_CLOUD_PROJECT_ID": pasqal_fake.PROJECT_ID,
            "QRMI_PASQAL_CLOUD_CLIENT_ID": pasqal_fake.CLIENT_ID,
            "QRMI_PASQAL_CLOUD_CLIENT_SECRET": pasqal_fake.CLIENT_SECRET,
            # no scheme, as qrmi's default is written: qrmi adds https://, so a loopback
            # test gives the scheme
            "QRMI_PASQAL_CLOUD_AUTH_ENDPOINT": pasqal.url + pasqal_fake.OAUTH,
            "QRMI_PASQAL_CLOUD_BASE_URL": pasqal.url,
        },
    )
    env = _config_env("EMU_FREE", "pasqal-cloud")
    env["EMU_FREE_QRMI_JOB_ACQUISITION_TOKEN"] = "0d9e-dummy-uuid"  # qrmi's dummy: accepted
    in_process.use_env(env)
    proc = in_process.run("EMU_FREE", pulser_payload, "--config", str(config), "-vv")
    assert proc.returncode == 0, proc.stderr
    assert sum(json.loads(proc.stdout)["counter"].values()) == pasqal.created[0]["jobs"][0]["runs"]
    assert pasqal.logins == ["client_credentials"]
    # BASE_URL gives the service's own core path
    assert pasqal.calls("POST", pasqal_fake.SERVICE_CORE + "/api/v1/batches")
    assert pasqal_fake.CLIENT_SECRET not in proc.stderr
    assert "pasqal-issued-" not in proc.stderr  # the issued token is masked too
    assert "is not read" not in proc.stderr


# -- Pasqal Cloud logins ---------------------------------------------------------------
def _pasqal_env(fake, **extra: str) -> dict[str, str]:
    env = pasqal_fake.runner_env("EMU_FREE", fake.core_url)
    del env["EMU_FREE_QRMI_PASQAL_CLOUD_AUTH_TOKEN"]
    env["EMU_FREE_QRMI_PASQAL_CLOUD_AUTH_ENDPOINT"] = fake.url + pasqal_fake.OAUTH
    return clean_env(**env, **extra)


def test_pasqal_username_password_login(in_process, pasqal, pulser_payload):
    env = _pasqal_env(
        pasqal, PASQAL_USERNAME=pasqal_fake.USERNAME, PASQAL_PASSWORD=pasqal_fake.PASSWORD
    )
    in_process.use_env(env)
    proc = in_process.run("EMU_FREE", pulser_payload, "-vv")
    assert proc.returncode == 0, proc.stderr
    assert pasqal.logins == [pasqal_fake.PASSWORD_GRANT]
    assert pasqal_fake.PASSWORD not in proc.stderr and "pasqal-issued-" not in proc.stderr


def test_pasqal_expired_token_falls_back_to_the_login(in_process, pasqal, pulser_payload):
    expired = jwt.encode({"exp": int(time.time()) - 60}, "k" * 32, algorithm="HS256")
    env = _pasqal_env(
        pasqal,
        EMU_FREE_QRMI_PASQAL_CLOUD_AUTH_TOKEN=expired,
        EMU_FREE_QRMI_PASQAL_CLOUD_CLIENT_ID=pasqal_fake.CLIENT_ID,
        EMU_FREE_QRMI_PASQAL_CLOUD_CLIENT_SECRET=pasqal_fake.CLIENT_SECRET,
    )
    in_process.use_env(env)
    proc = in_process.run("EMU_FREE", pulser_payload)
    assert proc.returncode == 0, proc.stderr
    assert pasqal.logins == ["client_credentials"]


def test_pasqal_refused_password_is_one_line_exit_3(in_process, pasqal, pulser_payload):
    env = _pasqal_env(pasqal, PASQAL_USERNAME=pasqal_fake.USERNAME, PASQAL_PASSWORD="wrong-pw-1")
    in_process.use_env(env)
    proc = in_process.run("EMU_FREE", pulser_payload)
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: authentication failed") and "PASQAL_USERNAME" in last
    assert "HTTP 403" in last and "wrong-pw-1" not in proc.stderr
    assert "Traceback" not in proc.stderr and not pasqal.created


def test_pasqal_without_any_credential_is_exit_2(in_process, pasqal, pulser_payload):
    in_process.use_env(_pasqal_env(pasqal))
    proc = in_process.run("EMU_FREE", pulser_payload)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "has no credential" in last and "EMU_FREE_QRMI_PASQAL_CLOUD_CLIENT_ID" in last
    assert pasqal.requests == []


# -- variable vocabulary and warnings ----------------------------------------------------
def _resource(rtype: str, environ: dict[str, str], file_env: dict[str, str] | None = None):
    return Resource("dev", resource_type(rtype), file_env or {}, environ)


def _warnings(resource: Resource) -> list[str]:
    """compat's warnings for ``resource``, with its type's declared settings."""
    return compat.unknown_variable_warnings(resource)


def test_aliases_are_read_in_order_and_masked():
    setting = Setting("SESSION_ID", required=False, aliases=(Setting("X_TOKEN", prefixed=False),))
    only_alias = _resource("ibm-quantum-compute-service", {"dev_X_TOKEN": "s-1"})
    assert only_alias.settings((setting,)) == {"SESSION_ID": "s-1"}
    both = _resource(
        "ibm-quantum-compute-service",
        {"dev_X_TOKEN": "s-1"},
        {"QRMI_IBM_QCS_SESSION_ID": "s-2"},  # the setting itself, even from the file, wins
    )
    assert both.settings((setting,)) == {"SESSION_ID": "s-2"}
    secret = Setting("KEY", secret=True, aliases=(Setting("OLD_KEY"),))
    keys = _resource("ibm-quantum-system", {"dev_QRMI_IBM_QS_OLD_KEY": "old-secret-1"})
    assert keys.settings((secret,)) == {"KEY": "old-secret-1"}
    assert keys.secret_values((secret,)) == ["old-secret-1"]


def test_missing_and_invalid_messages_name_the_aliases():
    timeout = Setting(
        "TIMEOUT_SECONDS", parse=int, aliases=(Setting("QRMI_JOB_TIMEOUT_SECONDS", prefixed=False),)
    )
    with pytest.raises(ConfigError) as missing:
        _resource("qiskit-runtime-service", {}).settings((timeout,))
    assert (
        "dev_QRMI_IBM_QCS_TIMEOUT_SECONDS (or dev_QRMI_IBM_QRS_TIMEOUT_SECONDS, "
        "dev_QRMI_JOB_TIMEOUT_SECONDS)"
    ) in str(missing.value)
    with pytest.raises(ConfigError) as invalid:
        _resource("qiskit-runtime-service", {"dev_QRMI_JOB_TIMEOUT_SECONDS": "soon"}).settings(
            (timeout,)
        )
    assert str(invalid.value).startswith("dev_QRMI_JOB_TIMEOUT_SECONDS ")


def test_shared_setting_reads_the_bare_name():
    user = Setting("PASQAL_USERNAME", required=False, shared=True)
    resource = _resource("pasqal-cloud", {"PASQAL_USERNAME": "alice", "dev_PASQAL_USERNAME": "x"})
    assert resource.variable(user) == "PASQAL_USERNAME"
    assert resource.settings((user,)) == {"PASQAL_USERNAME": "alice"}


def test_qsapi_name_and_daapi_alias_reach_the_presigned_urls():
    pytest.importorskip("boto3")
    from qrmi_tasks.providers.base import RunContext
    from qrmi_tasks.providers.ibm.direct_access import DirectAccessProvider

    base = {
        "SLURM_JOB_QPU_RESOURCES": "dev",
        "SLURM_JOB_QPU_TYPES": "ibm-quantum-system",
        "dev_QRMI_JOB_TIMEOUT_SECONDS": "60",
        **{
            f"dev_QRMI_IBM_QS_{k}": v
            for k, v in {
                "ENDPOINT": "http://127.0.0.1:9",
                "IAM_ENDPOINT": "http://127.0.0.1:9",
                "IAM_APIKEY": "k" * 20,
                "SERVICE_CRN": "crn:v1:x",
                "AWS_ACCESS_KEY_ID": "id",
                "AWS_SECRET_ACCESS_KEY": "s" * 20,
                "S3_ENDPOINT": "http://127.0.0.1:9",
                "S3_BUCKET": "b",
                "S3_REGION": "us-east",
            }.items()
        },
    }
    for name, url in (("QSAPI", "http://s3.qsapi.example:8080"), ("DAAPI", "http://s3.da:80")):
        env = dict(base, **{f"dev_QRMI_IBM_QS_S3_ENDPOINT_FOR_{name}": url})
        resource = resolve_resource("dev", env)
        spec = declaration("ibm-quantum-system").settings
        provider = DirectAccessProvider(resource, resource.settings(spec), RunContext("r"))
        urls = provider.storage.presigned("job-1", 60, "0" * 64)
        assert urls["input"]["presigned_url"].startswith(url + "/"), urls
        provider.close()


@pytest.mark.parametrize(
    ("rtype", "variable", "suggestion"),
    [
        ("qiskit-runtime-service", "QRMI_IBM_QRS_ENDPONT", "dev_QRMI_IBM_QRS_ENDPOINT"),
        ("ibm-quantum-system", "QRMI_IBM_DA_S3_BUKET", "dev_QRMI_IBM_DA_S3_BUCKET"),
        ("ibm-quantum-compute-service", "QRMI_IBM_QCS_SESION_ID", "dev_QRMI_IBM_QCS_SESSION_ID"),
        ("pasqal-cloud", "QRMI_PASQAL_CLOUD_CLIENT_SECRT", "dev_QRMI_PASQAL_CLOUD_CLIENT_SECRET"),
    ],
)
def test_unknown_variable_warning_names_the_closest(rtype, variable, suggestion):
    resource = _resource(rtype, {f"dev_{variable}": "v", "other_QRMI_IBM_QRS_ENDPONT": "v"})
    (message,) = _warnings(resource)
    assert message.startswith(f"dev_{variable} is not read for resource type {rtype}")
    assert message.endswith(f"did you mean {suggestion}?")
    # an older prefix is the type's own: never "belongs to another type"
    assert "belongs to resource type" not in message


def test_every_qrmi_name_is_known_and_config_file_typos_are_reported():
    for rtype in ("ibm-quantum-system", "ibm-quantum-compute-service", "pasqal-cloud"):
        prefix = resource_type(rtype).prefix
        names = {v.suffix(prefix): "v" for v in compat.qrmi_variables(rtype) if not v.shared}
        assert names and _warnings(_resource(rtype, {}, names)) == []
    typo = _resource("ibm-quantum-system", {}, {"QRMI_IBM_QS_S3_REGOIN": "us-east"})
    (message,) = _warnings(typo)
    assert "(in the config file)" in message and "dev_QRMI_IBM_QS_S3_REGION" in message


def test_pasqal_config_root_is_reported_as_not_read():
    environ = {"PASQAL_CONFIG_ROOT": "/site/pasqal", "dev_PASQAL_CONFIG_ROOT": "/x"}
    messages = _warnings(_resource("pasqal-cloud", environ))
    assert [m.split(" ")[0] for m in messages] == ["PASQAL_CONFIG_ROOT", "dev_PASQAL_CONFIG_ROOT"]
    assert all("does not read Pasqal config files" in m for m in messages)
    # the same variables mean nothing to other types: no message
    assert _warnings(_resource("ibm-quantum-system", environ)) == []


def test_runner_warns_about_a_typo_before_the_missing_variable(in_process, runtime, tmp_path):
    env = runner_env(BACKEND, runtime)
    env[f"{BACKEND}_QRMI_IBM_QRS_ENDPONT"] = env.pop(f"{BACKEND}_QRMI_IBM_QRS_ENDPOINT")
    in_process.use_env(clean_env(**env))
    proc = in_process.run(BACKEND, str(SAMPLER))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert any(
        f"{BACKEND}_QRMI_IBM_QRS_ENDPONT is not read" in line
        and f"did you mean {BACKEND}_QRMI_IBM_QRS_ENDPOINT?" in line
        for line in lines
    ), proc.stderr
    assert lines[-1].startswith("error: ") and f"{BACKEND}_QRMI_IBM_QRS_ENDPOINT" in lines[-1]
    assert runtime.requests == []


def test_docs_table_is_the_one_the_declarations_generate():
    """docs/qrmi-compat.md's table of qrmi's variables is generated from the vendor
    packages' declarations (python -m qrmi_tasks.providers.compat): never edited apart."""
    text = (ROOT / "docs" / "qrmi-compat.md").read_text()
    begin, end = "<!-- begin: python -m qrmi_tasks.providers.compat -->\n", "<!-- end -->"
    assert begin in text and end in text
    table = text.split(begin, 1)[1].split(end, 1)[0]
    assert table == compat.markdown_table()
    # every variable qrmi reads for a declared type is a row, with its types
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]}
    for rtype in ("ibm-quantum-system", "ibm-quantum-compute-service", "pasqal-cloud"):
        prefix = resource_type(rtype).prefix
        for variable in compat.qrmi_variables(rtype):
            name = variable.suffix(prefix)
            name = name if variable.shared else f"{{name}}_{name}"
            # compute-service rows are written with the QCS prefix for both of its types
            assert name in rows or name.replace("_QRS_", "_QCS_") in rows, name


def test_pasqal_token_usability_urls_and_credential_order():
    from qrmi_tasks.providers.pasqal import auth as pasqal_auth

    now = time.time()
    fresh = jwt.encode({"exp": int(now) + 60}, "k" * 32, algorithm="HS256")
    nearly = jwt.encode({"exp": int(now) + 5}, "k" * 32, algorithm="HS256")  # inside qrmi's 10 s
    assert pasqal_auth.token_usable("opaque-token", now)  # not a JWT: used until refused
    assert pasqal_auth.token_usable(fresh, now) and not pasqal_auth.token_usable(nearly, now)
    assert not pasqal_auth.token_usable("a.b.c", now)  # JWT-shaped but unreadable
    assert pasqal_auth.token_url(None) == "https://authenticate.pasqal.cloud/oauth/token"
    assert pasqal_auth.token_url("http://127.0.0.1:1/t") == "http://127.0.0.1:1/t"
    assert pasqal_auth.api_urls({"BASE_URL": "https://p.example/"}) == (
        "https://p.example/core-fast",
        "https://p.example/account",
    )
    assert pasqal_auth.api_urls({"BASE_URL": "https://p.example", "ENDPOINT": "http://c/"}) == (
        "http://c",
        "https://p.example/account",
    )
    both = {"PASQAL_USERNAME": "u", "PASQAL_PASSWORD": "p", "CLIENT_ID": "i", "CLIENT_SECRET": "s"}
    assert pasqal_auth.credential_kind(both) == "password"
    assert pasqal_auth.credential_kind({**both, "AUTH_TOKEN": "t"}) == "token"
    assert pasqal_auth.credential_kind({"PASQAL_USERNAME": "u", "CLIENT_ID": "i"}) is None
