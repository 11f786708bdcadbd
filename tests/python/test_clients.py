"""rclone and s3cmd against coffer: the tools people mount and sync with.

Both are installed by scripts/test (rclone from Debian, s3cmd from PyPI); a missing tool is
a failure, not a skip, so CI cannot pass without having run them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest

from conftest import MiB, eventually, unique


def _need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (scripts/test installs it)"
    return path


@pytest.fixture
def rclone(server, tmp_path):
    """rclone(client, *args) with a remote `coffer:` for that client's key."""
    binary = _need("rclone")

    def run(client, *args, check=True):
        conf = tmp_path / f"rclone-{client.coffer_key['access_key_id']}.conf"
        conf.write_text(
            "[coffer]\n"
            "type = s3\n"
            "provider = Other\n"
            f"access_key_id = {client.coffer_key['access_key_id']}\n"
            f"secret_access_key = {client.coffer_key['secret_access_key']}\n"
            f"endpoint = {server.endpoint}\n"
            "region = us-east-1\n"
            "force_path_style = true\n"
        )
        # The AWS SDK in rclone fails on a custom CA bundle over plain HTTP: drop the
        # environment's AWS_* settings (the endpoint is http://127.0.0.1).
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        r = subprocess.run(
            [binary, "--config", str(conf), "--low-level-retries", "1", "--retries", "1", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check:
            assert r.returncode == 0, f"rclone {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    return run


@pytest.fixture
def s3cmd(server, tmp_path):
    """s3cmd(client, *args) with that client's key."""
    binary = _need("s3cmd")
    host = server.endpoint.removeprefix("http://")

    def run(client, *args, check=True):
        conf = tmp_path / f"s3cmd-{client.coffer_key['access_key_id']}.cfg"
        conf.write_text(
            "[default]\n"
            f"access_key = {client.coffer_key['access_key_id']}\n"
            f"secret_key = {client.coffer_key['secret_access_key']}\n"
            f"host_base = {host}\n"
            f"host_bucket = {host}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            "bucket_location = us-east-1\n"
        )
        r = subprocess.run([binary, "-c", str(conf), *args], capture_output=True, text=True, timeout=180)
        if check:
            assert r.returncode == 0, f"s3cmd {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    return run


def _tree(root, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def test_rclone_sync_copy_and_a_refused_write(server, make_user, rclone, tmp_path):
    owner = make_user()
    bucket = unique("rc")
    src = tmp_path / "src"
    files = {"a.txt": b"alpha", "dir/b.bin": os.urandom(3 * MiB), "dir/sub/c with space.txt": b"gamma"}
    _tree(src, files)

    rclone(owner, "mkdir", f"coffer:{bucket}")
    rclone(owner, "sync", str(src), f"coffer:{bucket}/data")
    listed = rclone(owner, "lsf", "-R", "--files-only", f"coffer:{bucket}/data").stdout.splitlines()
    assert sorted(listed) == sorted(files)
    rclone(owner, "check", str(src), f"coffer:{bucket}/data")  # sizes and MD5s agree

    back = tmp_path / "back"
    rclone(owner, "copy", f"coffer:{bucket}/data", str(back))
    for name, data in files.items():
        assert (back / name).read_bytes() == data

    # A reader granted read can copy out but not write in.
    reader = make_user()
    server.admin("grant", "add", "--bucket", bucket, "--user", reader.coffer_user, "--role", "read")
    eventually(lambda: reader.head_object(Bucket=bucket, Key="data/a.txt"))  # grants apply within 1 s
    rclone(reader, "copyto", f"coffer:{bucket}/data/a.txt", str(tmp_path / "r.txt"))
    assert (tmp_path / "r.txt").read_bytes() == b"alpha"
    r = rclone(reader, "copyto", str(src / "a.txt"), f"coffer:{bucket}/data/evil.txt", check=False)
    assert r.returncode != 0
    assert "AccessDenied" in r.stderr or "403" in r.stderr, r.stderr

    rclone(owner, "purge", f"coffer:{bucket}")
    assert bucket not in [b["Name"] for b in owner.list_buckets()["Buckets"]]


def test_s3cmd_put_get_ls_sync_and_a_refused_write(server, make_user, s3cmd, tmp_path):
    owner = make_user()
    bucket = unique("sc")
    data = os.urandom(2 * MiB + 17)
    (tmp_path / "blob.bin").write_bytes(data)

    s3cmd(owner, "mb", f"s3://{bucket}")
    s3cmd(owner, "put", str(tmp_path / "blob.bin"), f"s3://{bucket}/x/blob.bin")
    ls = s3cmd(owner, "ls", "-r", f"s3://{bucket}").stdout
    assert f"s3://{bucket}/x/blob.bin" in ls
    s3cmd(owner, "get", f"s3://{bucket}/x/blob.bin", str(tmp_path / "got.bin"))
    assert hashlib.md5((tmp_path / "got.bin").read_bytes()).digest() == hashlib.md5(data).digest()
    info = s3cmd(owner, "info", f"s3://{bucket}/x/blob.bin").stdout
    assert hashlib.md5(data).hexdigest() in info

    # multipart through s3cmd (chunks of 5 MiB)
    big = os.urandom(11 * MiB)
    (tmp_path / "big.bin").write_bytes(big)
    s3cmd(owner, "put", "--multipart-chunk-size-mb=5", str(tmp_path / "big.bin"), f"s3://{bucket}/big.bin")
    head = owner.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].strip('"').endswith("-3")

    src = tmp_path / "tree"
    _tree(src, {"one.txt": b"1", "two/three.txt": b"3"})
    s3cmd(owner, "sync", str(src) + "/", f"s3://{bucket}/tree/")
    keys = sorted(o["Key"] for o in owner.list_objects_v2(Bucket=bucket, Prefix="tree/")["Contents"])
    assert keys == ["tree/one.txt", "tree/two/three.txt"]

    stranger = make_user()
    r = s3cmd(stranger, "put", str(tmp_path / "blob.bin"), f"s3://{bucket}/evil.bin", check=False)
    assert r.returncode != 0
    assert "AccessDenied" in (r.stdout + r.stderr) or "403" in (r.stdout + r.stderr)

    s3cmd(owner, "del", "-r", "--force", f"s3://{bucket}")
    s3cmd(owner, "rb", f"s3://{bucket}")
