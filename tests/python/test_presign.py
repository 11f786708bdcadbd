"""Presigned URLs (SigV4 query authentication)."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from conftest import assert_xml_error


def _with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, (value if k == name else v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_presigned_get(s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"presigned content", ContentType="text/plain")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared.txt"}, ExpiresIn=300)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.content == b"presigned content"
    assert r.headers.get("Content-Type") == "text/plain"
    assert r.headers.get("ETag")


def test_presigned_head_uses_its_own_method(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    url = s3.generate_presigned_url("head_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    r = requests.head(url, timeout=10)
    assert r.status_code == 200
    assert r.headers.get("Content-Length") == "5"
    # a URL signed for HEAD does not allow a PUT
    r = requests.put(url, data=b"overwrite", timeout=10)
    assert_xml_error(r, "SignatureDoesNotMatch", 403)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"12345"


def test_presigned_put(s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded.bin"}, ExpiresIn=300)
    body = bytes(range(256)) * 40
    r = requests.put(url, data=body, timeout=10)
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket=bucket, Key="uploaded.bin")
    assert got["Body"].read() == body


def test_tampered_signature(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=300)
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    bad_sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    r = requests.get(_with_param(url, "X-Amz-Signature", bad_sig), timeout=10)
    assert_xml_error(r, "SignatureDoesNotMatch", 403)
    assert b"secret" not in r.content

    # tampering with a signed parameter is caught as well
    r = requests.get(_with_param(url, "X-Amz-Expires", "600"), timeout=10)
    assert_xml_error(r, "SignatureDoesNotMatch", 403)

    # and the untouched URL works (so the refusals above are about the tampering)
    assert requests.get(url, timeout=10).content == b"secret"


def test_presigned_url_for_another_key_is_refused(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"A")
    s3.put_object(Bucket=bucket, Key="b", Body=b"B")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"}, ExpiresIn=300)
    parts = urlsplit(url)
    other = urlunsplit(parts._replace(path=parts.path[:-1] + "b"))
    r = requests.get(other, timeout=10)
    assert_xml_error(r, "SignatureDoesNotMatch", 403)


def test_expired_presigned_url(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"short-lived")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=1)
    time.sleep(2.1)
    r = requests.get(url, timeout=10)
    assert_xml_error(r, "AccessDenied", 403)
    assert b"short-lived" not in r.content
