"""Protocol-level errors: clock skew, oversized bodies, and the shape of error responses."""

from __future__ import annotations

import datetime
import socket
import time

import requests

from conftest import assert_xml_error, parse_error_xml, s3_error, sign_headers, unique


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _signed_get(server, client, path, when=None):
    url = server.endpoint + path
    key = client.coffer_key
    headers = sign_headers("GET", url, key["access_key_id"], key["secret_access_key"], when=when)
    return requests.get(url, headers=headers, timeout=10)


def test_signer_control(server, s3, bucket):
    """The hand-made signature used below is accepted when the clock is right."""
    r = _signed_get(server, s3, f"/{bucket}?list-type=2", when=_utcnow())
    assert r.status_code == 200, r.text
    r = _signed_get(server, s3, "/")
    assert r.status_code == 200, r.text


def test_request_time_too_skewed(server, s3, bucket):
    for delta in (datetime.timedelta(minutes=-20), datetime.timedelta(minutes=20)):
        r = _signed_get(server, s3, f"/{bucket}?list-type=2", when=_utcnow() + delta)
        assert_xml_error(r, "RequestTimeTooSkewed", 403)


def _read_http_response(sock: socket.socket, deadline: float) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1."), f"not an HTTP response: {data[:300]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        want = int(headers["content-length"])
        while len(body) < want and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while not body.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body = _dechunk(body)
    return status, headers, body


def _dechunk(raw: bytes) -> bytes:
    out = b""
    while raw:
        size_line, _, rest = raw.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        raw = rest[size + 2 :]
    return out


def test_entity_too_large_is_refused_promptly(server, s3, bucket):
    host = f"127.0.0.1:{server.port}"
    path = f"/{bucket}/huge"
    url = server.endpoint + path
    key = s3.coffer_key
    announced = 5 * 1024 * 1024 * 1024 + 1  # 5 GiB + 1
    headers = sign_headers(
        "PUT",
        url,
        key["access_key_id"],
        key["secret_access_key"],
        headers={"Content-Length": str(announced), "Content-Type": "application/octet-stream"},
        payload_hash="UNSIGNED-PAYLOAD",
    )
    assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    request = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\n"
    for k, v in headers.items():
        request += f"{k}: {v}\r\n"
    request += "\r\n"

    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode() + b"x" * 4096)
        status, resp_headers, body = _read_http_response(sock, deadline=t0 + 10)
    elapsed = time.monotonic() - t0
    assert status == 400, f"expected 400 EntityTooLarge, got {status}: {body[:500]!r}"
    assert parse_error_xml(body)["Code"] == "EntityTooLarge", body
    assert elapsed < 5, f"the refusal took {elapsed:.1f} s"
    assert resp_headers.get("x-amz-request-id")

    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="huge")


def _check_error_shape(r: requests.Response, code: str, status: int):
    err = assert_xml_error(r, code, status)
    ctype = r.headers.get("Content-Type", "")
    assert "xml" in ctype, f"error Content-Type should be XML, got {ctype!r}"
    rid = r.headers.get("x-amz-request-id")
    assert rid, f"no x-amz-request-id on a {code} error"
    if err.get("RequestId"):
        assert err["RequestId"] == rid
    return err


def test_error_bodies_are_s3_xml(server, s3, bucket):
    _check_error_shape(_signed_get(server, s3, f"/{unique('missing')}?list-type=2"), "NoSuchBucket", 404)
    _check_error_shape(_signed_get(server, s3, f"/{bucket}/no-such-key"), "NoSuchKey", 404)
    _check_error_shape(_signed_get(server, s3, f"/{bucket}/some-key?uploadId=nope"), "NoSuchUpload", 404)
    s3.put_object(Bucket=bucket, Key="r", Body=b"abc")
    url = f"{server.endpoint}/{bucket}/r"
    key = s3.coffer_key
    h = sign_headers("GET", url, key["access_key_id"], key["secret_access_key"], headers={"Range": "bytes=10-20"})
    _check_error_shape(requests.get(url, headers=h, timeout=10), "InvalidRange", 416)
    _check_error_shape(requests.get(url, timeout=10), "AccessDenied", 403)
    h = sign_headers("GET", url, "AKNOSUCHKEY000000000", "z" * 40)
    _check_error_shape(requests.get(url, headers=h, timeout=10), "InvalidAccessKeyId", 403)


def _raw_request(method: str, path: str, host: str, headers: dict, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode() + body


def test_refused_put_with_expect_continue_keeps_the_connection_usable(server, s3, bucket):
    """boto3 and the aws CLI send `Expect: 100-continue` with PUTs and, when a final status
    arrives first, do not send the body and reuse the connection. The server must then either
    announce `Connection: close` on that response (RFC 9110 §10.1.1) or answer the next
    request on the connection correctly — not swallow its first bytes as the refused body."""
    host = f"127.0.0.1:{server.port}"
    ro = server.key_client(s3.coffer_user, "--read-only")
    key = ro.coffer_key
    body = b"overwritten"
    for attempt in range(3):
        put_url = f"{server.endpoint}/{bucket}/refused"
        put_headers = sign_headers(
            "PUT",
            put_url,
            key["access_key_id"],
            key["secret_access_key"],
            headers={"Content-Length": str(len(body)), "Expect": "100-continue"},
            body=body,
        )
        list_url = f"{server.endpoint}/{bucket}?list-type=2"
        list_headers = sign_headers("GET", list_url, key["access_key_id"], key["secret_access_key"])
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(_raw_request("PUT", f"/{bucket}/refused", host, put_headers))
            status, headers, resp_body = _read_http_response(sock, deadline=time.monotonic() + 10)
            assert status == 403, (status, resp_body)
            assert parse_error_xml(resp_body)["Code"] == "AccessDenied"
            if "close" in headers.get("connection", "").lower():
                continue
            # like botocore: no body (no 100 Continue was seen), next request on the same connection
            sock.sendall(_raw_request("GET", f"/{bucket}?list-type=2", host, list_headers))
            try:
                status2, _, body2 = _read_http_response(sock, deadline=time.monotonic() + 5)
            except (AssertionError, OSError) as e:
                raise AssertionError(
                    f"attempt {attempt}: the 403 did not say `Connection: close`, yet the next request on the "
                    f"connection got no proper answer ({e!r})"
                ) from None
            assert status2 == 200 and b"ListBucketResult" in body2, (
                f"attempt {attempt}: the request after a refused Expect: 100-continue PUT was answered "
                f"{status2}: {body2[:300]!r} (the server read part of it as the refused body?)"
            )
