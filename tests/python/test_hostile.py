"""Hostile clients against the real binary: huge request heads, bodies over the limits, and
slowloris (clients that trickle their headers, or connect and send nothing). Each gets its
answer (431, 413, 400) or a closed connection within a bounded time, and a normal client is
still served while 200 slow connections are open. The limits are those of
crates/coffer/src/listener.rs and the REST API's JSON body limit (docs/SECURITY.md).

These are transport-level behaviours, independent of the metadata store: SQLite only."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time

import pytest
import requests

from conftest import _server, sign_headers, unique

# The listener's limits (crates/coffer/src/listener.rs, `Limits::default`).
HEADER_READ_TIMEOUT = 10.0
JSON_BODY_LIMIT = 64 * 1024
# How long past a limit the server may take to act on it.
SLACK = 5.0


@pytest.fixture(scope="module")
def hostile_server(coffer_bin, tmp_path_factory):
    yield from _server(coffer_bin, "sqlite", tmp_path_factory.mktemp("coffer-hostile"))


def raw_exchange(port: int, payload: bytes, timeout: float = 15.0) -> tuple[bytes, float]:
    """Send `payload` on a fresh connection and read until the server closes it (or answers
    and `timeout` passes). Returns what came back and how long it took."""
    started = time.monotonic()
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return out, time.monotonic() - started


def status_line(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode(errors="replace")


def still_serves(srv) -> None:
    r = requests.get(srv.endpoint + "/healthz", timeout=5)
    assert r.status_code == 200


def test_a_megabyte_of_headers_is_refused(hostile_server):
    srv = hostile_server
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024) + b"\r\n\r\n"
    answer, took = raw_exchange(srv.port, head)
    assert answer == b"" or status_line(answer).startswith("HTTP/1.1 431"), answer[:200]
    assert took < SLACK, took
    still_serves(srv)


def test_ten_thousand_headers_are_refused(hostile_server):
    srv = hostile_server
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
    answer, took = raw_exchange(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer == b"" or status_line(answer).startswith("HTTP/1.1 431"), answer[:200]
    assert took < SLACK, took
    still_serves(srv)


def test_a_head_just_under_the_limits_is_served(hostile_server):
    srv = hostile_server
    headers = {f"x-extra-{i}": "v" * 100 for i in range(50)}  # ~6 KiB, 50 headers
    r = requests.get(srv.endpoint + "/healthz", headers=headers, timeout=5)
    assert r.status_code == 200


def signed_rest(srv, method: str, path: str, body: bytes, content_type: str = "application/json"):
    url = srv.endpoint + path
    headers = sign_headers(
        method,
        url,
        srv.admin_access_key,
        srv.admin_secret_key,
        headers={"content-type": content_type},
        body=body,
        payload_hash="UNSIGNED-PAYLOAD",
    )
    return requests.request(method, url, data=body, headers=headers, timeout=15)


def test_rest_json_bodies_over_the_limit_get_413(hostile_server):
    srv = hostile_server
    big = json.dumps({"name": unique("big"), "tier": "x" * (JSON_BODY_LIMIT + 1024)}).encode()
    r = signed_rest(srv, "POST", "/api/v1/buckets", big)
    assert r.status_code == 413, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    assert r.json()["status"] == 413
    # Far over the limit too: refused without reading it all.
    huge = b'{"name": "' + b"a" * (16 * 1024 * 1024) + b'"}'
    started = time.monotonic()
    try:
        r = signed_rest(srv, "POST", "/api/v1/buckets", huge)
        assert r.status_code == 413, r.text[:300]
    except requests.ConnectionError:
        pass  # answered 413 and closed while the client was still sending
    assert time.monotonic() - started < 10
    # Under the limit: read, and judged on its content.
    ok = signed_rest(srv, "POST", "/api/v1/buckets", json.dumps({"name": unique("small")}).encode())
    assert ok.status_code == 201, ok.text
    still_serves(srv)


def test_rest_object_uploads_are_streamed_not_limited(hostile_server):
    srv = hostile_server
    name = unique("up")
    assert signed_rest(srv, "POST", "/api/v1/buckets", json.dumps({"name": name}).encode()).status_code == 201
    data = b"x" * (3 * 1024 * 1024)  # past any JSON limit and axum's 2 MiB default
    r = signed_rest(srv, "PUT", f"/api/v1/buckets/{name}/objects/big.bin", data, "application/octet-stream")
    assert r.status_code == 201, r.text
    assert r.json()["size"] == len(data)


def test_sts_bodies_over_the_limit_get_413(hostile_server):
    srv = hostile_server
    body = b"Action=AssumeRoleWithWebIdentity&WebIdentityToken=" + b"a" * (128 * 1024)
    r = requests.post(
        srv.endpoint + "/",
        data=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=15,
    )
    assert r.status_code == 413, r.text[:300]


def test_s3_puts_over_the_object_limit_are_refused_before_the_body(hostile_server):
    srv = hostile_server
    s3 = srv.admin_client()
    bucket = unique("big")
    s3.create_bucket(Bucket=bucket)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    target = url.split(f":{srv.port}", 1)[1]
    started = time.monotonic()
    conn.putrequest("PUT", target, skip_accept_encoding=True)
    conn.putheader("Content-Length", str(100 * 1024**4))  # 100 TiB, never sent
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 400 and b"EntityTooLarge" in body, (resp.status, body[:300])
    assert time.monotonic() - started < SLACK


class Slowloris:
    """`count` connections: half trickle a request head one byte per second, half connect
    and send nothing. Records when the server closes each."""

    def __init__(self, port: int, count: int):
        self.socks: dict[socket.socket, dict] = {}
        self.started = time.monotonic()
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            trickle = i % 2 == 0
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 if trickle else b""
            self.socks[s] = {"head": head, "sent": 0, "closed_at": None}

    def step(self) -> None:
        """Send the next byte on each trickling connection; note the closed ones."""
        now = time.monotonic() - self.started
        open_socks = [s for s, st in self.socks.items() if st["closed_at"] is None]
        if open_socks:
            readable, _, _ = select.select(open_socks, [], [], 0)
            for s in readable:
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    self.socks[s]["closed_at"] = now
                else:
                    self.socks[s].setdefault("answer", b"")
                    self.socks[s]["answer"] += data
        for s, st in self.socks.items():
            if st["closed_at"] is None and st["sent"] < len(st["head"]):
                try:
                    s.send(st["head"][st["sent"] : st["sent"] + 1])
                    st["sent"] += 1
                except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                    st["closed_at"] = now

    def open_count(self) -> int:
        return sum(1 for st in self.socks.values() if st["closed_at"] is None)

    def close(self) -> None:
        for s in self.socks:
            s.close()


def test_slowloris_is_cut_off_and_others_are_served(hostile_server):
    srv = hostile_server
    s3 = srv.admin_client()
    bucket = unique("during")
    s3.create_bucket(Bucket=bucket)
    attack = Slowloris(srv.port, 200)
    try:
        served = []
        deadline = attack.started + HEADER_READ_TIMEOUT + SLACK + 2
        while time.monotonic() < deadline and attack.open_count() > 0:
            attack.step()
            # A normal client, during the attack: served promptly, every time.
            t0 = time.monotonic()
            r = requests.get(srv.endpoint + "/healthz", timeout=5)
            assert r.status_code == 200
            s3.put_object(Bucket=bucket, Key=f"k{len(served)}", Body=b"during the attack")
            served.append(time.monotonic() - t0)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        still_open = attack.open_count()
        closed = [st["closed_at"] for st in attack.socks.values() if st["closed_at"] is not None]
        answered_ok = [st for st in attack.socks.values() if b" 200 " in st.get("answer", b"")[:20]]
    finally:
        attack.close()
    assert still_open == 0, f"{still_open} slow connections still open after {HEADER_READ_TIMEOUT + SLACK + 2:.0f} s"
    assert max(closed) <= HEADER_READ_TIMEOUT + SLACK, f"the last slow connection was cut after {max(closed):.1f} s"
    assert not answered_ok, "a trickled request head was answered as if complete"
    assert served and max(served) < 3.0, f"normal requests took up to {max(served):.1f} s during the attack"
    still_serves(srv)
