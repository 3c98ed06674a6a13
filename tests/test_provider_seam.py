"""The provider seam: settings validated where declared, one resource-type vocabulary
(the vendor packages' declarations, found by the registry), cross-setting rules in
check_settings, the backend-target hook qrmi-gen uses, and the vendors' error tables."""

from __future__ import annotations

import pytest

from qrmi_tasks.config import Resource, http_url, one_of
from qrmi_tasks.errors import ConfigError, QrmiError
from qrmi_tasks.providers import (
    declaration,
    provider_class,
    resource_type,
    resource_types,
)
from qrmi_tasks.providers.base import Provider


def _resource(name: str, rtype: str, **variables: str) -> Resource:
    kind = resource_type(rtype)
    return Resource(name, kind, {}, {f"{name}_{kind.prefix}{k}": v for k, v in variables.items()})


DA_VALID = {
    "ENDPOINT": "https://da.example",
    "IAM_ENDPOINT": "https://iam.example",
    "IAM_APIKEY": "key-1",
    "SERVICE_CRN": "crn:1",
}


def test_http_url_and_one_of_parsers():
    assert http_url("  https://x.example/api ") == "https://x.example/api"
    assert http_url("HTTP://127.0.0.1:8") == "HTTP://127.0.0.1:8"
    with pytest.raises(ValueError, match="must be an http"):
        http_url("x.example/api")
    assert one_of("batch", "dedicated")(" Batch ") == "batch"
    with pytest.raises(ValueError, match="must be batch or dedicated"):
        one_of("batch", "dedicated")("exclusive")
    with pytest.raises(ValueError, match="must be one of a, b, c"):
        one_of("a", "b", "c")("d")


@pytest.mark.parametrize(
    ("rtype", "variable", "value", "fragment"),
    [
        ("direct-access", "LOG_LEVEL", "loud", "must be one of critical, error, warning"),
        ("direct-access", "ENDPOINT", "da.example", "must be an http(s) URL"),
        ("ibm-quantum-system", "IAM_ENDPOINT", "iam", "must be an http(s) URL"),
        ("qiskit-runtime-service", "SESSION_MODE", "exclusive", "must be batch or dedicated"),
        ("ibm-quantum-compute-service", "ENDPOINT", "ftp://x", "must be an http(s) URL"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_its_variable(rtype, variable, value, fragment):
    """Checked when the settings are resolved (exit 2), not as a payload error."""
    variables = dict(DA_VALID, **{variable: value})
    resource = _resource("dev", rtype, **variables)
    spec = declaration(rtype).settings
    with pytest.raises(ConfigError) as caught:
        resource.settings(spec)
    message = caught.value.message
    assert f"dev_{resource.type.prefix}{variable} {fragment}" in message
    assert f"(got {value!r})" in message


def test_parsed_settings_reach_the_provider_normalised():
    resource = _resource("dev", "qiskit-runtime-service", **DA_VALID, SESSION_MODE="Batch")
    assert resource.settings(declaration("qiskit-runtime-service").settings)["SESSION_MODE"] == (
        "batch"
    )
    resource = _resource("dev", "direct-access", **DA_VALID, LOG_LEVEL="INFO")
    settings = resource.settings(declaration("direct-access").target_spec())
    assert settings["LOG_LEVEL"] == "info"


def test_no_provider_reads_raw_settings_to_check_payloads():
    for rtype in resource_types():
        assert not hasattr(provider_class(rtype.name), "check_payload")


def test_pasqal_cross_setting_rules_are_check_settings():
    cls = provider_class("pasqal-cloud")
    spec = declaration("pasqal-cloud").settings
    resource = _resource("EMU_FREE", "pasqal-cloud", PROJECT_ID="p")
    with pytest.raises(ConfigError, match="has no credential"):
        cls.check_settings(resource, resource.settings(spec))
    resource = _resource("NOT_A_DEVICE", "pasqal-cloud", PROJECT_ID="p", AUTH_TOKEN="t-123")
    with pytest.raises(ConfigError, match="not a Pasqal Cloud device type"):
        cls.check_settings(resource, resource.settings(spec))
    resource = _resource("EMU_FREE", "pasqal-cloud", PROJECT_ID="p", AUTH_TOKEN="t-123")
    cls.check_settings(resource, resource.settings(spec))  # accepted


def test_every_resource_type_maps_to_a_provider():
    for rtype in resource_types():
        cls = provider_class(rtype.name)
        assert issubclass(cls, Provider)
        assert declaration(rtype.name).provider == f"{cls.__module__}:{cls.__name__}"
    assert provider_class("ibm-quantum-system") is provider_class("direct-access")
    assert declaration("ibm-quantum-compute-service") is declaration("qiskit-runtime-service")
    assert resource_type("ibm-quantum-system").prefix == "QRMI_IBM_QS_"
    with pytest.raises(ConfigError, match="unknown resource type 'nope'; known types: "):
        resource_type("nope")


def test_backend_target_needs_only_the_api_settings():
    """qrmi-gen --resource: no S3 bucket, no job timeout required."""
    da = declaration("direct-access")
    resource = _resource("dev", "direct-access", **DA_VALID)
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        resource.settings(da.settings)  # a run needs them
    settings = resource.settings(da.target_spec())
    assert settings["ENDPOINT"] == "https://da.example" and settings["S3_BUCKET"] is None
    assert {s.name for s in da.target_spec() if s.required} <= da.target_settings
    for rtype in ("local", "pasqal-cloud"):
        assert declaration(rtype).target_settings is None


def test_a_type_without_a_backend_target_says_so():
    from generators.targets import resource_target

    env = {"SLURM_JOB_QPU_RESOURCES": "FRESNEL", "SLURM_JOB_QPU_TYPES": "pasqal-cloud"}
    with pytest.raises(QrmiError, match=r"'FRESNEL' \(pasqal-cloud\) does not run Qiskit"):
        resource_target("FRESNEL", env)
    with pytest.raises(QrmiError, match="local simulator, which needs no ISA circuits"):
        resource_target("local", {})


def test_an_unreadable_result_file_is_an_input_error_not_a_payload_error(tmp_path):
    from qrmi_tasks.errors import InputError, PayloadError
    from qrmi_tasks.results import summarize

    with pytest.raises(InputError, match=r"result file .* does not exist") as caught:
        summarize(tmp_path / "none.json")
    assert not isinstance(caught.value, PayloadError)
    (tmp_path / "bad.json").write_text("[")
    with pytest.raises(InputError, match="is not a runner result") as caught:
        summarize(tmp_path / "bad.json")
    assert not isinstance(caught.value, PayloadError)


def test_pulser_devices_are_found_by_name_through_public_classes():
    from generators.sequences import device_by_name

    assert device_by_name("analogdevice").name == "AnalogDevice"
    assert device_by_name("MockDevice").name == "MockDevice"
