"""Backups of coffer's PostgreSQL database with the scripts the backup CronJob runs,
deploy/backup/backup.sh and restore.sh, against a real coffer server and moto's S3.

The round trip: coffer on a fresh database gets users, a group, buckets, grants, narrowed
keys and objects; backup.sh dumps the database and uploads the dump (and its retention
deletes only expired dumps of its own); the state then changes (a key revoked, a grant
removed, a user added); restore.sh refuses without confirmation, then restores into an
empty database, and coffer started on it (the same data directory and server key) serves
the state of the backup — the keys made before it sign requests again. A restore in place
over the changed database, and the two-container split of the CronJob (dump, then upload),
are covered too."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from botocore.exceptions import ClientError

import emulators
from conftest import CofferServer, Store, _psql, eventually, require_postgres, s3_error, unique

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "deploy/backup/backup.sh"
RESTORE = ROOT / "deploy/backup/restore.sh"
DUMP_NAME = re.compile(r"^coffer-(\d{8}T\d{6}Z)\.dump$")
# Values that must never appear in the scripts' output.
DB_PASSWORD = "pg-password-" + uuid.uuid4().hex
S3_SECRET = "s3-secret-" + uuid.uuid4().hex


def _require(tool: str, hint: str) -> None:
    if shutil.which(tool) is None:
        msg = f"{tool} is not installed ({hint})"
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def tools():
    require_postgres()
    _require("pg_dump", "apt-get install postgresql-client")
    _require("pg_restore", "apt-get install postgresql-client")
    _require("aws", "pip install -r tests/python/requirements.txt")


@pytest.fixture
def backups(tools):
    """A fresh bucket for dumps in the session's moto S3: (endpoint, boto3 client, bucket)."""
    moto = emulators.emulator("moto")
    client = boto3.client(
        "s3",
        endpoint_url=moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key=S3_SECRET,
    )
    bucket = f"backups-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return moto.endpoint, client, bucket


def with_password(url: str) -> str:
    """The URL with a password (trust auth ignores it): it must never be printed."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme, f"{user or 'postgres'}:{DB_PASSWORD}@{host}", parts.path, parts.query, ""))


def run(script: Path, endpoint: str, bucket: str, database_url: str | None, tmp: Path, **env: str):
    """Run a script with a clean environment: no AWS settings of the machine's leak in."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    full.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY=S3_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        S3_ENDPOINT=endpoint,
        S3_BUCKET=bucket,
        S3_PREFIX="coffer",
    )
    if database_url is not None:
        full["DATABASE_URL"] = with_password(database_url)
    full.update(env)
    r = subprocess.run(["bash", str(script)], env=full, capture_output=True, text=True, timeout=180)
    for secret in (DB_PASSWORD, S3_SECRET):
        assert secret not in r.stdout + r.stderr, f"{script.name} printed a secret:\n{r.stdout}\n{r.stderr}"
    return r


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def keys(client, bucket: str) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def dumps(client, bucket: str) -> list[str]:
    return sorted(k for k in keys(client, bucket) if k.startswith("coffer/") and DUMP_NAME.match(k[len("coffer/"):]))


def table_count(url: str) -> int:
    r = _psql(url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def server(binary: Path, store: Store, base: Path, like: CofferServer | None = None) -> CofferServer:
    """A server on `store` in `base` (so the data directory, and its objects, are shared)."""
    srv = CofferServer(binary, store, base)
    if like is None:
        srv.extra_env["COFFER_SERVER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    else:
        # The same server key (it seals the keys' secrets) and the same bootstrap admin.
        srv.extra_env.update(like.extra_env)
        srv.admin_access_key, srv.admin_secret_key = like.admin_access_key, like.admin_secret_key
    return srv


def test_backup_and_restore_round_trip(coffer_bin, backups, tmp_path):
    endpoint, s3, bucket = backups
    base = tmp_path / "coffer"
    original = server(coffer_bin, Store("postgres", tmp_path), base)
    restored: CofferServer | None = None
    try:
        original.start()
        # -- the state to keep --------------------------------------------------------
        alice_name, bob_name, carol_name = unique("alice"), unique("bob"), unique("carol")
        group = unique("analysts")
        alice = original.new_user(alice_name)
        bob = original.new_user(bob_name)
        carol = original.new_user(carol_name, groups=[group])
        results, shared = unique("results"), unique("shared")
        alice.create_bucket(Bucket=results)
        alice.put_object(Bucket=results, Key="2026/report.csv", Body=b"id,value\n1,42\n")
        original.admin("bucket", "create", shared, "--owner", alice_name)
        original.admin("grant", "add", "--bucket", results, "--user", bob_name, "--role", "read")
        original.admin("grant", "add", "--bucket", shared, "--group", group, "--role", "write")
        read_only = original.key_client(alice_name, "--read-only")
        doomed = original.key_client(alice_name)
        eventually(lambda: bob.get_object(Bucket=results, Key="2026/report.csv"))
        eventually(lambda: carol.put_object(Bucket=shared, Key="notes.txt", Body=b"from carol"))

        # -- dumps already there: one expired, and objects that are not ours ----------
        for key in ["coffer/coffer-20200101T000000Z.dump", "coffer/notes.txt",
                    "coffer/archive/coffer-20200101T000000Z.dump", "other/coffer-20200101T000000Z.dump"]:
            s3.put_object(Bucket=bucket, Key=key, Body=b"not a dump")

        r = ok(run(BACKUP, endpoint, bucket, original.store.url, tmp_path, RETENTION_DAYS="7"))
        made = dumps(s3, bucket)
        assert len(made) == 1 and made[0] != "coffer/coffer-20200101T000000Z.dump", made
        assert "retention: 1 dump(s) kept, 1 deleted" in r.stderr, r.stderr
        assert {"coffer/notes.txt", "coffer/archive/coffer-20200101T000000Z.dump",
                "other/coffer-20200101T000000Z.dump"} <= keys(s3, bucket), "retention touched what is not a dump of its own"
        host_db = urlsplit(original.store.url).netloc.rpartition("@")[2] + urlsplit(original.store.url).path
        assert host_db in r.stderr, f"the log names the database as host/name: {r.stderr}"

        # -- then things change -------------------------------------------------------
        original.admin("key", "revoke", doomed.coffer_key["access_key_id"])
        original.admin("grant", "remove", "--bucket", results, "--user", bob_name)
        late = unique("late")
        original.create_user(late)
        wait_denied(lambda: bob.get_object(Bucket=results, Key="2026/report.csv"))
        original.stop()

        # -- restore.sh refuses without the database's name ---------------------------
        target = Store("postgres", tmp_path)
        for confirm in (None, "coffer", target.db_name + "x"):
            extra = {} if confirm is None else {"RESTORE_CONFIRM": confirm}
            r = run(RESTORE, endpoint, bucket, target.url, tmp_path, **extra)
            assert r.returncode != 0, f"restored without confirmation {confirm!r}: {r.stderr}"
            assert f"Set RESTORE_CONFIRM={target.db_name}" in r.stderr, r.stderr
        assert table_count(target.url) == 0, "a refused restore changed the database"

        # -- restore the latest dump into the empty database, start coffer on it ------
        r = ok(run(RESTORE, endpoint, bucket, target.url, tmp_path, RESTORE_CONFIRM=target.db_name))
        assert made[0] in r.stderr, f"the latest dump is restored: {r.stderr}"
        restored = server(coffer_bin, target, base, like=original)
        restored.start()

        users = {u["name"] for u in restored.admin("user", "list")}
        assert {alice_name, bob_name, carol_name} <= users and late not in users, users
        grants = {(g["grantee"]["kind"], g["grantee"]["name"], g["role"])
                  for g in restored.admin("grant", "list", "--bucket", results)}
        assert ("user", bob_name, "read") in grants, grants
        # Keys made before the backup sign requests again (their secrets were sealed with
        # the same server key), with their narrowing.
        alice, bob, carol, read_only, doomed = (same_key(restored, c) for c in (alice, bob, carol, read_only, doomed))
        body = alice.get_object(Bucket=results, Key="2026/report.csv")["Body"].read()
        assert body == b"id,value\n1,42\n"
        assert bob.get_object(Bucket=results, Key="2026/report.csv")["Body"].read() == body
        with s3_error("AccessDenied", 403):
            bob.put_object(Bucket=results, Key="bob.txt", Body=b"no")
        assert carol.get_object(Bucket=shared, Key="notes.txt")["Body"].read() == b"from carol"
        carol.put_object(Bucket=shared, Key="again.txt", Body=b"write through the group")
        read_only.get_object(Bucket=results, Key="2026/report.csv")
        with s3_error("AccessDenied", 403):
            read_only.put_object(Bucket=results, Key="ro.txt", Body=b"no")
        # Revoked after the backup, so alive in it.
        doomed.list_objects_v2(Bucket=results)

        # -- restore.sh refuses while coffer is connected ------------------------------
        r = run(RESTORE, endpoint, bucket, target.url, tmp_path, RESTORE_CONFIRM=target.db_name)
        assert r.returncode != 0 and "other session(s) are connected" in r.stderr, r.stderr
        restored.stop()

        # -- restore a named dump in place, over the changed database -----------------
        name = made[0].rsplit("/", 1)[1]
        ok(run(RESTORE, endpoint, bucket, original.store.url, tmp_path,
               RESTORE_CONFIRM=original.store.db_name, RESTORE_DUMP=name))
        users = {u["name"] for u in original.admin("user", "list")}
        assert alice_name in users and late not in users, users
        original.start()
        same_key(original, doomed).list_objects_v2(Bucket=results)
        same_key(original, bob).get_object(Bucket=results, Key="2026/report.csv")
    finally:
        if restored is not None:
            restored.close()
        original.close()


def same_key(srv: CofferServer, client):
    """A client of `srv` with the key of `client` (made by another server's admin CLI)."""
    key = client.coffer_key
    again = srv.client(key["access_key_id"], key["secret_access_key"])
    again.coffer_key = key
    return again


def wait_denied(request, timeout: float = 2.0) -> None:
    """Wait until `request` is refused with AccessDenied (a change made with the admin CLI
    reaches the server within a poll)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            request()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "AccessDenied":
                return
            raise
        assert time.monotonic() < deadline, "still allowed"
        time.sleep(0.05)


def test_the_cronjob_split_dump_then_upload(coffer_bin, backups, tmp_path):
    """The CronJob runs the dump in a PostgreSQL image and the upload in the aws CLI's,
    sharing a directory: each stage works with only its own tool's variables."""
    endpoint, s3, bucket = backups
    store = Store("postgres", tmp_path)
    try:
        subprocess.run([str(coffer_bin), "migrate", "--database-url", store.url], check=True,
                       capture_output=True, timeout=60)
        shared = tmp_path / "backup"
        shared.mkdir()
        ok(run(BACKUP, "", "", store.url, tmp_path, BACKUP_STAGE="dump", BACKUP_DIR=str(shared),
               S3_ENDPOINT="", S3_BUCKET=""))
        files = [p.name for p in shared.iterdir()]
        assert len(files) == 1 and DUMP_NAME.match(files[0]), files
        ok(run(BACKUP, endpoint, bucket, None, tmp_path, BACKUP_STAGE="upload", BACKUP_DIR=str(shared)))
        assert list(shared.iterdir()) == [], "the upload stage removes what it uploaded"
        assert dumps(s3, bucket) == [f"coffer/{files[0]}"]
        # Restore, split the same way, into a fresh database.
        target = Store("postgres", tmp_path)
        try:
            staging = tmp_path / "restore"
            staging.mkdir()
            ok(run(RESTORE, endpoint, bucket, None, tmp_path, RESTORE_STAGE="download", RESTORE_DIR=str(staging)))
            ok(run(RESTORE, "", "", target.url, tmp_path, RESTORE_STAGE="restore", RESTORE_DIR=str(staging),
                   RESTORE_CONFIRM=target.db_name))
            assert table_count(target.url) == table_count(store.url) > 0
        finally:
            target.drop()
    finally:
        store.drop()


def test_a_failed_backup_fails_loudly_and_deletes_nothing(coffer_bin, backups, tmp_path):
    endpoint, s3, bucket = backups
    store = Store("postgres", tmp_path)
    try:
        s3.put_object(Bucket=bucket, Key="coffer/coffer-20200101T000000Z.dump", Body=b"old")
        # The bucket does not exist: the upload fails, retention never runs.
        r = run(BACKUP, endpoint, bucket + "-missing", store.url, tmp_path, RETENTION_DAYS="1")
        assert r.returncode != 0
        # The database does not answer: nothing is uploaded.
        parts = urlsplit(store.url)
        unreachable = urlunsplit((parts.scheme, "postgres@127.0.0.1:1", "/nothing", "", ""))
        r = run(BACKUP, endpoint, bucket, unreachable, tmp_path, RETENTION_DAYS="1")
        assert r.returncode != 0
        assert keys(s3, bucket) == {"coffer/coffer-20200101T000000Z.dump"}, "a failed backup deleted or uploaded"
        # Misconfiguration is named.
        r = run(BACKUP, endpoint, bucket, store.url, tmp_path, RETENTION_DAYS="a week")
        assert r.returncode != 0 and "RETENTION_DAYS" in r.stderr
        r = run(BACKUP, endpoint, "", store.url, tmp_path)
        assert r.returncode != 0 and "S3_BUCKET is not set" in r.stderr
    finally:
        store.drop()
