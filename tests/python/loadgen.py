"""A small client load for the fault tests: threads doing PUT, GET and HEAD on keys of
their own, with deterministic content per (key, version), recording every answer.

Each answer is a `Record` (start and end times, operation, HTTP status, S3 error code,
`Retry-After`, or the exception when there was no HTTP answer). GETs check the bytes: an
object must hold exactly one version that was written (the last acknowledged one, or one
whose PUT failed or was cut off after it — a failed PUT may or may not have stored).
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
import time
from typing import Callable

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError


def client(endpoint: str, access_key: str, secret_key: str, pool: int = 10):
    """A boto3 S3 client that never retries (`total_max_attempts=1`: conftest's
    `max_attempts=1` still retries once), so every answer of the server is seen."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=pool,
        ),
    )


def content(key: str, version: int, size: int | None = None) -> bytes:
    """The bytes of version `version` of `key`: a header naming both, then a seeded stream."""
    head = f"{key}|{version}|".encode()
    if size is None:
        size = 512 + int.from_bytes(hashlib.sha256(head).digest()[:2], "big") % 16384
    rest = max(0, size - len(head))
    return head + random.Random(head).randbytes(rest)


def version_of(key: str, body: bytes) -> int | None:
    """The version an object's bytes are, or None when they are no version of `key` at all."""
    parts = body.split(b"|", 2)
    if len(parts) < 3 or parts[0] != key.encode():
        return None
    try:
        v = int(parts[1])
    except ValueError:
        return None
    return v if content(key, v, len(body)) == body else None


@dataclasses.dataclass
class Record:
    start: float
    end: float
    op: str
    status: int | None = None
    code: str | None = None
    retry_after: str | None = None
    error: str | None = None
    content_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def duration(self) -> float:
        return self.end - self.start

    def __str__(self) -> str:
        what = self.error or f"HTTP {self.status} {self.code or ''} retry-after={self.retry_after}"
        return f"{self.op} at {self.start:.2f}s took {self.duration:.2f}s: {what}"


class KeyState:
    """What a key may hold: the last acknowledged version, and versions written after it
    whose outcome is unknown."""

    def __init__(self):
        self.acked: int | None = None
        self.maybe: set[int] = set()
        self.next = 1

    def allowed(self) -> set[int]:
        return ({self.acked} if self.acked is not None else set()) | self.maybe


class S3Load:
    """`threads` workers on `bucket`, each with `keys` keys of its own, until `stop()`."""

    def __init__(self, make_client: Callable[[], object], bucket: str, threads: int = 6, keys: int = 4,
                 t0: float | None = None, prefix: str = "load", pause: float = 0.02):
        self.make_client = make_client
        self.bucket = bucket
        self.threads = threads
        self.keys = [[f"{prefix}/w{t}/k{k}" for k in range(keys)] for t in range(threads)]
        self.state = {k: KeyState() for ks in self.keys for k in ks}
        self.records: list[Record] = []
        self.corrupt: list[str] = []
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.pause = pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def seed(self) -> None:
        """Write every key once (must succeed)."""
        c = self.make_client()
        for k, st in self.state.items():
            v = st.next
            st.next += 1
            c.put_object(Bucket=self.bucket, Key=k, Body=content(k, v))
            st.acked = v

    def start(self) -> None:
        for t in range(self.threads):
            w = threading.Thread(target=self._run, args=(t,), daemon=True)
            w.start()
            self._workers.append(w)

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(120)
            assert not w.is_alive(), "a load thread hangs"

    def _record(self, r: Record) -> None:
        with self._lock:
            self.records.append(r)

    def _run(self, t: int) -> None:
        c = self.make_client()
        rng = random.Random(t)
        while not self._stop.is_set():
            key = rng.choice(self.keys[t])
            st = self.state[key]
            op = rng.choice(["put", "get", "get", "head"])
            r = Record(self.now(), 0.0, op)
            try:
                if op == "put":
                    v = st.next
                    st.next += 1
                    st.maybe.add(v)
                    resp = c.put_object(Bucket=self.bucket, Key=key, Body=content(key, v))
                    st.acked, st.maybe = v, {m for m in st.maybe if m > v}
                elif op == "get":
                    resp = c.get_object(Bucket=self.bucket, Key=key)
                    body = resp["Body"].read()
                    got = version_of(key, body)
                    if got is None or got not in st.allowed():
                        self.corrupt.append(f"{key}: read version {got} ({len(body)} bytes), allowed {st.allowed()}")
                else:
                    resp = c.head_object(Bucket=self.bucket, Key=key)
                r.status = resp["ResponseMetadata"]["HTTPStatusCode"]
            except ClientError as e:
                meta = e.response.get("ResponseMetadata", {})
                r.status = meta.get("HTTPStatusCode")
                r.code = e.response.get("Error", {}).get("Code")
                r.retry_after = meta.get("HTTPHeaders", {}).get("retry-after")
            except Exception as e:  # noqa: BLE001 - no HTTP answer: recorded, asserted on
                r.error = f"{type(e).__name__}: {e}"
            r.end = self.now()
            self._record(r)
            time.sleep(self.pause)


class RestLoad:
    """One thread reading objects through the REST API as a user named by trusted headers."""

    def __init__(self, endpoint: str, user: str, bucket: str, keys: list[str], t0: float):
        self.url = f"{endpoint}/api/v1/buckets/{bucket}/objects/"
        self.user = user
        self.keys = keys
        self.t0 = t0
        self.records: list[Record] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _run(self) -> None:
        s = requests.Session()
        rng = random.Random(99)
        while not self._stop.is_set():
            r = Record(time.monotonic() - self.t0, 0.0, "rest-get")
            try:
                resp = s.get(self.url + rng.choice(self.keys), headers={"X-Forwarded-User": self.user}, timeout=60)
                r.status = resp.status_code
                r.retry_after = resp.headers.get("retry-after")
                r.content_type = resp.headers.get("content-type")
            except requests.RequestException as e:
                r.error = f"{type(e).__name__}: {e}"
            r.end = time.monotonic() - self.t0
            self.records.append(r)
            time.sleep(0.05)
