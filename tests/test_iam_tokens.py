"""One IAM token per user and node (qrmi_tasks/token_cache.py, providers/ibm/iam.py).

Against the fake Direct Access service's IAM (tests/fakes/ibm_iam.py, which counts every
``POST /identity/token``): runners started together make one token request; a token
past 80 % of its lifetime is replaced; a token an API refused is replaced once, and
only while the cache still holds it; a cache file not to be trusted is ignored; a lock
held by a stuck runner delays no one beyond the bound.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes.direct_access import API_KEY, SERVICE_CRN, FakeDirectAccess, runner_env
from fakes.server import FakeServer, Request
from helpers import BELL, clean_env, start_runner

from qrmi_tasks import token_cache
from qrmi_tasks.providers.ibm.iam import REFRESH_FRACTION, IamTokens

BACKEND = "fake_heron"
TOKEN_PATH = "/identity/token"
RUNNERS = 4  # runner processes (each a fork of tests/runner_server.py)
THREADS = 8


@pytest.fixture(scope="module")
def fake():
    server = FakeDirectAccess((BACKEND,), job_seconds=0.2).start()
    yield server
    server.stop()


def _asked(fake) -> int:
    return len(fake.calls("POST", TOKEN_PATH))


def _tokens(fake, folder: Path) -> IamTokens:
    return IamTokens(fake.url, API_KEY, folder)


def _entry(folder: Path) -> Path:
    (path,) = folder.glob("*.json")
    return path


def test_runners_started_together_make_one_token_request(fake, s3_url, tmp_path):
    env = clean_env(**runner_env(BACKEND, fake.url, s3_url))
    before = _asked(fake)
    runners = [
        start_runner(BACKEND, str(BELL), "-o", str(tmp_path / f"out-{i}.json"), env=env)
        for i in range(RUNNERS)
    ]
    errors = [runner.communicate(timeout=60)[1] for runner in runners]
    assert [runner.returncode for runner in runners] == [0] * RUNNERS, errors
    assert _asked(fake) - before == 1
    entry = _entry(token_cache.directory(env))
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    assert API_KEY not in entry.read_text()  # the key's digest names the entry, never the key
    shared = json.loads(entry.read_text())["value"]
    assert shared in fake.issued and not any(shared in text for text in errors)


def test_threads_share_one_request_and_the_refresh_point_is_80_percent(fake, tmp_path):
    before = _asked(fake)
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(_tokens(fake, tmp_path).token()))
        for _ in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _asked(fake) - before == 1 and len(set(got)) == 1
    entry = json.loads(_entry(tmp_path).read_text())
    lifetime = fake.config["token_ttl"]
    assert entry["expires_at"] - entry["refresh_at"] == pytest.approx(
        (1 - REFRESH_FRACTION) * lifetime
    )
    assert entry["expires_at"] == pytest.approx(time.time() + lifetime, abs=5)


def test_a_token_past_its_refresh_point_is_replaced_once(fake, tmp_path):
    first = _tokens(fake, tmp_path).token()
    path = _entry(tmp_path)
    aged = json.loads(path.read_text())
    aged["refresh_at"] = time.time() - 1  # still valid: 80 % of its life has passed
    path.write_text(json.dumps(aged))
    before = _asked(fake)
    renewed = [_tokens(fake, tmp_path).token() for _ in range(3)]
    assert _asked(fake) - before == 1
    assert renewed[0] != first and set(renewed) == {renewed[0]}


def test_a_refused_token_is_replaced_once_and_only_while_it_is_cached(fake, tmp_path):
    from qrmi_tasks.providers.ibm.da_client import DirectAccessClient

    def client(tokens):
        return DirectAccessClient(fake.url, SERVICE_CRN, tokens, lambda s: None)

    one, two = _tokens(fake, tmp_path), _tokens(fake, tmp_path)
    first = one.token()
    assert two.token() == first
    fake.configure(revoke_tokens=True)  # every token so far now answers 401
    before = _asked(fake)
    client(one).json("GET", f"/v1/backends/{BACKEND}/configuration")  # 401, renewed, 200
    client(two).json("GET", f"/v1/backends/{BACKEND}/configuration")  # 401: reads one's
    assert _asked(fake) - before == 1
    assert one.token() == two.token() != first


@pytest.mark.parametrize("flaw", ["corrupt", "mode 0644", "foreign owner", "open directory"])
def test_a_cache_not_to_be_trusted_is_ignored(fake, tmp_path, flaw):
    folder = tmp_path / "tokens"
    _tokens(fake, folder).token()
    path = _entry(folder)
    planted = json.loads(path.read_text())
    planted["value"] = "planted-token-0123456789"
    path.write_text(json.dumps(planted))
    if flaw == "corrupt":
        path.write_bytes(b'{"key": "\x00\xff')
    elif flaw == "mode 0644":
        path.chmod(0o644)
    elif flaw == "foreign owner":
        if os.getuid() != 0:
            pytest.skip("giving a file to another user needs root")
        os.chown(path, 4242, 4242)
    else:
        folder.chmod(0o755)
    before = _asked(fake)
    assert _tokens(fake, folder).token() in fake.issued
    assert _asked(fake) - before == 1
    if flaw != "open directory":  # replaced by a file of ours, trusted again
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == os.getuid()
        assert _tokens(fake, folder).token() in fake.issued and _asked(fake) - before == 1


def test_a_stuck_lock_holder_delays_a_runner_by_the_bound_only(fake, tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setattr(token_cache, "LOCK_WAIT_SECONDS", 0.3)
    tokens = _tokens(fake, tmp_path)
    with tokens._shared.lock_path.open("a") as held:  # a runner stopped while holding it
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        assert tokens.token() in fake.issued
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0


def test_a_lock_holder_killed_by_sigkill_delays_no_one(fake, tmp_path):
    tokens = _tokens(fake, tmp_path)
    lock = tokens._shared.lock_path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-S",
            "-c",
            "import fcntl, os, sys, time\n"
            "f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(60)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait()
    started = time.monotonic()
    assert tokens.token() in fake.issued
    assert time.monotonic() - started < token_cache.LOCK_WAIT_SECONDS / 2


def test_a_valid_token_serves_other_threads_while_one_renews_it(fake, tmp_path, monkeypatch):
    """The cancel path never waits for a refresh in flight while the token still works."""
    import fcntl

    from qrmi_tasks.token_cache import Token

    monkeypatch.setattr(token_cache, "LOCK_WAIT_SECONDS", 0.5)
    tokens = _tokens(fake, tmp_path)
    aged = Token("aged-but-valid-token-0123", time.time() + 600, time.time() - 1)
    tokens._current = aged
    renewed: list[str] = []
    renewing = threading.Thread(target=lambda: renewed.append(tokens.token()))
    with tokens._shared.lock_path.open("a") as held:  # the renewal waits for this lock
        fcntl.flock(held, fcntl.LOCK_EX)
        renewing.start()
        while not tokens._lock.locked():
            time.sleep(0.005)
        started = time.monotonic()
        assert tokens.token() == aged.value
        assert time.monotonic() - started < 0.2
    renewing.join()
    assert renewed[0] in fake.issued


class _OddIam(FakeServer):
    """An IAM endpoint answering every token request with the configured ``answer``."""

    def route(self, request: Request) -> tuple[int, object, dict[str, str]]:
        status, body = self.config["answer"]
        return status, body, {}


@pytest.fixture(scope="module")
def odd():
    server = _OddIam(answer=(500, {})).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "answer",
    [
        (200, {"token_type": "Bearer", "expires_in": 3600}),  # no access_token
        (200, {"access_token": "eyJ.e30.sig"}),  # no lifetime at all
        (200, b"<html>maintenance</html>"),
        (200, [1, 2]),
    ],
    ids=["no-token", "no-lifetime", "html", "list"],
)
def test_an_answer_that_is_no_token_is_a_malformed_iam_error(odd, answer):
    from qrmi_tasks.providers.ibm.iam import IamError

    odd.configure(answer=answer)
    with pytest.raises(IamError) as caught:
        IamTokens(odd.url, "key").token()
    assert caught.value.malformed and caught.value.status is None


def test_iam_5xx_is_not_a_refusal_and_an_absolute_expiration_alone_serves(odd):
    from qrmi_tasks.providers.ibm.iam import IamError

    odd.configure(answer=(503, {"errorCode": "BXNIM0000E", "errorMessage": "busy"}))
    with pytest.raises(IamError) as caught:
        IamTokens(odd.url, "key").token()
    assert caught.value.status == 503 and not caught.value.refused
    assert caught.value.detail == "BXNIM0000E: busy"
    expiring = {"access_token": "eyJ.e30.sig", "expiration": time.time() + 100}
    odd.configure(answer=(200, expiring))
    assert IamTokens(odd.url, "key").token() == "eyJ.e30.sig"
