"""Log levels follow srun's SRUN_DEBUG; secrets never reach a log line."""

from __future__ import annotations

import logging

import pytest
from conftest import EXAMPLES, clean_env, run_runner

from qrmi_tasks.logsetup import SecretFilter, level_from

BELL = str(EXAMPLES / "qiskit" / "bell_sampler.json")


@pytest.mark.parametrize(
    "srun_debug,level",
    [
        ("0", logging.ERROR),
        ("2", logging.ERROR),
        ("3", logging.INFO),
        ("4", logging.DEBUG),
        ("6", logging.DEBUG),
        ("junk", logging.INFO),
    ],
)
def test_srun_debug_mapping(srun_debug, level):
    assert level_from(0, False, {"SRUN_DEBUG": srun_debug})[0] == level


def test_flags_win_over_srun_debug():
    assert level_from(0, True, {"SRUN_DEBUG": "5"})[0] == logging.ERROR
    assert level_from(1, False, {"SRUN_DEBUG": "2"})[0] == logging.DEBUG


def test_srun_debug_in_a_real_run():
    quiet = run_runner("local", BELL, env=clean_env(SRUN_DEBUG="2"))
    normal = run_runner("local", BELL, env=clean_env(SRUN_DEBUG="3"))
    debug = run_runner("local", BELL, env=clean_env(SRUN_DEBUG="4"))
    assert quiet.returncode == normal.returncode == debug.returncode == 0
    assert quiet.stderr == ""
    assert " INFO " in normal.stderr and " DEBUG " not in normal.stderr
    assert " DEBUG " in debug.stderr


def _record(text: str) -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)


def test_filter_masks_known_values_and_credential_shapes():
    secrets = SecretFilter()
    secrets.add(["my-api-key-123", "AKIAEXAMPLEKEY"])
    samples = {
        "apikey my-api-key-123 in text": "my-api-key-123",
        "headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig'}": "eyJhbGci",
        "GET https://s3/b/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIAX%2F2026&"
        "X-Amz-Signature=0123456789abcdef0123456789abcdef": "0123456789abcdef0123",
        "body grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=zzzsecretzzz": "zzzsecret",
        "url ?AWSAccessKeyId=AKIAEXAMPLEKEY&Signature=abc%2Bdef&Expires=1": "abc%2Bdef",
        '{"access_token": "tok-abcdefgh", "expires_in": 3600}': "tok-abcdefgh",
    }
    for text, secret in samples.items():
        record = _record(text)
        secrets.filter(record)
        assert secret not in record.getMessage(), record.getMessage()
        assert "***" in record.getMessage()


def test_debug_run_never_prints_secret_environment_values(tmp_path):
    secrets = {
        "local_QRMI_IBM_DA_IAM_APIKEY": "apikey-value-4711",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-4712",
        "MY_SERVICE_TOKEN": "token-value-4713",
    }
    env = clean_env(**secrets)
    # a payload path that contains a secret value must be masked too when logged
    payload = tmp_path / "token-value-4713.json"
    payload.write_text((EXAMPLES / "qiskit" / "bell_sampler.json").read_text())
    proc = run_runner("-vv", "local", str(payload), "-o", str(tmp_path / "o.json"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert " DEBUG " in proc.stderr or " INFO " in proc.stderr
    for value in secrets.values():
        assert value not in proc.stderr
