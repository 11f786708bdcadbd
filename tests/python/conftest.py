"""Shared fixtures for coffer's end-to-end tests.

The tests start the real `coffer` binary (`coffer serve`) on a free port against a fresh
data directory and a fresh metadata store — SQLite or PostgreSQL, every server-level fixture
is parametrized over both — and talk to it with boto3, requests, raw sockets and the aws CLI.

Binary:   $COFFER_BIN, else $CARGO_TARGET_DIR/debug/coffer, else <repo>/target/debug/coffer.
Postgres: $COFFER_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres, trust
          auth); each server gets its own database `coffer_t_<hex>`, dropped at teardown.
          Unreachable: the postgres tests are skipped, or fail when CI=true.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import emulators

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STORES = ["sqlite", "postgres"]
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"
READY_TIMEOUT = 30.0
MiB = 1024 * 1024


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def unique(prefix: str = "t") -> str:
    """A name that is a valid bucket name and user name, unique per call."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def find_binary() -> Path:
    env = os.environ.get("COFFER_BIN")
    if env:
        path = Path(env)
        origin = "$COFFER_BIN"
    elif os.environ.get("CARGO_TARGET_DIR"):
        path = Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "coffer"
        origin = "$CARGO_TARGET_DIR/debug/coffer"
    else:
        path = REPO / "target" / "debug" / "coffer"
        origin = "<repo>/target/debug/coffer"
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"coffer binary not found or not executable at {path} (from {origin}). "
            "Build it first (`cargo build -p coffer`) or point COFFER_BIN at it.",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, limit: int = 12000) -> str:
    try:
        data = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<missing>"
    if len(data) > limit:
        return "…" + data[-limit:]
    return data


def s3_client(endpoint: str, access_key: str, secret_key: str, signature_version: str = "s3v4"):
    """A boto3 S3 client for coffer: path-style, SigV4, no retries so errors surface at once."""
    register_secret(secret_key, f"the secret key of {access_key}")
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            signature_version=signature_version,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def err_of(exc: ClientError) -> tuple[str, int]:
    r = exc.response
    return r.get("Error", {}).get("Code"), r.get("ResponseMetadata", {}).get("HTTPStatusCode")


@contextlib.contextmanager
def s3_error(code: str | None, status: int) -> Iterator[Any]:
    """Expect the block to raise a ClientError with this S3 error code and HTTP status.

    `code=None` for responses without a body (HEAD, 304) where only the status is known.
    """
    with pytest.raises(ClientError) as ei:
        yield ei
    got_code, got_status = err_of(ei.value)
    assert got_status == status, f"expected HTTP {status} {code}, got HTTP {got_status} {got_code}: {ei.value.response}"
    if code is not None:
        assert got_code == code, f"expected error code {code} (HTTP {status}), got {got_code}: {ei.value.response}"


def status_of(resp: dict) -> int:
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def eventually(fn: Callable[[], Any], timeout: float = 2.0, interval: float = 0.05) -> Any:
    """Call fn until it stops raising ClientError (changes made through the admin CLI reach a
    running server within a poll); re-raise the last error after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except ClientError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)


def parse_error_xml(body: bytes | str) -> dict[str, str]:
    """Parse an S3 error body `<Error><Code>…</Code><Message>…</Message>…</Error>`."""
    if isinstance(body, str):
        body = body.encode()
    assert body.strip(), "expected an S3 XML error body, got an empty body"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:  # pragma: no cover - assertion message
        raise AssertionError(f"error body is not XML ({e}): {body[:500]!r}") from None
    tag = root.tag.split("}")[-1]
    assert tag == "Error", f"root element is <{tag}>, expected <Error>: {body[:500]!r}"
    out = {child.tag.split("}")[-1]: (child.text or "") for child in root}
    assert "Code" in out and out["Code"], f"no <Code> in error body: {body[:500]!r}"
    assert "Message" in out, f"no <Message> in error body: {body[:500]!r}"
    return out


def assert_xml_error(resp: requests.Response, code: str, status: int) -> dict[str, str]:
    assert resp.status_code == status, (
        f"expected HTTP {status} {code}, got {resp.status_code}: {resp.content[:800]!r}"
    )
    err = parse_error_xml(resp.content)
    assert err["Code"] == code, f"expected {code}, got {err['Code']}: {resp.content[:800]!r}"
    return err


class _Signer(S3SigV4Auth):
    """S3 SigV4 header signing with an optional fixed payload hash and a fixed clock."""

    def __init__(self, credentials, region, payload_hash=None, when=None):
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash
        self._when = when

    def payload(self, request):
        if self._payload_hash is not None:
            return self._payload_hash
        return super().payload(request)

    def add_auth(self, request):
        if self._when is None:
            return super().add_auth(request)
        with mock.patch("botocore.auth.get_current_datetime", return_value=self._when):
            return super().add_auth(request)


def sign_headers(
    method: str,
    url: str,
    access_key: str,
    secret_key: str,
    headers: dict | None = None,
    body: bytes = b"",
    payload_hash: str | None = None,
    when: datetime.datetime | None = None,
) -> dict[str, str]:
    """The headers (Authorization, X-Amz-Date, X-Amz-Content-SHA256, plus `headers`) of a
    SigV4-signed S3 request. `url` must be exactly the URL that will be sent."""
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    _Signer(Credentials(access_key, secret_key), REGION, payload_hash=payload_hash, when=when).add_auth(req)
    return dict(req.headers.items())


class SlowPut(threading.Thread):
    """PUT `chunks` to a (presigned) URL with `delay` seconds between chunks, on a thread.

    `Content-Length` is announced up front. `progress` is set once `signal_after` chunks are
    on the wire (or when the thread ends). Afterwards: `status`/`body`, or `error`."""

    def __init__(self, url: str, chunks: list[bytes], delay: float, signal_after: int = 1):
        super().__init__(daemon=True)
        self.url = url
        self.chunks = chunks
        self.delay = delay
        self.signal_after = signal_after
        self.progress = threading.Event()
        self.sent = 0
        self.status: int | None = None
        self.body: bytes | None = None
        self.headers: dict[str, str] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            parts = urlsplit(self.url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            target = parts.path + (("?" + parts.query) if parts.query else "")
            conn.putrequest("PUT", target, skip_accept_encoding=True)
            conn.putheader("Content-Length", str(sum(len(c) for c in self.chunks)))
            conn.endheaders()
            for i, chunk in enumerate(self.chunks):
                conn.send(chunk)
                self.sent += 1
                if self.sent == self.signal_after:
                    self.progress.set()
                if i + 1 < len(self.chunks):
                    time.sleep(self.delay)
            resp = conn.getresponse()
            self.status = resp.status
            self.headers = {k.lower(): v for k, v in resp.getheaders()}
            self.body = resp.read()
            conn.close()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.error = e
        finally:
            self.progress.set()


def files_under(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """Relative path → size of every regular file under root, skipping top-level `exclude` dirs."""
    out: dict[str, int] = {}
    if not root.exists():
        return out
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if rel.parts and rel.parts[0] in exclude:
            continue
        if p.is_file():
            out[str(rel)] = p.stat().st_size
    return out


# --------------------------------------------------------------------------------------
# secrets the suite sees: no server log may contain any of them
# --------------------------------------------------------------------------------------

# Every secret a test handled (value → what it is): access keys' secrets, the admin's secret,
# STS secrets and session tokens, bearer tokens' signatures, share links' MACs, the server
# key, cloud tier keys, a database password. At the end of the session every server's log
# is scanned for all of them (`pytest_sessionfinish`); a hit fails the run.
SECRETS: dict[str, str] = {}
# Every server started, for that scan.
ALL_SERVERS: list["CofferServer"] = []
# Shorter values are too likely to occur by chance (and none of coffer's secrets is).
MIN_SECRET_LEN = 12
_SECRET_FIELDS = {
    "secret_access_key": "an access key's secret",
    "SecretAccessKey": "an STS secret access key",
    "SessionToken": "an STS session token",
    "session_token": "a session token",
    "WebIdentityToken": "a web identity token",
    "access_token": "an access token",
    "id_token": "an ID token",
    "refresh_token": "a refresh token",
    "password": "a password",
}
_SHARE_PATH = "/api/v1/share/"


def register_secret(value: Any, what: str) -> None:
    """Remember a secret the suite handled, so that the log scan looks for it."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LEN:
        return
    SECRETS.setdefault(value, what)
    if value.count(".") == 2 and value.startswith(("eyJ", "v1.")):
        # A JWT or a coffer session token: its signature alone is a secret too (a log line
        # with a cut-down token still must not carry it).
        register_secret(value.rsplit(".", 1)[1], what + " (its signature)")


def register_share_token(url_or_path: str) -> None:
    """A share link's URL or path: its MAC is the secret part."""
    if _SHARE_PATH not in url_or_path:
        return
    token = url_or_path.split(_SHARE_PATH, 1)[1].split("/", 1)[0].split("?", 1)[0]
    if "." in token:
        register_secret(token.split(".", 1)[1], "a share link's token")


def harvest_secrets(obj: Any) -> None:
    """Register the secrets found in a parsed JSON answer (or an STS result)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str):
                if k in _SECRET_FIELDS:
                    register_secret(v, _SECRET_FIELDS[k])
                elif k in ("url", "path"):
                    register_share_token(v)
            else:
                harvest_secrets(v)
    elif isinstance(obj, list):
        for v in obj:
            harvest_secrets(v)


def register_env_secrets(env: dict[str, str]) -> None:
    """Secrets passed to a server in its environment (not ids: `…ACCESS_KEY`, `…_ID`)."""
    for name, value in env.items():
        upper = name.upper()
        if not upper.startswith(("COFFER_", "AWS_", "AZURE_", "GOOGLE_")):
            continue
        if upper.endswith(("ACCESS_KEY", "ACCESS_KEY_ID", "_ID", "_FILE", "_ENV")):
            continue
        if any(w in upper for w in ("SECRET", "PASSWORD", "TOKEN")) or upper.endswith("_KEY"):
            register_secret(value, f"${name}")


def _install_secret_hooks() -> None:
    """Harvest secrets from every HTTP exchange of `requests` (bearer tokens sent, JSON
    answers such as new keys and share links) and every boto3 call (STS credentials, web
    identity tokens), whichever test makes it."""
    import botocore.client

    if getattr(requests.Session.send, "_coffer_secrets", False):
        return
    original_send = requests.Session.send

    def send(self, request, **kw):
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            register_secret(auth[len("Bearer ") :].strip(), "a bearer token")
        register_share_token(request.url or "")
        resp = original_send(self, request, **kw)
        ctype = resp.headers.get("content-type", "")
        if not kw.get("stream") and "json" in ctype and len(resp.content) < 4 * MiB:
            with contextlib.suppress(ValueError):
                harvest_secrets(resp.json())
        return resp

    send._coffer_secrets = True
    requests.Session.send = send

    original_call = botocore.client.BaseClient._make_api_call

    def make_api_call(self, operation_name, api_params):
        harvest_secrets(api_params)
        result = original_call(self, operation_name, api_params)
        harvest_secrets(result)
        return result

    botocore.client.BaseClient._make_api_call = make_api_call


def find_secrets_in_logs(paths: list[Path], secrets: dict[str, str]) -> list[str]:
    """Every (file, line) where one of `secrets` appears, described."""
    hits = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            continue
        for secret, what in secrets.items():
            if secret not in text:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if secret in line:
                    shown = line if len(line) < 400 else line[:400] + "…"
                    hits.append(f"{path}:{n}: {what} ({secret[:6]}…) in: {shown}")
                    break
    return hits


def pytest_configure(config):
    _install_secret_hooks()
    url = os.environ.get("COFFER_TEST_PG_URL", DEFAULT_PG_URL)
    password = urlsplit(url).password
    if password:
        register_secret(password, "the PostgreSQL password")


# --------------------------------------------------------------------------------------
# metadata stores
# --------------------------------------------------------------------------------------


def pg_admin_url() -> str:
    return os.environ.get("COFFER_TEST_PG_URL", DEFAULT_PG_URL)


def _psql(url: str, sql: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_PG_STATUS: dict[str, str | None] = {}


def postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not (checked once per session)."""
    if "problem" not in _PG_STATUS:
        url = pg_admin_url()
        if shutil.which("psql") is None:
            _PG_STATUS["problem"] = "the psql CLI is not installed"
        else:
            try:
                r = _psql(url, "select 1", timeout=10)
                _PG_STATUS["problem"] = (
                    None if r.returncode == 0 else f"psql {url!r} failed: {r.stderr.strip() or r.stdout.strip()}"
                )
            except subprocess.TimeoutExpired:
                _PG_STATUS["problem"] = f"psql {url!r} timed out"
    return _PG_STATUS["problem"]


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    msg = f"PostgreSQL is unreachable ({problem}); set COFFER_TEST_PG_URL to a server with trust auth"
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " — CI=true, so the postgres-parametrized tests fail instead of skipping", pytrace=False)
    pytest.skip(msg)


class Store:
    """One metadata store: a SQLite file in the tmpdir, or a fresh PostgreSQL database."""

    def __init__(self, kind: str, tmpdir: Path):
        self.kind = kind
        self.db_name: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite://{tmpdir / 'coffer.db'}"
        elif kind == "postgres":
            require_postgres()
            self.db_name = f"coffer_t_{uuid.uuid4().hex[:16]}"
            r = _psql(pg_admin_url(), f'CREATE DATABASE "{self.db_name}"')
            if r.returncode != 0:
                pytest.fail(f"CREATE DATABASE {self.db_name} failed: {r.stderr}", pytrace=False)
            parts = urlsplit(pg_admin_url())
            self.url = urlunsplit((parts.scheme, parts.netloc, "/" + self.db_name, "", ""))
        else:  # pragma: no cover
            raise ValueError(kind)

    def drop(self) -> None:
        if self.db_name:
            _psql(pg_admin_url(), f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self.db_name = None


# --------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------


class AdminError(Exception):
    pass


class CofferServer:
    """A `coffer serve` process plus everything needed to talk to it."""

    def __init__(self, binary: Path, store: Store, base: Path, data_dir: Path | None = None):
        """`base` holds the logs; `data_dir` (default `base/data`) the server key and the
        objects — replicas of one deployment share it (and the store)."""
        self.binary = binary
        self.store = store
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or base / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.admin_access_key = "AKCOFFER" + uuid.uuid4().hex[:12].upper()
        self.admin_secret_key = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        register_secret(self.admin_secret_key, "the bootstrap admin's secret key")
        ALL_SERVERS.append(self)
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.runs = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self.log_paths: list[Path] = []
        # Variables of the server's own (the cloud tier's credentials under COFFER_TEST_TIER).
        self.extra_env: dict[str, str] = {}

    # -- process control ------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["COFFER_ADMIN_ACCESS_KEY"] = self.admin_access_key
        env["COFFER_ADMIN_SECRET_KEY"] = self.admin_secret_key
        return env

    def start(self) -> "CofferServer":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        for attempt in range(3):
            self.runs += 1
            self.port = free_port()
            self.stdout_path = self.base / f"server.{self.runs}.stdout.log"
            self.stderr_path = self.base / f"server.{self.runs}.stderr.log"
            self.log_paths += [self.stdout_path, self.stderr_path]
            cmd = [
                str(self.binary),
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--data-dir",
                str(self.data_dir),
                "--database-url",
                self.store.url,
                "--log-format",
                "json",
            ]
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env())
            if self._wait_ready():
                register_env_secrets(self.extra_env)
                key_file = self.data_dir / "server.key"
                if key_file.is_file():
                    register_secret(key_file.read_text().strip(), "the server key")
                return self
            # another process took the port between our probe and the server's bind: retry
            if attempt == 2 or "in use" not in tail(self.stderr_path).lower():
                break
        pytest.fail(
            f"coffer serve exited with code {self.proc.returncode} before it was ready\n{self.describe_logs()}",
            pytrace=False,
        )

    def _wait_ready(self) -> bool:
        """True once /readyz answers 200; False if the process exits first."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                r = requests.get(self.endpoint + "/readyz", timeout=2)
                if r.status_code == 200:
                    return True
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"coffer serve was not ready within {READY_TIMEOUT:.0f} s (last /readyz: {last})\n{self.describe_logs()}",
            pytrace=False,
        )

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, wait, SIGKILL if needed. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def restart(self) -> "CofferServer":
        self.stop()
        return self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.store.drop()

    # -- logs -----------------------------------------------------------------------

    def describe_logs(self, limit: int = 12000) -> str:
        parts = []
        for p in self.log_paths[-4:]:
            parts.append(f"----- {p.name} ({self.store.kind}) -----\n{tail(p, limit)}")
        return "\n".join(parts)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def wait_log(self, found: Callable[[str], Any], timeout: float = 5.0) -> str:
        """The server's log once `found(text)` is true: the server writes its lines in batches,
        at most 10 ms after they are logged. Fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if found(text):
                return text
            if time.monotonic() >= deadline:
                raise AssertionError(f"not in the server's log within {timeout} s:\n{text[-3000:]}")
            time.sleep(0.02)

    def wait_records(self, found: Callable[[list[dict]], Any], timeout: float = 5.0) -> list[dict]:
        """`log_records()` once `found(records)` is true (see `wait_log`)."""
        records: list[dict] = []

        def check(_text: str) -> Any:
            nonlocal records
            records = self.log_records()
            return found(records)

        self.wait_log(check, timeout)
        return records

    def log_records(self) -> list[dict]:
        """Every JSON object logged on stdout or stderr, across runs."""
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    # -- admin CLI ------------------------------------------------------------------

    def admin_raw(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [
            str(self.binary),
            "admin",
            "--data-dir",
            str(self.data_dir),
            "--database-url",
            self.store.url,
            "--json",
            *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=self.env())

    def admin(self, *args: str) -> Any:
        """Run `coffer admin … --json ARGS`, expect exit code 0, return the parsed JSON."""
        r = self.admin_raw(*args)
        if r.returncode != 0:
            raise AdminError(
                f"coffer admin {' '.join(args)} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
            )
        try:
            answer = json.loads(r.stdout)
        except ValueError:
            raise AdminError(f"coffer admin {' '.join(args)} printed no JSON: {r.stdout!r} (stderr {r.stderr!r})")
        harvest_secrets(answer)
        return answer

    def admin_fails(self, *args: str) -> str:
        """Run an admin command that must fail: exit code 1, stderr starting with `error:`."""
        r = self.admin_raw(*args)
        assert r.returncode == 1, f"expected exit code 1 from coffer admin {args}, got {r.returncode}: {r.stdout} {r.stderr}"
        assert r.stderr.lstrip().startswith("error:"), f"stderr should start with 'error:': {r.stderr!r}"
        return r.stderr

    # -- clients --------------------------------------------------------------------

    def client(self, access_key: str, secret_key: str, signature_version: str = "s3v4"):
        return s3_client(self.endpoint, access_key, secret_key, signature_version)

    def admin_client(self):
        return self.client(self.admin_access_key, self.admin_secret_key)

    def key_client(self, user: str, *key_args: str, probe: bool = True):
        """A client for a fresh key of `user` (`key create --user USER KEY_ARGS…`).

        The key's JSON is attached as `client.coffer_key`, the user name as `client.coffer_user`.
        With `probe`, waits until the server accepts the key (ListBuckets)."""
        key = self.admin("key", "create", "--user", user, *key_args)
        c = self.client(key["access_key_id"], key["secret_access_key"])
        c.coffer_key = key
        c.coffer_user = user
        if probe:
            eventually(c.list_buckets)
        return c

    def create_user(self, name: str | None = None, groups=(), clearance=None) -> dict:
        name = name or unique("u")
        args = ["user", "create", name]
        for g in groups:
            args += ["--group", g]
        if clearance:
            args += ["--clearance", ",".join(clearance)]
        return self.admin(*args)

    def new_user(self, name: str | None = None, groups=(), clearance=None):
        """Create a user and return a boto3 client with a fresh key for it."""
        user = self.create_user(name, groups, clearance)
        return self.key_client(user["name"])


def configured_server(binary: Path, kind: str, base: Path, toml: str) -> Iterator[CofferServer]:
    """A server (and its admin CLI) run with a configuration file holding `toml` (plus, under
    COFFER_TEST_TIER, its default tier on the emulator unless `toml` configures tiers)."""
    config = base / "coffer.toml"
    tier = emulators.selected()
    if tier and "[tiers." not in toml:
        toml = emulators.emulator(tier).tier_toml() + toml
    config.write_text(toml)
    old = os.environ.get("COFFER_CONFIG")
    os.environ["COFFER_CONFIG"] = str(config)  # read by `serve` and by `admin`
    try:
        yield from _server(binary, kind, base)
    finally:
        if old is None:
            os.environ.pop("COFFER_CONFIG", None)
        else:
            os.environ["COFFER_CONFIG"] = old


def _server(binary: Path, kind: str, base: Path) -> Iterator[CofferServer]:
    tier = emulators.selected()
    if tier and "COFFER_CONFIG" not in os.environ:
        yield from configured_server(binary, kind, base, "")
        return
    store = Store(kind, base)
    srv = CofferServer(binary, store, base)
    if tier:
        srv.extra_env.update(emulators.emulator(tier).env)
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def coffer_bin() -> Path:
    return find_binary()


@pytest.fixture(scope="module", params=STORES)
def server(request, coffer_bin, tmp_path_factory) -> Iterator[CofferServer]:
    """A shared server per test module and store; tests use unique bucket and user names."""
    yield from _server(coffer_bin, request.param, tmp_path_factory.mktemp(f"coffer-{request.param}"))


@pytest.fixture(params=STORES)
def own_server(request, coffer_bin, tmp_path_factory) -> Iterator[CofferServer]:
    """A server of the test's own, for tests that stop, kill or restart it."""
    yield from _server(coffer_bin, request.param, tmp_path_factory.mktemp(f"coffer-own-{request.param}"))


@pytest.fixture(scope="module")
def admin(server) -> Callable[..., Any]:
    """`admin("user", "list")` → parsed JSON of `coffer admin --json user list`."""
    return server.admin


@pytest.fixture(scope="module")
def admin_s3(server):
    """A boto3 client for the bootstrap platform admin."""
    return server.admin_client()


@pytest.fixture
def make_user(server) -> Callable[..., Any]:
    """make_user(name=None, groups=(), clearance=None) → boto3 client with a fresh key.

    The client carries `.coffer_user` (the user's name) and `.coffer_key` (the key's JSON)."""

    def _make(name: str | None = None, groups=(), clearance=None):
        return server.new_user(name, groups, clearance)

    return _make


@pytest.fixture(scope="module")
def s3(server):
    """A module-wide ordinary user (not the platform admin) who creates and owns buckets."""
    return server.new_user(unique("owner"))


@pytest.fixture
def bucket(s3) -> str:
    """A fresh empty bucket owned by `s3`."""
    name = unique("b")
    s3.create_bucket(Bucket=name)
    return name


# --------------------------------------------------------------------------------------
# show the server's logs with failing tests
# --------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        seen = set()
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, CofferServer) and id(value) not in seen:
                seen.add(id(value))
                report.sections.append((f"coffer server logs ({value.store.kind})", value.describe_logs(6000)))


def pytest_sessionfinish(session, exitstatus):
    emulators.stop_all()
    # No secret the suite handled may appear in any server's log.
    paths = [p for srv in ALL_SERVERS for p in srv.log_paths]
    hits = find_secrets_in_logs(paths, SECRETS)
    if hits:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"SECRETS IN LOGS: {len(hits)} server log line(s) contain a secret the tests used "
            f"({len(SECRETS)} secrets checked in {len(paths)} log files):\n  " + "\n  ".join(hits[:50])
        )
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
