"""SIGKILL loops: `coffer serve` killed at random moments during uploads, multipart uploads
and deletes, restarted on the same data directory and database, then checked:

- no partial object is ever visible: every listed object HEADs and GETs with exactly the
  bytes of one complete PUT of that key (content is deterministic per key and version), and
  a version the client may have written — the last acknowledged one, or the one in flight
  when the server died (a delete in flight may or may not have happened);
- listing, HEAD and GET agree, and the bucket's directory holds exactly the listed objects'
  files: nothing half-written outside `.tmp`, and `.tmp` is empty after the restart;
- every bucket of the metadata store has its directory in the tier;
- multipart uploads complete whole or not at all; an upload left behind is listed and can
  be aborted, after which `.uploads` is empty.

The filesystem tier, against SQLite and PostgreSQL: COFFER_CRASH_ITERATIONS kills per
store (default 50, so 100 in all), each a fraction of a second of load.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import MiB, unique
from loadgen import client, content, version_of

ITERATIONS = int(os.environ.get("COFFER_CRASH_ITERATIONS", "50"))
BUDGET = 420.0  # seconds per store, a bound for CI; the loop fails if it is not done by then
PUT_KEYS = [f"put/k{i}" for i in range(8)]
MP_KEYS = [f"mp/k{i}" for i in range(3)]
WORKERS = 4


class Key:
    """What a key may hold after a crash: `acked` (a version, or None for absent) and the
    outcomes of the operation in flight, if any."""

    def __init__(self):
        self.acked: int | None = None
        self.maybe: set[int | None] = set()
        self.next = 1

    def allowed(self) -> set[int | None]:
        return {self.acked} | self.maybe

    def settle(self, seen: int | None) -> None:
        assert seen in self.allowed()
        self.acked, self.maybe = seen, set()


def _put_size(rng: random.Random) -> int:
    return rng.choice([0, 1, 100, 4096, 64 * 1024, 300 * 1024, 1 * MiB + 17])


def _worker(c, bucket: str, keys: list[str], state: dict[str, Key], rng: random.Random, stop: threading.Event):
    """Sequential operations on keys of its own until the server dies (or `stop`)."""
    while not stop.is_set():
        key = rng.choice(keys)
        st = state[key]
        try:
            if key.startswith("mp/"):
                v = st.next
                st.next += 1
                body = content(key, v, 5 * MiB + rng.randrange(1, 200_000))
                up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                e1 = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=1, Body=body[: 5 * MiB])["ETag"]
                e2 = c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=2, Body=body[5 * MiB :])["ETag"]
                st.maybe.add(v)
                c.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=up,
                    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]},
                )
                st.acked, st.maybe = v, set()
            elif rng.random() < 0.25:
                st.maybe.add(None)
                c.delete_object(Bucket=bucket, Key=key)
                st.acked, st.maybe = None, set()
            else:
                v = st.next
                st.next += 1
                st.maybe.add(v)
                c.put_object(Bucket=bucket, Key=key, Body=content(key, v, _put_size(rng)))
                st.acked, st.maybe = v, set()
        except Exception:  # noqa: BLE001 - the server was killed: the op's outcome is unknown
            return


def _file_of(bucket_dir: Path, key: str) -> str:
    """The filesystem tier's file for a key of plain segments (crates/backend/src/fs/layout.rs)."""
    *dirs, name = key.split("/")
    return str(Path(*[d + "%" for d in dirs], name)) if dirs else name


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _verify(srv, c, bucket: str, state: dict[str, Key]) -> None:
    """After a restart, before any new request writes: the invariants of the module doc."""
    objects = srv.objects_dir
    assert _files(objects / ".tmp") == set(), "temporary files survived the restart"

    listed = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            listed[o["Key"]] = o["Size"]
    assert set(listed) <= set(state), f"unknown keys listed: {set(listed) - set(state)}"
    for key, st in state.items():
        if key in listed:
            head = c.head_object(Bucket=bucket, Key=key)
            body = c.get_object(Bucket=bucket, Key=key)["Body"].read()
            seen = version_of(key, body)
            assert seen is not None, f"{key}: {len(body)} bytes that are no complete PUT (a partial object)"
            assert seen in st.allowed(), f"{key}: holds version {seen}, allowed {st.allowed()}"
            assert head["ContentLength"] == len(body) == listed[key], (key, head["ContentLength"], len(body))
        else:
            try:
                c.head_object(Bucket=bucket, Key=key)
                raise AssertionError(f"{key} is not listed but HEAD finds it")
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, e.response
            seen = None
            assert None in st.allowed(), f"{key} is gone, but version {st.acked} was acknowledged"
        st.settle(seen)

    # the bucket's directory holds exactly the listed objects' files
    expected = {_file_of(objects / bucket, k) for k in listed}
    assert _files(objects / bucket) == expected, (
        f"files beside the objects: {_files(objects / bucket) - expected}, missing: {expected - _files(objects / bucket)}"
    )
    # nothing outside the buckets, .tmp and .uploads
    buckets = {b["name"] for b in srv.admin("bucket", "list")}
    stray = [p.name for p in objects.iterdir() if p.name not in buckets | {".tmp", ".uploads"}]
    assert not stray, f"unexpected entries in the tier's root: {stray}"
    for b in buckets:
        assert (objects / b).is_dir(), f"bucket {b} of the metadata store has no directory in the tier"

    # uploads left behind are listed and abortable; afterwards nothing is left of them
    uploads = c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for u in uploads:
        c.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    assert c.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    left = list((objects / ".uploads").iterdir())
    assert left == [], f"left in .uploads after aborting every listed upload: {[p.name for p in left]}"
    return len(uploads)


def test_sigkill_loop(own_server):
    srv = own_server
    owner = srv.new_user()
    key = owner.coffer_key
    bucket = unique("kill")
    owner.create_bucket(Bucket=bucket)
    state = {k: Key() for k in PUT_KEYS + MP_KEYS}
    rng = random.Random(int(os.environ.get("COFFER_CRASH_SEED", "0")) or None)
    started = time.monotonic()
    aborted = kills = 0
    for i in range(ITERATIONS):
        assert time.monotonic() - started < BUDGET, f"only {i} iterations within {BUDGET:.0f}s"
        c = client(srv.endpoint, key["access_key_id"], key["secret_access_key"])
        aborted += _verify(srv, c, bucket, state)
        stop = threading.Event()
        keys = PUT_KEYS + MP_KEYS
        workers = [
            threading.Thread(
                target=_worker,
                args=(client(srv.endpoint, key["access_key_id"], key["secret_access_key"]), bucket,
                      keys[w::WORKERS], state, random.Random(rng.random()), stop),
                daemon=True,
            )
            for w in range(WORKERS)
        ]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.05, 1.0))
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        kills += 1
        stop.set()
        for w in workers:
            w.join(60)
            assert not w.is_alive(), "a client thread hangs after the kill"
        srv.start()
    c = client(srv.endpoint, key["access_key_id"], key["secret_access_key"])
    aborted += _verify(srv, c, bucket, state)
    print(f"\n{srv.store.kind}: {kills} kills in {time.monotonic() - started:.0f}s, {aborted} uploads left behind and aborted")


if os.environ.get("COFFER_TEST_TIER"):
    pytestmark = pytest.mark.skip(reason="the SIGKILL loop runs on the filesystem tier")
