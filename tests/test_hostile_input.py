"""Hostile or careless input (issue 25): refused locally with one line, or made harmless.

Each part names the attack it covers. Most run the CLI in this process (``in_process``);
fakes are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import scripted as sp
from fakes.server import FakeServer, Request
from helpers import EXAMPLES, assert_clean_error, clean_env, run_runner
from hypothesis import given, settings
from hypothesis import strategies as st

BELL = str(EXAMPLES / "qiskit" / "bell_sampler.json")


class PathRecorder(FakeServer):
    """Answers every request with 404 and keeps the raw request target (path and query)."""

    def route(self, request: Request) -> tuple[int, object]:
        with self.lock:
            self.config.setdefault("targets", []).append(request.target)
        return 404, {"detail": "no such job"}


# -- 1. --task-id: one rule, checked before anything else; ids quoted in URL paths ----------


@pytest.mark.parametrize(
    "task_id",
    ["q?x=1#frag", "../jobs", "a/b", "-leading-dash", "", "x" * 46, "tab\there", "é"],
)
def test_a_bad_task_id_is_refused_before_any_connection(in_process, listener, task_id):
    in_process.use_env(clean_env(http_proxy=listener.url, https_proxy=listener.url))
    proc = in_process.run("local", BELL, "--task-id", task_id)
    assert_clean_error(proc, "--task-id", "1 to 45 characters")
    assert listener.count == 0


@pytest.mark.parametrize("task_id", ["run-7", "a", "x" * 45, "job.2026:01_b-c"])
def test_every_provider_carries_a_valid_task_id_unchanged(task_id):
    from qrmi_tasks.providers.iqm.server import TAG_PREFIX as IQM
    from qrmi_tasks.runner import check_task_id

    check_task_id(task_id)  # accepted: no exception
    assert len(IQM + task_id) <= 50  # the longest prefix within IQM Server's tag limit


def test_direct_access_quotes_the_job_id_in_its_paths():
    from qrmi_tasks.providers.ibm.direct_access import _job_path

    assert _job_path("q?x=1#frag") == "/v1/jobs/q%3Fx%3D1%23frag"
    assert _job_path("a/../b", "cancel") == "/v1/jobs/a%2F..%2Fb/cancel"


def test_felis_quotes_the_job_id_in_its_paths():
    from qrmi_tasks.providers.alice_bob.felis_client import FelisClient, FelisHttpError

    server = PathRecorder().start()
    try:
        client = FelisClient(server.url, "key")
        with pytest.raises(FelisHttpError):
            client.cancel("q?x=1#frag")
        assert server.config["targets"] == ["/v1/jobs/q%3Fx%3D1%23frag"]
    finally:
        server.stop()


# -- 2. -o/--logs on a device, a FIFO or a symlink: never replaced by a rename --------------


def _fifo_reader(path: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fifo:
            received.append(fifo.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, received


def test_a_result_and_logs_to_dev_null_leave_the_device_alone(scripted, monkeypatch):
    monkeypatch.setattr(sp.ScriptedProvider, "has_logs", True)
    done = scripted.run(sp.RESOURCE, BELL, "-o", "/dev/null", "--logs", "/dev/zero")
    assert done.returncode == 0, done.stderr
    for device in ("/dev/null", "/dev/zero"):
        assert stat.S_ISCHR(os.lstat(device).st_mode), f"{device} was replaced"
    assert scripted.script.count("logs") == 1


def test_a_result_into_a_fifo_is_streamed_and_the_fifo_stays(scripted, tmp_path):
    fifo = tmp_path / "result.fifo"
    os.mkfifo(fifo)
    reader, received = _fifo_reader(fifo)
    done = scripted.run(sp.RESOURCE, BELL, "-o", str(fifo))
    assert done.returncode == 0, done.stderr
    reader.join(10)
    assert received == [sp.RESULT] and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["result.fifo"]  # no temporary left


def test_a_symlink_is_followed_and_its_target_replaced(scripted, tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "out.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    done = scripted.run(sp.RESOURCE, BELL, "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == sp.RESULT
    assert sorted(p.name for p in real_dir.iterdir()) == ["out.json"]


def test_a_dangling_symlink_creates_its_target(scripted, tmp_path):
    real = tmp_path / "new.json"
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert scripted.run(sp.RESOURCE, BELL, "-o", str(link)).returncode == 0
    assert link.is_symlink() and real.read_bytes() == sp.RESULT


def test_a_socket_as_output_is_refused(in_process, tmp_path):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        proc = in_process.run("local", BELL, "-o", str(path))
    assert_clean_error(proc, "neither a regular file, a character device nor a FIFO")


def test_a_result_to_dev_stdout_reaches_stdout_and_the_link_stays():
    # a process: /dev/stdout must be the runner's own stdout, a pipe the test reads
    before = os.readlink("/dev/stdout")
    proc = run_runner("local", BELL, "-o", "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    from qiskit_ibm_runtime import RuntimeDecoder

    counts = json.loads(proc.stdout, cls=RuntimeDecoder)[0].data.meas.get_counts()
    assert set(counts) == {"00", "11"}  # the Bell circuit, run
    assert os.readlink("/dev/stdout") == before


# -- 3. PASQAL_SKIP_SSL_VERIFY: "0" and "false" mean verify -----------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no CA signed, and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def serve_tls(server: FakeServer, cert: tuple[Path, Path]) -> str:
    """Turn a started fake into an https one with ``cert``; its https base URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    # accept() reads the attribute at each connection: from now on every one is TLS
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server.url.replace("http://", "https://")


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize(
    ("value", "verified"), [("0", True), ("false", True), ("", True), ("1", False), ("true", False)]
)
def test_pasqal_tls_is_verified_unless_skip_is_true(monkeypatch, self_signed, value, verified):
    import requests
    from fakes.pasqal_cloud import CORE, FakePasqalCloud, runner_env

    from qrmi_tasks.providers import open_provider
    from qrmi_tasks.providers.base import RunContext

    fake = FakePasqalCloud().start()
    try:
        url = serve_tls(fake, self_signed) + CORE
        monkeypatch.setenv("PASQAL_SKIP_SSL_VERIFY", value)  # where the SDK itself reads it
        for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would verify
            monkeypatch.delenv(bundle, raising=False)  # with them whatever the SDK says
        env = clean_env(**runner_env("EMU_FREE", url), PASQAL_SKIP_SSL_VERIFY=value)
        provider = open_provider("EMU_FREE", env, context=RunContext("tls-test"))
        # the session every SDK request goes through (one request: the SDK's own retries
        # of a failed connection would only add time)
        session = provider.client()._client.session
        if verified:
            with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
                session.get(url + "/api/v2/batches/no-such-batch")
            assert fake.requests == []  # nothing (the token included) went out
        else:
            session.get(url + "/api/v2/batches/no-such-batch")
            assert len(fake.calls("GET", f"{CORE}/api/v2/batches/no-such-batch")) == 1
    finally:
        fake.stop()


def test_an_unclear_pasqal_skip_ssl_verify_is_refused(in_process):
    from fakes.pasqal_cloud import runner_env

    env = clean_env(**runner_env("EMU_FREE", "https://127.0.0.1:9"), PASQAL_SKIP_SSL_VERIFY="no!")
    in_process.use_env(env)
    proc = in_process.run("EMU_FREE", BELL)
    assert_clean_error(proc, "PASQAL_SKIP_SSL_VERIFY", "must be true or false")


# -- 4. IAM redirects are not followed: the API key goes to the configured URL only ---------


class Redirecting(FakeServer):
    """IAM that answers every token request with a redirect to ``to``."""

    def route(self, request: Request) -> tuple[int, object, dict[str, str]]:
        return self.config["status"], b"", {"Location": self.config["to"] + request.path}


class Recorder(FakeServer):
    """The redirect's target: records whatever reaches it."""

    def route(self, request: Request) -> tuple[int, object]:
        with self.lock:
            self.config.setdefault("bodies", []).append(request.body)
        return 200, {"access_token": "stolen", "expiration": 0}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_an_iam_redirect_is_refused_and_the_key_stays_home(status):
    from qrmi_tasks.errors import ConfigError
    from qrmi_tasks.providers.ibm.iam import IamTokens

    target = Recorder().start()
    iam = Redirecting(status=status, to=target.url).start()
    try:
        tokens = IamTokens(iam.url + "/identity/token", "very-secret-api-key")
        with pytest.raises(ConfigError, match=f"HTTP {status}, a redirect to {target.url}"):
            tokens.token()
        assert len(iam.requests) == 1  # asked once: the answer is final, not retried
        assert target.requests == [] and "bodies" not in target.config
    finally:
        iam.stop()
        target.stop()


# -- 7. OpenQASM includes: one linear pass, only the standard name in any spelling -----------

_BLANKS = st.sampled_from(["", " ", "\t", "\n", "/* c */", "// line\n", " /* a\nb */ "])


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from([2, 3]),
    before=st.text(alphabet=st.characters(blacklist_characters="\"'/*"), max_size=40),
    gap=_BLANKS,
    quote=st.sampled_from(['"', "'"]),
    name=st.text(max_size=30),
    closing=st.sampled_from(['"', "'", ""]),
)
def test_only_the_standard_include_passes_however_it_is_spelled(
    version, before, gap, quote, name, closing
):
    from qrmi_tasks.payload import STANDARD_INCLUDES, qasm_include_problem

    text = f"OPENQASM {version}.0;\n{before}\ninclude{gap}{quote}{name}{closing};\nqubit q;"
    problem = qasm_include_problem(text)
    exact = name == STANDARD_INCLUDES[version] and closing == quote
    assert (problem is None) == exact, (text, problem)


def test_the_include_check_is_linear_on_adversarial_input():
    from qrmi_tasks.payload import qasm_include_names, qasm_include_problem

    # the 160 KB input that took 10 s of CPU, and one 100 times larger (quadratic: days)
    for repeats in (16_000, 1_600_000):
        assert "no quoted file name" in qasm_include_problem("include /*" * repeats)
    # no early exit: every include is good, each is read once
    valid = "OPENQASM 3;\n" + 'include "stdgates.inc"; /* include */ // include\n' * 100_000
    assert list(qasm_include_names(valid)) == ["stdgates.inc"] * 100_000


@pytest.mark.parametrize("include", ['"/etc/pass\'wd"', "'/etc/passwd\"", '"/etc/passwd'])
def test_a_quote_in_an_include_no_longer_slips_through(in_process, tmp_path, include):
    circuit = f"OPENQASM 2.0;\ninclude {include};\nqreg q[1];"
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"program_id": "sampler", "parameters": {"pubs": [[circuit]]}}))
    assert_clean_error(in_process.run("local", str(payload)), "may only include", "pubs[0][0]")


# -- 6. local runs: shots whose per-shot results cannot fit are refused before the worker ---


def test_a_billion_shots_are_refused_before_the_worker_starts(in_process, tmp_path):
    document = json.loads(Path(BELL).read_text())
    document["parameters"]["shots"] = 10**9  # 256 GB of per-shot results
    payload = tmp_path / "many.json"
    payload.write_text(json.dumps(document))
    line = assert_clean_error(in_process.run("local", str(payload), "-q"), code=2)
    assert "sampling 1,000,000,000 shots over 1 circuit keeps about 238.4 GiB" in line
    assert "this job can use" in line and "Lower the shots" in line


@pytest.mark.parametrize(
    ("document", "shots"),
    [
        ({"program_id": "sampler", "parameters": {"pubs": [["c", None, 10**7]]}}, 10**7),
        (  # two pubs at the payload's default_shots: shots × circuits
            {
                "program_id": "sampler",
                "parameters": {"pubs": [["c"], ["c"]], "options": {"default_shots": 5 * 10**6}},
            },
            10**7,
        ),
        (
            {
                "iqmjson": {
                    "circuits": [{"name": "a", "instructions": []}] * 2,
                    "shots": 5 * 10**6,
                },
                "job_type": "circuit",
                "tag": None,
            },
            10**7,
        ),
    ],
)
def test_shots_times_circuits_are_judged_against_the_jobs_memory(monkeypatch, document, shots):
    from qrmi_tasks.errors import PayloadError
    from qrmi_tasks.payload import check_document
    from qrmi_tasks.providers import open_provider
    from qrmi_tasks.providers.local import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)  # a 1 GiB job
    provider = open_provider("local", clean_env())
    payload = check_document(document)
    with pytest.raises(
        PayloadError, match=f"sampling {shots:,} shots over [12] circuits? keeps about 2.4 GiB"
    ):
        provider.submit(payload)
    assert provider._child is None and provider._workdir is None  # no worker, no files
    # a tenth of it fits (256 MB of shots + the 256 MB headroom in 1 GiB)
    assert memory.refusal(shots // 10 * memory.SHOT_BYTES, "x", "y") is None


# -- 8. what a SIGKILL left behind goes on the next run, and only that ---------------------


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_stale_part_files_of_a_killed_run_are_removed_beside_the_output(scripted, tmp_path):
    out = tmp_path / "out.json"
    dead, alive = _dead_pid(), os.getpid()
    stale = tmp_path / f".out.json.{dead}.abcd1234.part"
    live = tmp_path / f".out.json.{alive}.efgh5678.part"  # a run in progress: kept
    other = tmp_path / f".other.json.{dead}.abcd1234.part"  # another target's: not ours
    mine = tmp_path / "notes.part"
    for path in (stale, live, other, mine):
        path.write_text("partial")
    assert scripted.run(sp.RESOURCE, BELL, "-o", str(out)).returncode == 0
    assert out.read_bytes() == sp.RESULT
    assert not stale.exists() and live.exists() and other.exists() and mine.exists()


def test_the_local_scratch_directory_is_in_tmpdir_named_by_pid_and_stale_ones_go(
    tmp_path, monkeypatch
):
    from qrmi_tasks.payload import load_payload
    from qrmi_tasks.providers import open_provider

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    stale = tmp_path / f"qrmi-local-{_dead_pid()}-abcd1234"
    live = tmp_path / f"qrmi-local-{os.getpid()}-efgh5678"
    for directory in (stale, live):
        directory.mkdir()
        (directory / "payload.json").write_text("{}")
    provider = open_provider("local", clean_env(TMPDIR=str(tmp_path)))
    try:
        provider.submit(load_payload(Path(BELL)))
        workdir = provider._workdir
        assert workdir.parent == tmp_path
        assert workdir.name.startswith(f"qrmi-local-{os.getpid()}-")
        assert (workdir / "payload.json").exists()
    finally:
        provider.close()
    assert not stale.exists() and live.exists() and not workdir.exists()


# -- 5. answers capped at 16 MiB (one rule), results limited by QRMI_MAX_RESULT_BYTES -------

BIG = 20 << 20  # over the 16 MiB cap


class Bomb(FakeServer):
    """Answers 200 with a JSON body of ``size`` bytes, gzip-compressed when ``gzip``:
    a small Content-Length whose body grows when decoded."""

    def route(self, request: Request) -> tuple[int, object, dict[str, str]]:
        body = b'{"access_token": "' + b"a" * self.config["size"] + b'"}'
        if self.config.get("gzip"):
            return 200, gzip.compress(body, 1), {"Content-Encoding": "gzip"}
        return 200, body, {}


@pytest.mark.parametrize("compressed", [False, True], ids=["content-length", "gzip"])
def test_a_huge_iam_answer_is_a_protocol_error_and_not_read(compressed):
    from qrmi_tasks.answers import AnswerTooLarge
    from qrmi_tasks.providers.ibm.iam import IamTokens

    iam = Bomb(size=BIG, gzip=compressed).start()
    try:
        tokens = IamTokens(iam.url + "/identity/token", "api-key")
        with pytest.raises(AnswerTooLarge, match="is larger than 16 MiB"):
            tokens.token()
    finally:
        iam.stop()


def test_a_huge_runtime_status_answer_is_not_read_and_asked_again(in_process, tmp_path):
    from fakes.qiskit_runtime import API, FakeQiskitRuntime, runner_env

    fake = FakeQiskitRuntime(("ibm_fake",), job_seconds=0.3).start()
    try:
        fake.configure(
            faults=[
                {"method": "GET", "match": f"{API}/jobs/[^/]+", "status": 200, "body_size": BIG}
            ]
        )
        in_process.use_env(clean_env(**runner_env("ibm_fake", fake)))
        proc = in_process.run("ibm_fake", BELL, "-o", str(tmp_path / "out.json"))
    finally:
        fake.stop()
    # the shared IBM rule (providers/ibm/rest.py, as for Direct Access in
    # test_failure_exits.py): not read further, asked again, the run completes
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if "retrying" in line]
    assert "protocol error" in line and "larger than 16 MiB" in line and API in line
    assert len(fake.created) == 1 and (tmp_path / "out.json").stat().st_size > 0


def test_a_huge_pasqal_batch_answer_is_exit_3(in_process, tmp_path):
    from fakes.pasqal_cloud import CORE, FakePasqalCloud, runner_env
    from payloads import write_pulser_payload

    payload = write_pulser_payload(tmp_path / "p.json", runs=10)
    fake = FakePasqalCloud(job_seconds=0.3).start()
    try:
        fault = {"method": "GET", "match": f"{CORE}/api/v2/batches/[^/]+", "status": 200}
        fake.configure(faults=[{**fault, "body_size": BIG}])
        in_process.use_env(clean_env(**runner_env("EMU_FREE", fake.core_url)))
        proc = in_process.run("EMU_FREE", str(payload))
    finally:
        fake.stop()
    assert proc.returncode == 3, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "protocol error" in line and "larger than 16 MiB" in line


def test_a_huge_iqm_server_status_answer_is_exit_3(in_process, tmp_path):
    from fakes import iqm_server

    payload = iqm_server.bell_payload(tmp_path / "bell.json")
    fake = iqm_server.FakeIQMServer(job_seconds=0.3).start()
    try:
        fault = {"method": "GET", "match": "/api/v1/jobs/[^/]+", "status": 200}
        fake.configure(faults=[{**fault, "body_size": BIG}])
        in_process.use_env(clean_env(**iqm_server.runner_env(fake.endpoint)))
        proc = in_process.run(iqm_server.RESOURCE, str(payload))
    finally:
        fake.stop()
    assert proc.returncode == 3, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "protocol error" in line and "larger than 16 MiB" in line


def test_a_result_over_qrmi_max_result_bytes_is_stopped_and_the_target_untouched(
    scripted, tmp_path, monkeypatch
):
    out = tmp_path / "out.json"
    out.write_text("old")
    monkeypatch.setenv("QRMI_MAX_RESULT_BYTES", str(len(sp.RESULT) - 1))
    proc = scripted.run(sp.RESOURCE, BELL, "-o", str(out))
    assert proc.returncode == 4, proc.stderr
    assert "larger than QRMI_MAX_RESULT_BYTES" in proc.stderr
    assert "it was kept on the provider" in proc.stderr or "not written" in proc.stderr
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    monkeypatch.setenv("QRMI_MAX_RESULT_BYTES", str(len(sp.RESULT)))  # exactly at the limit
    assert scripted.run(sp.RESOURCE, BELL, "-o", str(out)).returncode == 0
    assert out.read_bytes() == sp.RESULT
