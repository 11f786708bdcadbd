"""Crash safety: SIGKILL in the middle of an upload leaves no object, no partial file and
no temporary file behind after a restart on the same data directory and database."""

from __future__ import annotations

import hashlib
import time

from botocore.exceptions import ClientError

from conftest import SlowPut, err_of, files_under, s3_error, unique

CHUNK = 64 * 1024


def _marker_chunks(marker: bytes, n: int) -> list[bytes]:
    return [(marker * (CHUNK // len(marker) + 1))[:CHUNK] for _ in range(n)]


def _kill_mid_body(srv, url: str, marker: bytes) -> SlowPut:
    put = SlowPut(url, _marker_chunks(marker, 12), delay=0.3, signal_after=3)
    put.start()
    assert put.progress.wait(15)
    assert put.error is None and put.status is None, (put.error, put.status, put.body)
    # give the server a moment to write what it received, then pull the plug
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline and not files_under(srv.objects_dir / ".tmp"):
        time.sleep(0.02)
    srv.kill()
    put.join(30)
    assert not put.is_alive()
    assert put.status != 200, "the upload completed although the server was killed mid-body"
    return put


def _presigned_put_works(url: str) -> None:
    """Control: the same kind of presigned slow PUT succeeds when nobody kills the server, so
    the crash tests below cannot pass merely because the upload was refused."""
    put = SlowPut(url, [b"control-" * 100, b"-control" * 100], delay=0.05)
    put.start()
    put.join(30)
    assert put.error is None and put.status == 200, (put.error, put.status, put.body)


def _files_with(root, marker: bytes, exclude=()) -> list[str]:
    hits = []
    for rel in files_under(root, exclude):
        try:
            if marker in (root / rel).read_bytes():
                hits.append(rel)
        except FileNotFoundError:
            pass
    return hits


def test_sigkill_during_put(own_server):
    srv = own_server
    client = srv.new_user()
    key = client.coffer_key
    b = unique("crash")
    client.create_bucket(Bucket=b)
    client.put_object(Bucket=b, Key="survivor", Body=b"i was here before")

    _presigned_put_works(
        client.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "control"}, ExpiresIn=600)
    )
    assert client.get_object(Bucket=b, Key="control")["Body"].read() == b"control-" * 100 + b"-control" * 100
    client.delete_object(Bucket=b, Key="control")
    before = files_under(srv.objects_dir, exclude=(".tmp", ".uploads"))

    marker = f"CRASH-{unique('m')}-".encode()
    url = client.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "crash/victim"}, ExpiresIn=600)
    _kill_mid_body(srv, url, marker)

    srv.start()
    client = srv.client(key["access_key_id"], key["secret_access_key"])
    with s3_error("NoSuchKey", 404):
        client.get_object(Bucket=b, Key="crash/victim")
    assert [o["Key"] for o in client.list_objects_v2(Bucket=b).get("Contents", [])] == ["survivor"]
    assert client.get_object(Bucket=b, Key="survivor")["Body"].read() == b"i was here before"

    assert files_under(srv.objects_dir / ".tmp") == {}, "temporary files left after restart"
    after = files_under(srv.objects_dir, exclude=(".tmp", ".uploads"))
    assert after == before, f"files changed under objects/: before {before}, after {after}"
    assert _files_with(srv.objects_dir, marker) == [], "a partial copy of the killed upload remains"

    # the key can be written normally afterwards
    client.put_object(Bucket=b, Key="crash/victim", Body=b"second try")
    assert client.get_object(Bucket=b, Key="crash/victim")["Body"].read() == b"second try"


def test_sigkill_during_upload_part(own_server):
    srv = own_server
    client = srv.new_user()
    key = client.coffer_key
    b = unique("crashmp")
    client.create_bucket(Bucket=b)
    upload_id = client.create_multipart_upload(Bucket=b, Key="mp/victim")["UploadId"]
    part1 = b"first part, uploaded completely"
    etag1 = client.upload_part(Bucket=b, Key="mp/victim", UploadId=upload_id, PartNumber=1, Body=part1)["ETag"]

    def part_url(n: int) -> str:
        return client.generate_presigned_url(
            "upload_part",
            Params={"Bucket": b, "Key": "mp/victim", "UploadId": upload_id, "PartNumber": n},
            ExpiresIn=600,
        )

    _presigned_put_works(part_url(3))
    control = b"control-" * 100 + b"-control" * 100

    marker = f"CRASHMP-{unique('m')}-".encode()
    url = part_url(2)
    _kill_mid_body(srv, url, marker)

    srv.start()
    client = srv.client(key["access_key_id"], key["secret_access_key"])
    with s3_error("NoSuchKey", 404):
        client.get_object(Bucket=b, Key="mp/victim")
    assert client.list_objects_v2(Bucket=b)["KeyCount"] == 0
    assert files_under(srv.objects_dir / ".tmp") == {}, "temporary files left after restart"

    # If the upload survived the crash, it holds exactly the completed parts 1 and 3 (not the
    # killed part 2), and it can still be completed.
    try:
        parts = client.list_parts(Bucket=b, Key="mp/victim", UploadId=upload_id)["Parts"]
    except ClientError as e:
        assert err_of(e) == ("NoSuchUpload", 404), e.response
        return
    etag3 = '"' + hashlib.md5(control).hexdigest() + '"'
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(part1), etag1),
        (3, len(control), etag3),
    ]
    # part 1 is under 5 MiB, so complete from part 1 alone (the last part may be small)
    client.complete_multipart_upload(
        Bucket=b, Key="mp/victim", UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}]}
    )
    assert client.get_object(Bucket=b, Key="mp/victim")["Body"].read() == part1
