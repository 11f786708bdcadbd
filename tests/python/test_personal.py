"""Personal buckets: with `[personal_buckets]`, every user's first authenticated request
creates the user's own bucket, named from the template, S3-valid and collision-safe."""

from __future__ import annotations

import hashlib

import pytest

from conftest import STORES, configured_server, unique


@pytest.fixture(scope="module", params=STORES)
def home_server(request, coffer_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"coffer-personal-{request.param}")
    yield from configured_server(coffer_bin, request.param, base, '[personal_buckets]\ntemplate = "home-{user}"\n')


def owners(server) -> dict[str, str]:
    return {b["name"]: b["owner"] for b in server.admin("bucket", "list")}


def test_the_first_request_creates_the_personal_bucket(home_server):
    user = unique("p")
    client = home_server.new_user(user)  # its first request (ListBuckets) is the probe
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert names == [f"home-{user}"]
    assert owners(home_server)[f"home-{user}"] == user
    client.put_object(Bucket=f"home-{user}", Key="notes.txt", Body=b"mine")
    # more requests create nothing more
    client.list_buckets()
    assert sum(1 for o in owners(home_server).values() if o == user) == 1


def test_names_are_made_valid_and_never_taken_from_others(home_server):
    squatter = home_server.create_user(unique("sq"))["name"]
    user = "Carl.Doe_" + unique("x")
    expected = "home-" + user.lower().replace(".", "-").replace("_", "-")
    home_server.admin("bucket", "create", expected, "--owner", squatter)
    client = home_server.new_user(user)
    mine = [b["Name"] for b in client.list_buckets()["Buckets"]]
    suffix = hashlib.md5(user.encode()).hexdigest()[:6]
    assert mine == [f"{expected}-{suffix}"]
    assert owners(home_server)[expected] == squatter
