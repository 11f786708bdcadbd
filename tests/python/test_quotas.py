"""Quotas per bucket and per user (bytes and objects), enforced on PutObject, CopyObject and
CompleteMultipartUpload: the request that would exceed a quota is refused (S3
`QuotaExceeded`, 403) and stores nothing. Visible and settable through `coffer admin` and
the REST API. Both stores."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

import requests

from conftest import s3_error, sign_headers, unique

MiB = 1024 * 1024


def settle():
    """Changes made with `coffer admin` reach a running server within a poll (200 ms)."""
    time.sleep(0.6)


def keys(client, bucket) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_bucket_quota_refuses_the_write_that_would_pass_it(server):
    s3 = server.new_user(unique("q"))
    b = unique("qb")
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="existing", Body=b"x" * 1000)
    q = server.admin("quota", "set", "--bucket", b, "--max-bytes", "3000", "--max-objects", "3")
    settle()
    assert q["scope"] == {"kind": "bucket", "name": b} and q["max_bytes"] == 3000
    shown = server.admin("quota", "show", "--bucket", b)
    assert (shown["bytes"], shown["objects"]) == (1000, 1)  # measured when the quota was set

    # within: fine; past the bytes: refused, nothing stored
    s3.put_object(Bucket=b, Key="a", Body=b"a" * 1500)
    with s3_error("QuotaExceeded", 403):
        s3.put_object(Bucket=b, Key="b", Body=b"b" * 600)
    assert sorted(keys(s3, b)) == ["a", "existing"]
    # replacing an object counts only the difference
    s3.put_object(Bucket=b, Key="a", Body=b"A" * 1900)
    assert server.admin("quota", "show", "--bucket", b)["bytes"] == 2900
    # past the objects
    s3.put_object(Bucket=b, Key="small", Body=b"s" * 10)
    with s3_error("QuotaExceeded", 403):
        s3.put_object(Bucket=b, Key="one-more", Body=b"")
    # copies and deletes
    with s3_error("QuotaExceeded", 403):
        s3.copy_object(Bucket=b, Key="a2", CopySource={"Bucket": b, "Key": "a"})
    s3.delete_object(Bucket=b, Key="a")
    assert server.admin("quota", "show", "--bucket", b) == {
        "scope": {"kind": "bucket", "name": b}, "max_bytes": 3000, "max_objects": 3, "bytes": 1010, "objects": 2,
    }
    s3.copy_object(Bucket=b, Key="a2", CopySource={"Bucket": b, "Key": "existing"})
    assert sorted(keys(s3, b)) == ["a2", "existing", "small"]
    # removed: no limit
    server.admin("quota", "remove", "--bucket", b)
    settle()
    s3.put_object(Bucket=b, Key="big", Body=b"z" * 5000)


def test_a_body_of_unannounced_length_is_cut_off_at_the_quota(server):
    s3 = server.new_user(unique("q"))
    b = unique("qc")
    s3.create_bucket(Bucket=b)
    server.admin("quota", "set", "--bucket", b, "--max-bytes", "1M")
    settle()
    key = s3.coffer_key
    # S3 PUTs always announce their length (Content-Length, or x-amz-decoded-content-length);
    # the REST API takes a chunked body of any length.
    url = f"{server.endpoint}/api/v1/buckets/{b}/objects/streamed"
    body = b"y" * (2 * MiB)
    headers = sign_headers("PUT", url, key["access_key_id"], key["secret_access_key"], payload_hash="UNSIGNED-PAYLOAD")
    parts = urlsplit(url)

    def put_chunked():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.putrequest("PUT", parts.path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for i in range(0, len(body), 64 * 1024):
                chunk = body[i : i + 64 * 1024]
                conn.send(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before the whole body is sent
        resp = conn.getresponse()
        return resp.status, resp.read()

    status, text = put_chunked()
    assert status == 403 and b"quota" in text, (status, text)
    assert "streamed" not in keys(s3, b)


def test_a_user_quota_covers_every_bucket_the_user_owns(server):
    user = server.create_user(unique("uq"))["name"]
    s3 = server.key_client(user)
    b1, b2 = unique("u1"), unique("u2")
    s3.create_bucket(Bucket=b1)
    s3.put_object(Bucket=b1, Key="k", Body=b"1" * 400)
    server.admin("quota", "set", "--user", user, "--max-bytes", "1000")
    settle()
    # a bucket made afterwards is counted from its first object
    s3.create_bucket(Bucket=b2)
    s3.put_object(Bucket=b2, Key="k", Body=b"2" * 500)
    with s3_error("QuotaExceeded", 403):
        s3.put_object(Bucket=b1, Key="more", Body=b"3" * 200)
    assert keys(s3, b1) == ["k"]
    shown = server.admin("quota", "show", "--user", user)
    assert (shown["max_bytes"], shown["bytes"], shown["objects"]) == (1000, 900, 2)

    # CompleteMultipartUpload is checked against the parts it names
    part = b"p" * (5 * MiB)
    server.admin("quota", "set", "--user", user, "--max-bytes", "8M")
    settle()
    up = s3.create_multipart_upload(Bucket=b1, Key="mp")
    e1 = s3.upload_part(Bucket=b1, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=part)["ETag"]
    e2 = s3.upload_part(Bucket=b1, Key="mp", UploadId=up["UploadId"], PartNumber=2, Body=part)["ETag"]
    done = {"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}
    with s3_error("QuotaExceeded", 403):
        s3.complete_multipart_upload(Bucket=b1, Key="mp", UploadId=up["UploadId"], MultipartUpload=done)
    assert "mp" not in keys(s3, b1)
    one = {"Parts": [{"PartNumber": 1, "ETag": e1}]}
    s3.complete_multipart_upload(Bucket=b1, Key="mp", UploadId=up["UploadId"], MultipartUpload=one)
    assert server.admin("quota", "show", "--user", user)["bytes"] == 900 + 5 * MiB


def test_quotas_through_the_rest_api(server):
    url = f"{server.endpoint}/api/v1"
    admin = (server.admin_access_key, server.admin_secret_key)
    owner = server.new_user(unique("rq"))
    key = owner.coffer_key
    mine = (key["access_key_id"], key["secret_access_key"])
    b = unique("rqb")
    owner.create_bucket(Bucket=b)
    owner.put_object(Bucket=b, Key="k", Body=b"12345")

    def call(who, method, path, body=b""):
        full = url + path
        extra = {"content-type": "application/json"} if body else {}
        h = sign_headers(method, full, who[0], who[1], extra, body)
        return requests.request(method, full, headers=h, data=body, timeout=10)

    # only the platform admin sets quotas
    r = call(mine, "PUT", f"/buckets/{b}/quota", b'{"max_bytes": 100}')
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = call(admin, "PUT", f"/buckets/{b}/quota", b'{"max_bytes": 100, "max_objects": 10}')
    assert r.status_code == 200, r.text
    assert r.json()["max_bytes"] == 100
    # the owner sees the quota and the usage
    r = call(mine, "GET", f"/buckets/{b}/quota")
    assert r.status_code == 200, r.text
    assert r.json() == {"scope": {"kind": "bucket", "name": b}, "max_bytes": 100, "max_objects": 10, "bytes": 5, "objects": 1}
    # the REST upload is refused the same way
    up = call(mine, "PUT", f"/buckets/{b}/objects/big", b"x" * 200)
    assert up.status_code == 403 and "quota" in up.json()["detail"]
    # user quotas: one's own, or the platform admin's view
    assert call(admin, "PUT", f"/users/{owner.coffer_user}/quota", b'{"max_objects": 50}').status_code == 200
    me = call(mine, "GET", "/me/quota").json()
    assert (me["max_objects"], me["objects"]) == (50, 1)
    assert call(mine, "GET", "/users/someone-else/quota").status_code == 403
    assert call(mine, "DELETE", f"/users/{owner.coffer_user}/quota").status_code == 403
    assert call(admin, "DELETE", f"/users/{owner.coffer_user}/quota").status_code == 204
    assert call(admin, "DELETE", f"/buckets/{b}/quota").status_code == 204
    assert call(admin, "DELETE", f"/buckets/{b}/quota").status_code == 404
    assert call(admin, "PUT", f"/buckets/{b}/quota", b"{}").status_code == 400
    assert call(admin, "PUT", f"/buckets/{b}/quota", b'{"max_bytes": -1}').status_code == 400
    lst = server.admin("quota", "list")
    assert all(q["scope"]["name"] != b for q in lst)
