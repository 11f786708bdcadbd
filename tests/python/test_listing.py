"""Listing: ListObjects (V1), ListObjectsV2, ListObjectVersions — prefixes, delimiters,
pagination, encoding."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import unquote_plus

import pytest
import requests

from conftest import sign_headers, unique

KEYS = (
    [f"file{i:02d}.txt" for i in range(15)]
    + ["dir1/a", "dir1/b", "dir1/sub/c", "dir2/x", "dir2/y"]
    + ["logs-2024-01", "logs-2024-02", "logs-2025-01"]
    + ["z space", "zz/ünï"]
)
SORTED = sorted(KEYS, key=lambda k: k.encode())


def _bytes_sorted(items):
    return sorted(items, key=lambda k: k.encode())


@pytest.fixture(scope="module")
def listing(s3):
    """A bucket holding KEYS; the body of each key is the key itself."""
    name = unique("list")
    s3.create_bucket(Bucket=name)
    for k in KEYS:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    return name


def _keys(resp):
    return [o["Key"] for o in resp.get("Contents", [])]


def _prefixes(resp):
    return [p["Prefix"] for p in resp.get("CommonPrefixes", [])]


def test_v2_lists_everything_in_order(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing)
    assert len(KEYS) == 25
    assert _keys(resp) == SORTED
    assert resp["KeyCount"] == 25
    assert resp["IsTruncated"] is False
    for o in resp["Contents"]:
        assert o["Size"] == len(o["Key"].encode())
        assert o["ETag"].startswith('"') and len(o["ETag"]) == 34


def test_v1_lists_everything_in_order(s3, listing):
    resp = s3.list_objects(Bucket=listing)
    assert _keys(resp) == SORTED
    assert resp["IsTruncated"] is False


def test_prefix(s3, listing):
    assert _keys(s3.list_objects_v2(Bucket=listing, Prefix="dir1/")) == ["dir1/a", "dir1/b", "dir1/sub/c"]
    assert _keys(s3.list_objects(Bucket=listing, Prefix="dir1/")) == ["dir1/a", "dir1/b", "dir1/sub/c"]
    assert _keys(s3.list_objects_v2(Bucket=listing, Prefix="logs-2024")) == ["logs-2024-01", "logs-2024-02"]
    empty = s3.list_objects_v2(Bucket=listing, Prefix="nothing-here/")
    assert empty["KeyCount"] == 0 and not empty.get("Contents") and empty["IsTruncated"] is False


def test_delimiter_slash(s3, listing):
    top_keys = [k for k in SORTED if "/" not in k]
    for resp in (
        s3.list_objects_v2(Bucket=listing, Delimiter="/"),
        s3.list_objects(Bucket=listing, Delimiter="/"),
    ):
        assert _keys(resp) == top_keys
        assert _prefixes(resp) == ["dir1/", "dir2/", "zz/"]
        assert resp["IsTruncated"] is False

    resp = s3.list_objects_v2(Bucket=listing, Prefix="dir1/", Delimiter="/")
    assert _keys(resp) == ["dir1/a", "dir1/b"]
    assert _prefixes(resp) == ["dir1/sub/"]
    assert resp["KeyCount"] == 3


def test_other_delimiter(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing, Prefix="logs-", Delimiter="-")
    assert _keys(resp) == []
    assert _prefixes(resp) == ["logs-2024-", "logs-2025-"]

    resp = s3.list_objects(Bucket=listing, Delimiter="-")
    assert _prefixes(resp) == ["logs-"]
    assert _keys(resp) == [k for k in SORTED if "-" not in k]


def test_max_keys(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing, MaxKeys=7)
    assert _keys(resp) == SORTED[:7]
    assert resp["KeyCount"] == 7
    assert resp["MaxKeys"] == 7
    assert resp["IsTruncated"] is True
    assert resp.get("NextContinuationToken")

    resp = s3.list_objects(Bucket=listing, MaxKeys=7)
    assert _keys(resp) == SORTED[:7]
    assert resp["IsTruncated"] is True


def test_v2_pagination_with_continuation_token(s3, listing):
    pages, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        resp = s3.list_objects_v2(Bucket=listing, MaxKeys=7, **kw)
        pages.append(_keys(resp))
        assert resp["KeyCount"] == len(pages[-1])
        if not resp["IsTruncated"]:
            assert not resp.get("NextContinuationToken")
            break
        token = resp["NextContinuationToken"]
        assert token
        assert len(pages) < 10, "pagination does not end"
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [k for p in pages for k in p] == SORTED


def test_v2_start_after(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing, StartAfter=SORTED[10])
    assert _keys(resp) == SORTED[11:]
    assert resp["StartAfter"] == SORTED[10]

    # a StartAfter that is not itself a key
    resp = s3.list_objects_v2(Bucket=listing, StartAfter="dir1/aa")
    assert _keys(resp) == [k for k in SORTED if k.encode() > b"dir1/aa"]

    # StartAfter together with pagination
    pages, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        resp = s3.list_objects_v2(Bucket=listing, MaxKeys=7, StartAfter=SORTED[3], **kw)
        pages.append(_keys(resp))
        if not resp["IsTruncated"]:
            break
        token = resp["NextContinuationToken"]
        assert len(pages) < 10
    assert [k for p in pages for k in p] == SORTED[4:]
    assert [len(p) for p in pages] == [7, 7, 7]


def test_v1_pagination_with_marker(s3, listing):
    pages, marker = [], None
    while True:
        kw = {"Marker": marker} if marker else {}
        resp = s3.list_objects(Bucket=listing, MaxKeys=7, **kw)
        keys = _keys(resp)
        pages.append(keys)
        if marker:
            assert resp["Marker"] == marker
        if not resp["IsTruncated"]:
            break
        # Without a delimiter AWS may omit NextMarker; the last key is the marker then.
        marker = resp.get("NextMarker") or keys[-1]
        assert marker == keys[-1]
        assert len(pages) < 10
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [k for p in pages for k in p] == SORTED


def _merged(resp):
    return _bytes_sorted(_keys(resp) + _prefixes(resp))


def test_v1_pagination_with_delimiter_uses_next_marker(s3, listing):
    expected = _bytes_sorted([k for k in KEYS if "/" not in k] + ["dir1/", "dir2/", "zz/"])
    pages, marker = [], None
    while True:
        kw = {"Marker": marker} if marker else {}
        resp = s3.list_objects(Bucket=listing, MaxKeys=2, Delimiter="/", **kw)
        page = _merged(resp)
        assert 0 < len(page) <= 2
        pages.append(page)
        if not resp["IsTruncated"]:
            break
        marker = resp.get("NextMarker")
        assert marker, "NextMarker must be returned when a delimiter is given and the list is truncated"
        assert marker == page[-1]
        assert len(pages) < 30
    assert [e for p in pages for e in p] == expected


def test_v2_pagination_with_delimiter(s3, listing):
    expected = _bytes_sorted([k for k in KEYS if "/" not in k] + ["dir1/", "dir2/", "zz/"])
    pages, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        resp = s3.list_objects_v2(Bucket=listing, MaxKeys=3, Delimiter="/", **kw)
        page = _merged(resp)
        assert 0 < len(page) <= 3
        assert resp["KeyCount"] == len(page)
        pages.append(page)
        if not resp["IsTruncated"]:
            break
        token = resp["NextContinuationToken"]
        assert len(pages) < 30
    assert [e for p in pages for e in p] == expected


def _raw_list(server, s3, bucket, query):
    url = f"{server.endpoint}/{bucket}?{query}"
    key = s3.coffer_key
    r = requests.get(url, headers=sign_headers("GET", url, key["access_key_id"], key["secret_access_key"]), timeout=10)
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    ns = ""
    if root.tag.startswith("{"):
        ns = root.tag.split("}")[0] + "}"
    keys = [e.text for e in root.iter(f"{ns}Key")]
    prefixes = [e.text for cp in root.iter(f"{ns}CommonPrefixes") for e in cp.iter(f"{ns}Prefix")]
    enc = root.find(f"{ns}EncodingType")
    return keys, prefixes, (enc.text if enc is not None else None), r.content


@pytest.mark.parametrize("query", ["list-type=2&encoding-type=url&prefix=z", "encoding-type=url&prefix=z"])
def test_encoding_type_url_raw(server, s3, listing, query):
    keys, _, enc, raw = _raw_list(server, s3, listing, query)
    assert enc == "url", raw
    assert [unquote_plus(k) for k in keys] == ["z space", "zz/ünï"], raw
    for k in keys:
        assert " " not in k and k.isascii(), f"key not url-encoded in the raw XML: {k!r}"


def test_encoding_type_url_raw_common_prefixes(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="space dir/inner", Body=b"")
    s3.put_object(Bucket=bucket, Key="space dir/ünï", Body=b"")
    _, prefixes, enc, raw = _raw_list(server, s3, bucket, "list-type=2&encoding-type=url&delimiter=%2F&prefix=space")
    assert enc == "url"
    assert [unquote_plus(p) for p in prefixes] == ["space dir/"], raw
    assert all(" " not in p for p in prefixes), raw
    keys, _, _, raw = _raw_list(server, s3, bucket, "list-type=2&encoding-type=url&prefix=space%20dir%2F")
    assert [unquote_plus(k) for k in keys] == ["space dir/inner", "space dir/ünï"], raw
    assert all(k.isascii() and " " not in k for k in keys), raw
    # boto3 decodes what it asked to be encoded
    resp = s3.list_objects_v2(Bucket=bucket, Prefix="space", Delimiter="/")
    assert _prefixes(resp) == ["space dir/"]


def test_no_encoding_type_returns_raw_keys(server, s3, listing):
    keys, _, enc, raw = _raw_list(server, s3, listing, "list-type=2&prefix=z")
    assert enc is None, raw
    assert keys == ["z space", "zz/ünï"], raw


def test_boto3_decodes_url_encoded_keys(s3, listing):
    resp = s3.list_objects_v2(Bucket=listing, Prefix="z")
    assert _keys(resp) == ["z space", "zz/ünï"]
    resp = s3.list_objects(Bucket=listing, Prefix="z")
    assert _keys(resp) == ["z space", "zz/ünï"]


def test_list_object_versions(s3, listing):
    resp = s3.list_object_versions(Bucket=listing, Prefix="dir1/")
    versions = resp.get("Versions", [])
    assert [v["Key"] for v in versions] == ["dir1/a", "dir1/b", "dir1/sub/c"]
    for v in versions:
        assert v["VersionId"] == "null"
        assert v["IsLatest"] is True
        assert v["Size"] == len(v["Key"])
    assert not resp.get("DeleteMarkers")

    resp = s3.list_object_versions(Bucket=listing)
    assert [v["Key"] for v in resp.get("Versions", [])] == SORTED
