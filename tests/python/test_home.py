"""The home view: one virtual bucket, `home`, whose folders are the buckets the caller may
read. A share appears in the next listing (no restart, no remount), and every operation
through the view obeys the underlying bucket's role. Both stores."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import eventually, s3_error, unique


@pytest.fixture(scope="module")
def people(server):
    """An owner with two buckets, and a colleague."""
    owner = server.new_user(unique("own"))
    colleague = server.new_user(unique("col"))
    data, results = unique("data"), unique("results")
    owner.create_bucket(Bucket=data)
    owner.create_bucket(Bucket=results)
    owner.put_object(Bucket=data, Key="raw/a.csv", Body=b"a")
    owner.put_object(Bucket=data, Key="raw/b.csv", Body=b"bb")
    owner.put_object(Bucket=data, Key="readme.txt", Body=b"read me")
    owner.put_object(Bucket=results, Key="plot.png", Body=b"png")
    return owner, colleague, data, results


def folders(client) -> list[str]:
    r = client.list_objects_v2(Bucket="home", Delimiter="/")
    return [p["Prefix"] for p in r.get("CommonPrefixes", [])]


def test_a_share_appears_in_the_next_listing_while_a_client_lists(server, people):
    owner, colleague, data, results = people
    assert f"{data}/" not in folders(colleague)
    # a client listing `home` continuously, as a mount refreshing a directory does
    seen_at: list[float] = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            if f"{data}/" in folders(colleague):
                seen_at.append(time.monotonic())
                return
            time.sleep(0.05)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    time.sleep(0.3)
    granted = time.monotonic()
    server.admin("grant", "add", "--bucket", data, "--user", colleague.coffer_user, "--role", "read")
    t.join(timeout=5)
    stop.set()
    assert seen_at, "the shared bucket never appeared in home"
    assert seen_at[0] - granted < 1.5, f"appeared after {seen_at[0] - granted:.2f}s"
    assert f"{results}/" not in folders(colleague)
    # its content through the view
    r = colleague.list_objects_v2(Bucket="home", Prefix=f"{data}/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == [f"{data}/readme.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [f"{data}/raw/"]
    assert colleague.get_object(Bucket="home", Key=f"{data}/raw/b.csv")["Body"].read() == b"bb"
    assert colleague.head_object(Bucket="home", Key=f"{data}/readme.txt")["ContentLength"] == 7


def test_writes_through_home_obey_the_underlying_role(server, people):
    owner, colleague, data, results = people
    server.admin("grant", "add", "--bucket", data, "--user", colleague.coffer_user, "--role", "read")
    eventually(lambda: colleague.get_object(Bucket="home", Key=f"{data}/readme.txt"))
    with s3_error("AccessDenied", 403):
        colleague.put_object(Bucket="home", Key=f"{data}/new.txt", Body=b"no")
    with s3_error("AccessDenied", 403):
        colleague.delete_object(Bucket="home", Key=f"{data}/readme.txt")
    with s3_error("AccessDenied", 403):
        colleague.get_object(Bucket="home", Key=f"{results}/plot.png")
    # a bucket one cannot read lists as nothing (it does not say whether it exists)
    assert "Contents" not in colleague.list_objects_v2(Bucket="home", Prefix=f"{results}/")
    assert "Contents" not in colleague.list_objects_v2(Bucket="home", Prefix=f"{unique('none')}/")

    server.admin("grant", "add", "--bucket", data, "--user", colleague.coffer_user, "--role", "write")
    eventually(lambda: colleague.put_object(Bucket="home", Key=f"{data}/new.txt", Body=b"written via home"))
    assert owner.get_object(Bucket=data, Key="new.txt")["Body"].read() == b"written via home"
    colleague.copy_object(Bucket="home", Key=f"{data}/copy.txt", CopySource={"Bucket": "home", "Key": f"{data}/new.txt"})
    assert owner.get_object(Bucket=data, Key="copy.txt")["Body"].read() == b"written via home"
    colleague.delete_objects(Bucket="home", Delete={"Objects": [{"Key": f"{data}/copy.txt"}, {"Key": f"{data}/new.txt"}]})
    assert "new.txt" not in [o["Key"] for o in owner.list_objects_v2(Bucket=data).get("Contents", [])]

    # multipart through the view
    up = colleague.create_multipart_upload(Bucket="home", Key=f"{data}/big.bin")
    part = b"x" * (5 * 1024 * 1024)
    e1 = colleague.upload_part(Bucket="home", Key=f"{data}/big.bin", UploadId=up["UploadId"], PartNumber=1, Body=part)
    e2 = colleague.upload_part(Bucket="home", Key=f"{data}/big.bin", UploadId=up["UploadId"], PartNumber=2, Body=b"tail")
    listed = colleague.list_multipart_uploads(Bucket="home", Prefix=f"{data}/")
    assert [u["Key"] for u in listed.get("Uploads", [])] == [f"{data}/big.bin"]
    colleague.complete_multipart_upload(
        Bucket="home", Key=f"{data}/big.bin", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1["ETag"]}, {"PartNumber": 2, "ETag": e2["ETag"]}]},
    )
    assert owner.head_object(Bucket=data, Key="big.bin")["ContentLength"] == len(part) + 4

    # keys naming no bucket and key
    with s3_error("InvalidArgument", 400):
        colleague.put_object(Bucket="home", Key="top-level-file.txt", Body=b"x")
    with s3_error("NoSuchKey", 404):
        colleague.get_object(Bucket="home", Key=f"{data}")
    # the view cannot be created or deleted
    with s3_error("BucketAlreadyExists", 409):
        colleague.create_bucket(Bucket="home")
    with s3_error("AccessDenied", 403):
        colleague.delete_bucket(Bucket="home")
    colleague.head_bucket(Bucket="home")


def test_the_view_lists_in_order_and_pages(server):
    user = server.new_user(unique("pg"))
    # names whose `<name>/` order differs from the names' own order ('-' sorts before '/')
    base = unique("ord")
    names = [base, f"{base}-x", f"{base}-y"]
    for n in names:
        user.create_bucket(Bucket=n)
        for k in ("a", "b/c", "d"):
            user.put_object(Bucket=n, Key=k, Body=k.encode())
    prefix = base
    keys, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = user.list_objects_v2(Bucket="home", Prefix=prefix, MaxKeys=2, **kw)
        keys += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    expected = sorted(f"{n}/{k}" for n in names for k in ("a", "b/c", "d"))
    assert keys == expected
    assert keys[0].startswith(f"{base}-x/"), "buckets come in the order of their keys"
    # with a delimiter, buckets roll up into folders, even empty ones
    empty = unique("empty")
    user.create_bucket(Bucket=empty)
    assert f"{empty}/" in folders(user)
    mine = [f for f in folders(user) if f.startswith(base)]
    assert mine == [f"{base}-x/", f"{base}-y/", f"{base}/"]
    r = user.list_objects_v2(Bucket="home", Prefix=f"{base}-x/", Delimiter="/", StartAfter=f"{base}-x/a")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == [f"{base}-x/b/"]
    assert [o["Key"] for o in r["Contents"]] == [f"{base}-x/d"]
    # a narrowed key sees only its buckets
    key = server.admin("key", "create", "--user", user.coffer_user, "--bucket", names[1])
    narrow = server.client(key["access_key_id"], key["secret_access_key"])
    eventually(narrow.list_buckets)
    assert folders(narrow) == [f"{names[1]}/"]
