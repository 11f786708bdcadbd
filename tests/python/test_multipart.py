"""Multipart uploads: create, upload parts, copy parts, list, complete, abort, and the errors."""

from __future__ import annotations

import hashlib
import os

import pytest

from conftest import MiB, s3_error, status_of


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


@pytest.fixture(scope="module")
def big_part():
    return os.urandom(5 * MiB)


def test_complete_multipart_upload(s3, bucket, big_part):
    last = os.urandom(1 * MiB + 17)
    up = s3.create_multipart_upload(
        Bucket=bucket, Key="mp/obj", ContentType="application/x-mp", Metadata={"kind": "multipart"}
    )
    upload_id = up["UploadId"]
    assert upload_id and up["Key"] == "mp/obj" and up["Bucket"] == bucket

    p1 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=upload_id, PartNumber=1, Body=big_part)
    p2 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=upload_id, PartNumber=2, Body=last)
    assert p1["ETag"] == '"' + hashlib.md5(big_part).hexdigest() + '"'
    assert p2["ETag"] == '"' + hashlib.md5(last).hexdigest() + '"'

    # not visible before completion
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="mp/obj")

    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp/obj",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]},
    )
    want_etag = multipart_etag([big_part, last])
    assert done["ETag"] == want_etag
    assert done["Key"] == "mp/obj" and done["Bucket"] == bucket

    got = s3.get_object(Bucket=bucket, Key="mp/obj")
    assert got["ETag"] == want_etag
    assert got["ContentLength"] == len(big_part) + len(last)
    assert got["Body"].read() == big_part + last
    assert got["ContentType"] == "application/x-mp"
    assert got["Metadata"] == {"kind": "multipart"}

    # a range across the part boundary
    rng = s3.get_object(Bucket=bucket, Key="mp/obj", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")
    assert rng["Body"].read() == (big_part + last)[5 * MiB - 3 : 5 * MiB + 3]

    # the upload is gone once completed
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=upload_id)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed] == [("mp/obj", len(big_part) + len(last), want_etag)]


def test_single_part_upload(s3, bucket):
    data = b"only one small part"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="one")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="one", UploadId=upload_id, PartNumber=1, Body=data)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="one", UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}]}
    )
    assert done["ETag"] == multipart_etag([data])
    assert s3.get_object(Bucket=bucket, Key="one")["Body"].read() == data


def test_upload_part_copy_with_range(s3, bucket):
    src = os.urandom(6 * MiB + 123)
    s3.put_object(Bucket=bucket, Key="copy-src", Body=src)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="copy-dst")["UploadId"]
    first = (0, 5 * MiB - 1)
    second = (5 * MiB, 5 * MiB + 300_000)
    r1 = s3.upload_part_copy(
        Bucket=bucket,
        Key="copy-dst",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "copy-src"},
        CopySourceRange=f"bytes={first[0]}-{first[1]}",
    )
    r2 = s3.upload_part_copy(
        Bucket=bucket,
        Key="copy-dst",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "copy-src"},
        CopySourceRange=f"bytes={second[0]}-{second[1]}",
    )
    part1 = src[first[0] : first[1] + 1]
    part2 = src[second[0] : second[1] + 1]
    assert r1["CopyPartResult"]["ETag"] == '"' + hashlib.md5(part1).hexdigest() + '"'
    assert r2["CopyPartResult"]["ETag"] == '"' + hashlib.md5(part2).hexdigest() + '"'

    parts = s3.list_parts(Bucket=bucket, Key="copy-dst", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(part1)), (2, len(part2))]

    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="copy-dst",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": r1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": r2["CopyPartResult"]["ETag"]},
            ]
        },
    )
    assert done["ETag"] == multipart_etag([part1, part2])
    assert s3.get_object(Bucket=bucket, Key="copy-dst")["Body"].read() == part1 + part2


def test_list_parts_and_uploads_then_abort(s3, bucket, big_part):
    small = b"tail part"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="lp/key")["UploadId"]
    other_id = s3.create_multipart_upload(Bucket=bucket, Key="other/key")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="lp/key", UploadId=upload_id, PartNumber=1, Body=big_part)
    s3.upload_part(Bucket=bucket, Key="lp/key", UploadId=upload_id, PartNumber=2, Body=small)

    parts = s3.list_parts(Bucket=bucket, Key="lp/key", UploadId=upload_id)
    assert parts["UploadId"] == upload_id
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts["Parts"]] == [
        (1, len(big_part), '"' + hashlib.md5(big_part).hexdigest() + '"'),
        (2, len(small), '"' + hashlib.md5(small).hexdigest() + '"'),
    ]

    # replacing a part keeps one entry with the new content
    s3.upload_part(Bucket=bucket, Key="lp/key", UploadId=upload_id, PartNumber=2, Body=b"new tail")
    parts = s3.list_parts(Bucket=bucket, Key="lp/key", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(big_part)), (2, len(b"new tail"))]

    uploads = s3.list_multipart_uploads(Bucket=bucket)
    assert sorted((u["Key"], u["UploadId"]) for u in uploads.get("Uploads", [])) == sorted(
        [("lp/key", upload_id), ("other/key", other_id)]
    )
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix="lp/")
    assert [(u["Key"], u["UploadId"]) for u in uploads.get("Uploads", [])] == [("lp/key", upload_id)]

    resp = s3.abort_multipart_upload(Bucket=bucket, Key="lp/key", UploadId=upload_id)
    assert status_of(resp) == 204

    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="lp/key", UploadId=upload_id)
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="lp/key", UploadId=upload_id, PartNumber=3, Body=b"late")
    with s3_error("NoSuchUpload", 404):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="lp/key",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"' + hashlib.md5(big_part).hexdigest() + '"'}]},
        )
    uploads = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in uploads.get("Uploads", [])] == [("other/key", other_id)]
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="lp/key")

    s3.abort_multipart_upload(Bucket=bucket, Key="other/key", UploadId=other_id)
    # an empty bucket again: it can be deleted
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert status_of(s3.delete_bucket(Bucket=bucket)) == 204


def test_unknown_upload_id(s3, bucket):
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="k", UploadId="does-not-exist", PartNumber=1, Body=b"x")
    with s3_error("NoSuchUpload", 404):
        s3.list_parts(Bucket=bucket, Key="k", UploadId="does-not-exist")


def test_upload_id_belongs_to_its_key(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="key-a")["UploadId"]
    with s3_error("NoSuchUpload", 404):
        s3.upload_part(Bucket=bucket, Key="key-b", UploadId=upload_id, PartNumber=1, Body=b"x")


def test_complete_with_parts_out_of_order(s3, bucket, big_part):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="ooo")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="ooo", UploadId=upload_id, PartNumber=1, Body=big_part)
    p2 = s3.upload_part(Bucket=bucket, Key="ooo", UploadId=upload_id, PartNumber=2, Body=b"end")
    with s3_error("InvalidPartOrder", 400):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="ooo",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": p2["ETag"]}, {"PartNumber": 1, "ETag": p1["ETag"]}]},
        )
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="ooo")


def test_complete_with_wrong_etag(s3, bucket, big_part):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="bad-etag")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="bad-etag", UploadId=upload_id, PartNumber=1, Body=big_part)
    s3.upload_part(Bucket=bucket, Key="bad-etag", UploadId=upload_id, PartNumber=2, Body=b"end")
    with s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="bad-etag",
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": 1, "ETag": p1["ETag"]},
                    {"PartNumber": 2, "ETag": '"00000000000000000000000000000000"'},
                ]
            },
        )
    # a part number that was never uploaded
    with s3_error("InvalidPart", 400):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="bad-etag",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 7, "ETag": p1["ETag"]}]},
        )
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="bad-etag")


def test_complete_with_small_first_part(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    p1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload_id, PartNumber=1, Body=b"a" * 1024)
    p2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload_id, PartNumber=2, Body=b"b" * 1024)
    with s3_error("EntityTooSmall", 400):
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="small",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]},
        )
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=bucket, Key="small")
