"""Resource resolution and per-resource settings (in-process unit tests)."""

from __future__ import annotations

import json

import pytest

from qrmi_tasks.config import Setting, positive_int
from qrmi_tasks.errors import ConfigError
from qrmi_tasks.providers import resolve_resource

SPEC = (
    Setting("ENDPOINT"),
    Setting("IAM_APIKEY", secret=True),
    Setting("QRMI_JOB_TIMEOUT_SECONDS", prefixed=False, parse=positive_int),
    Setting("S3_ENDPOINT_FOR_DAAPI", required=False),
)


def test_embedded_local_without_any_variables():
    resource = resolve_resource("local", {})
    assert resource.type.name == "local"


def test_every_missing_variable_in_one_error():
    env = {"SLURM_JOB_QPU_RESOURCES": "ibm_x", "SLURM_JOB_QPU_TYPES": "direct-access"}
    resource = resolve_resource("ibm_x", env)
    with pytest.raises(ConfigError) as info:
        resource.settings(SPEC)
    message = str(info.value)
    for name in (
        "ibm_x_QRMI_IBM_DA_ENDPOINT",
        "ibm_x_QRMI_IBM_DA_IAM_APIKEY",
        "ibm_x_QRMI_JOB_TIMEOUT_SECONDS",
    ):
        assert name in message
    assert "S3_ENDPOINT_FOR_DAAPI" not in message  # optional


def test_newer_type_names_use_their_own_prefix():
    env = {
        "SLURM_JOB_QPU_RESOURCES": "q",
        "SLURM_JOB_QPU_TYPES": "ibm-quantum-system",
        "q_QRMI_IBM_QS_ENDPOINT": "http://da",
        "q_QRMI_IBM_QS_IAM_APIKEY": "k",
        "q_QRMI_JOB_TIMEOUT_SECONDS": "60",
    }
    values = resolve_resource("q", env).settings(SPEC)
    assert values["ENDPOINT"] == "http://da" and values["QRMI_JOB_TIMEOUT_SECONDS"] == 60
    assert values["S3_ENDPOINT_FOR_DAAPI"] is None


@pytest.mark.parametrize("bad", ["0", "-3", "ten", "1.5"])
def test_invalid_timeout_names_the_variable(bad):
    env = {
        "SLURM_JOB_QPU_RESOURCES": "q",
        "SLURM_JOB_QPU_TYPES": "direct-access",
        "q_QRMI_IBM_DA_ENDPOINT": "e",
        "q_QRMI_IBM_DA_IAM_APIKEY": "secret-key",
        "q_QRMI_JOB_TIMEOUT_SECONDS": bad,
    }
    with pytest.raises(ConfigError, match="q_QRMI_JOB_TIMEOUT_SECONDS must be a positive"):
        resolve_resource("q", env).settings(SPEC)


def test_secret_values_are_hidden_in_parse_errors():
    spec = (Setting("IAM_APIKEY", secret=True, parse=positive_int),)
    env = {
        "SLURM_JOB_QPU_RESOURCES": "q",
        "SLURM_JOB_QPU_TYPES": "direct-access",
        "q_QRMI_IBM_DA_IAM_APIKEY": "topsecretvalue",
    }
    with pytest.raises(ConfigError) as info:
        resolve_resource("q", env).settings(spec)
    assert "topsecretvalue" not in str(info.value)


def test_config_file_and_environment_override(tmp_path):
    config = tmp_path / "qrmi.json"
    config.write_text(
        json.dumps(
            {
                "resources": [
                    {
                        "name": "ibm_a",
                        "type": "direct-access",
                        "environment": {
                            "QRMI_IBM_DA_ENDPOINT": "http://file",
                            "QRMI_IBM_DA_IAM_APIKEY": "f",
                            "QRMI_JOB_TIMEOUT_SECONDS": "100",
                        },
                    },
                    {"name": "FRESNEL", "type": "pasqal-cloud", "environment": {}},
                ]
            }
        )
    )
    env = {"ibm_a_QRMI_IBM_DA_ENDPOINT": "http://env"}
    values = resolve_resource("ibm_a", env, config).settings(SPEC)
    assert values["ENDPOINT"] == "http://env"
    assert values["IAM_APIKEY"] == "f" and values["QRMI_JOB_TIMEOUT_SECONDS"] == 100
    assert resolve_resource("FRESNEL", {}, config).type.name == "pasqal-cloud"
    # the environment's resource list adds to (and overrides types of) the file's
    env = {"SLURM_JOB_QPU_RESOURCES": "FRESNEL,extra", "SLURM_JOB_QPU_TYPES": "local,local"}
    assert resolve_resource("FRESNEL", env, config).type.name == "local"
    assert resolve_resource("extra", env, config).type.name == "local"


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("{", "not valid JSON"),
        ('{"resources": {}}', "'resources' list"),
        ('{"resources": [{"type": "local"}]}', "'name'"),
        ('{"resources": [{"name": "a", "type": "local", "environment": []}]}', "environment"),
    ],
)
def test_bad_config_files(tmp_path, text, fragment):
    config = tmp_path / "c.json"
    config.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        resolve_resource("a", {}, config)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_resource("a", {"QRMI_CONFIG": str(tmp_path / "none.json")})


def test_blank_entries_and_empty_delimiter():
    env = {
        "SLURM_JOB_QPU_RESOURCES": " a , b ",
        "SLURM_JOB_QPU_TYPES": "local,local",
        "QRMI_LIST_DELIMITER": "",
    }
    assert resolve_resource("b", env).name == "b"
    env["SLURM_JOB_QPU_RESOURCES"] = "a,,b"
    env["SLURM_JOB_QPU_TYPES"] = "local,local,local"
    with pytest.raises(ConfigError, match="empty entry"):
        resolve_resource("a", env)


def test_duplicate_resource_names_are_named():
    env = {"QRMI_JOB_QPU_RESOURCES": "a, b,a", "QRMI_JOB_QPU_TYPES": "local,local,local"}
    with pytest.raises(ConfigError, match="QRMI_JOB_QPU_RESOURCES names 'a' more than once"):
        resolve_resource("b", env)


def test_duplicate_resource_names_in_config_file(tmp_path):
    config = tmp_path / "c.json"
    entry = {"name": "dup", "type": "local"}
    config.write_text(json.dumps({"resources": [entry, {"name": "x", "type": "local"}, entry]}))
    with pytest.raises(ConfigError, match="lists the resource 'dup' more than once"):
        resolve_resource("x", {}, config)


ENDPOINTS = (
    Setting("ENDPOINT"),
    Setting("IAM_ENDPOINT", required=False),
    Setting("S3_ENDPOINT_FOR_DAAPI", required=False),
    Setting("ACCOUNT_BASE_URL", required=False),
    Setting("S3_REGION", required=False),
)


@pytest.mark.parametrize(
    "url,warned",
    [
        ("http://da.example.com/v1", True),
        ("HTTP://10.0.0.5:8080", True),
        ("http://127.0.0.1:8080", False),
        ("http://127.4.5.6", False),
        ("http://[::1]:9000/x", False),
        ("http://LOCALHOST:9000", False),
        ("https://da.example.com", False),
        ("not a url", False),
    ],
)
def test_plain_http_to_another_host_is_a_warning(caplog, url, warned):
    env = {
        "QRMI_JOB_QPU_RESOURCES": "q",
        "QRMI_JOB_QPU_TYPES": "direct-access",
        "q_QRMI_IBM_DA_ENDPOINT": "https://da",
        "q_QRMI_IBM_DA_S3_REGION": url,  # not an endpoint setting: never checked
    }
    for setting in ("ENDPOINT", "IAM_ENDPOINT", "S3_ENDPOINT_FOR_DAAPI", "ACCOUNT_BASE_URL"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="qrmi_tasks.config"):
            values = resolve_resource("q", {**env, f"q_QRMI_IBM_DA_{setting}": url}).settings(
                ENDPOINTS
            )
        assert values[setting] == url  # a warning, never an error
        # ACCOUNT_BASE_URL is made up for this test: leave out the unknown-variable warning
        # qrmi_tasks.providers.compat gives for it (tested in test_qrmi_compat.py)
        messages = [r.getMessage() for r in caplog.records if "is not read" not in r.getMessage()]
        if warned:
            assert (
                len(messages) == 1
                and f"q_QRMI_IBM_DA_{setting} uses plain http://" in (messages[0])
            )
        else:
            assert messages == []


# -- qrmi's current variable names, with the older ones as fallbacks -------------------------
def _runtime(env: dict[str, str]):
    return resolve_resource(
        "q", {"QRMI_JOB_QPU_RESOURCES": "q", "QRMI_JOB_QPU_TYPES": "qiskit-runtime-service", **env}
    )


def test_older_prefix_is_read_when_the_current_name_is_unset(caplog):
    endpoint = Setting("ENDPOINT")
    assert _runtime({"q_QRMI_IBM_QRS_ENDPOINT": "http://old"}).settings((endpoint,)) == {
        "ENDPOINT": "http://old"
    }
    both_same = {"q_QRMI_IBM_QCS_ENDPOINT": "http://x", "q_QRMI_IBM_QRS_ENDPOINT": "http://x"}
    assert _runtime(both_same).settings((endpoint,)) == {"ENDPOINT": "http://x"}
    assert "older name" not in caplog.text


def test_current_name_wins_and_a_differing_older_one_is_warned_about(caplog):
    env = {"q_QRMI_IBM_QCS_ENDPOINT": "http://new", "q_QRMI_IBM_QRS_ENDPOINT": "http://old"}
    assert _runtime(env).settings((Setting("ENDPOINT"),)) == {"ENDPOINT": "http://new"}
    (line,) = [r.getMessage() for r in caplog.records if "older name" in r.getMessage()]
    assert line == (
        "q_QRMI_IBM_QCS_ENDPOINT and q_QRMI_IBM_QRS_ENDPOINT (its older name) are both set "
        "and differ; using q_QRMI_IBM_QCS_ENDPOINT"
    )
    assert "http://" not in line  # names only, never values


def test_config_file_keys_under_the_older_prefix_count_too(tmp_path):
    config = tmp_path / "qrmi_config.json"
    config.write_text(
        json.dumps(
            {
                "resources": [
                    {
                        "name": "q",
                        "type": "direct-access",
                        "environment": {"QRMI_IBM_DA_ENDPOINT": "http://file-old"},
                    }
                ]
            }
        )
    )
    resource = resolve_resource("q", {}, config)
    assert resource.settings((Setting("ENDPOINT"),)) == {"ENDPOINT": "http://file-old"}
    assert resource.source(Setting("ENDPOINT")) == "q_QRMI_IBM_DA_ENDPOINT"


def test_messages_name_the_current_and_older_variables_and_secrets_of_both_are_masked():
    resource = _runtime({"q_QRMI_IBM_QCS_IAM_APIKEY": "new-key", "q_QRMI_IBM_QRS_IAM_APIKEY": "k2"})
    key = Setting("IAM_APIKEY", secret=True)
    assert resource.describe(key) == "q_QRMI_IBM_QCS_IAM_APIKEY (or q_QRMI_IBM_QRS_IAM_APIKEY)"
    assert sorted(resource.secret_values((key,))) == ["k2", "new-key"]
    with pytest.raises(
        ConfigError, match=r"q_QRMI_IBM_QCS_ENDPOINT \(or q_QRMI_IBM_QRS_ENDPOINT\)"
    ):
        _runtime({}).settings((Setting("ENDPOINT"),))


@pytest.mark.parametrize(
    "env",
    [
        {"QRMI_JOB_QPU_RESOURCES": "a,b", "QRMI_JOB_QPU_TYPES": "local,local"},
        # the QRMI_ list wins over the SLURM_ one, each list on its own
        {
            "QRMI_JOB_QPU_RESOURCES": "a;b",
            "SLURM_JOB_QPU_RESOURCES": "x",
            "SLURM_JOB_QPU_TYPES": "local;local",
            "QRMI_LIST_DELIMITER": ";",
        },
        {"SLURM_JOB_QPU_RESOURCES": "b", "QRMI_JOB_QPU_TYPES": "local"},
        {
            "SLURM_JOB_QPU_RESOURCES": "a|b",
            "SLURM_JOB_QPU_TYPES": "local|local",
            "QRMI_LIST_DELIMITER": "|",
        },
    ],
)
def test_resource_lists_are_read_as_qrmis_python_reads_them(env, monkeypatch):
    """Same lists as qrmi 0.26.4's ``get_job_qpu_resources_and_types`` for one environment."""
    qrmi = pytest.importorskip("qrmi")
    for name in ("QRMI_JOB_QPU_RESOURCES", "QRMI_JOB_QPU_TYPES", "QRMI_LIST_DELIMITER"):
        monkeypatch.delenv(name, raising=False)
    for name in ("SLURM_JOB_QPU_RESOURCES", "SLURM_JOB_QPU_TYPES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    names, types = qrmi.get_job_qpu_resources_and_types()
    for name, rtype in zip(names, types, strict=True):
        resource = resolve_resource(name, env)
        assert (resource.name, resource.type.name) == (name, rtype)
    with pytest.raises(ConfigError, match="not configured"):
        resolve_resource("x" if "x" not in names else "zz", env)


def test_mismatched_lists_name_the_variables_actually_read():
    env = {"QRMI_JOB_QPU_RESOURCES": "a,b", "SLURM_JOB_QPU_TYPES": "local"}
    with pytest.raises(ConfigError, match=r"QRMI_JOB_QPU_RESOURCES lists 2 .* SLURM_JOB_QPU_TYPES"):
        resolve_resource("a", env)
