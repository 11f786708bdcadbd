"""Bucket operations: create, head, location, list (filtered by rights), delete."""

from __future__ import annotations

from conftest import eventually, s3_error, status_of, unique


def _admin_bucket(server, name):
    rows = [b for b in server.admin("bucket", "list") if b["name"] == name]
    assert len(rows) == 1, f"bucket {name} not in `bucket list`: {rows}"
    return rows[0]


def test_create_bucket_is_owned_by_the_caller(server, s3):
    name = unique("own")
    resp = s3.create_bucket(Bucket=name)
    assert status_of(resp) == 200
    row = _admin_bucket(server, name)
    assert row["owner"] == s3.coffer_user
    assert row["tier"] == "standard"
    assert row["classification"] == "unclassified"
    assert isinstance(row["created_at"], int)

    for action in ("read", "write", "delete", "list", "admin"):
        ex = server.admin("explain", "--user", s3.coffer_user, "--bucket", name, "--action", action)
        assert ex["allowed"] is True, ex
        assert ex["rule"]["rule"] == "owner", ex
        assert isinstance(ex["reason"], str) and ex["reason"]


def test_explain_denies_a_stranger(server, s3, make_user):
    name = unique("exp")
    s3.create_bucket(Bucket=name)
    stranger = make_user()
    ex = server.admin("explain", "--user", stranger.coffer_user, "--bucket", name, "--action", "read")
    assert ex["allowed"] is False, ex
    assert ex["rule"]["rule"] == "no-grant", ex


def test_create_bucket_with_location_constraint_tier(server, s3):
    name = unique("tier")
    resp = s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "standard"})
    assert status_of(resp) == 200
    assert _admin_bucket(server, name)["tier"] == "standard"
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"x"


def test_create_bucket_with_unknown_tier(server, s3):
    name = unique("tier")
    with s3_error("InvalidLocationConstraint", 400):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "no-such-tier"})
    with s3_error(None, 404):
        s3.head_bucket(Bucket=name)
    assert not [b for b in server.admin("bucket", "list") if b["name"] == name]


def test_head_bucket(s3, bucket):
    assert status_of(s3.head_bucket(Bucket=bucket)) == 200
    with s3_error(None, 404):
        s3.head_bucket(Bucket=unique("missing"))


def test_get_bucket_location(s3):
    name = unique("loc")
    s3.create_bucket(Bucket=name)
    resp = s3.get_bucket_location(Bucket=name)
    assert status_of(resp) == 200
    # The default tier may answer as AWS's default region does (no constraint) or by its name.
    assert resp.get("LocationConstraint") in (None, "", "standard"), resp
    with s3_error("NoSuchBucket", 404):
        s3.get_bucket_location(Bucket=unique("missing"))


def test_list_buckets_shows_only_readable_buckets(server, make_user):
    group = unique("grp")
    owner = make_user()
    viewer = make_user(groups=[group])
    mine, direct, via_group, other, written = (unique(p) for p in ("mine", "direct", "group", "other", "wgrant"))
    viewer.create_bucket(Bucket=mine)
    for b in (direct, via_group, other, written):
        owner.create_bucket(Bucket=b)
    server.admin("grant", "add", "--bucket", direct, "--user", viewer.coffer_user, "--role", "read")
    server.admin("grant", "add", "--bucket", via_group, "--group", group, "--role", "read")
    server.admin("grant", "add", "--bucket", written, "--user", viewer.coffer_user, "--role", "write")
    eventually(lambda: viewer.head_bucket(Bucket=via_group))

    seen = {b["Name"] for b in viewer.list_buckets()["Buckets"]}
    assert {mine, direct, via_group, written} <= seen, seen
    assert other not in seen

    owner_seen = {b["Name"] for b in owner.list_buckets()["Buckets"]}
    assert {direct, via_group, other, written} <= owner_seen
    assert mine not in owner_seen

    stranger = make_user()
    stranger_seen = {b["Name"] for b in stranger.list_buckets()["Buckets"]}
    assert not stranger_seen & {mine, direct, via_group, other, written}, stranger_seen


def test_list_buckets_of_platform_admin_shows_all(admin_s3, s3):
    name = unique("adm")
    s3.create_bucket(Bucket=name)
    assert name in {b["Name"] for b in admin_s3.list_buckets()["Buckets"]}


def test_delete_non_empty_bucket(s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"data")
    with s3_error("BucketNotEmpty", 409):
        s3.delete_bucket(Bucket=bucket)
    assert status_of(s3.head_bucket(Bucket=bucket)) == 200
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"data"


def test_delete_empty_bucket(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"data")
    s3.delete_object(Bucket=bucket, Key="obj")
    resp = s3.delete_bucket(Bucket=bucket)
    assert status_of(resp) == 204
    with s3_error(None, 404):
        s3.head_bucket(Bucket=bucket)
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not [b for b in server.admin("bucket", "list") if b["name"] == bucket]
    # the name is free again
    s3.create_bucket(Bucket=bucket)
    assert status_of(s3.head_bucket(Bucket=bucket)) == 200


def test_delete_missing_bucket(s3):
    with s3_error("NoSuchBucket", 404):
        s3.delete_bucket(Bucket=unique("missing"))


def test_recreate_bucket_by_same_user(s3, bucket):
    with s3_error("BucketAlreadyOwnedByYou", 409):
        s3.create_bucket(Bucket=bucket)


def test_recreate_bucket_by_another_user(s3, bucket, make_user):
    other = make_user()
    with s3_error("BucketAlreadyExists", 409):
        other.create_bucket(Bucket=bucket)
    assert bucket not in {b["Name"] for b in other.list_buckets()["Buckets"]}


def test_invalid_bucket_name(s3):
    for bad in ("Bad_Name", "ab", "-leading-dash", "a..b", "192.168.5.4"):
        with s3_error("InvalidBucketName", 400):
            s3.create_bucket(Bucket=bad)


def test_reserved_bucket_names(s3):
    # docs/S3.md: the names of the health and metrics endpoints are not bucket names
    for reserved in ("healthz", "readyz", "metrics", "api"):
        with s3_error("InvalidBucketName", 400):
            s3.create_bucket(Bucket=reserved)


def test_missing_bucket_is_no_such_bucket(s3):
    missing = unique("missing")
    with s3_error("NoSuchBucket", 404):
        s3.list_objects_v2(Bucket=missing)
    with s3_error("NoSuchBucket", 404):
        s3.put_object(Bucket=missing, Key="k", Body=b"x")
    with s3_error("NoSuchBucket", 404):
        s3.get_object(Bucket=missing, Key="k")
