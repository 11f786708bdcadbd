"""The aws CLI against coffer: s3 mb/cp/ls/sync/rm/rb and s3api head-object."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import MiB, eventually, s3_error, unique

pytestmark = pytest.mark.skipif(shutil.which("aws") is None, reason="the aws CLI is not installed")


@pytest.fixture(scope="module")
def aws_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("aws")
    (home / "config").write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    (home / "credentials").write_text("")
    return home


@pytest.fixture
def aws(server, aws_home):
    """aws(client, *args, check=True) runs the aws CLI with that client's credentials."""

    def run(client, *args, check=True, timeout=180):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=client.coffer_key["access_key_id"],
            AWS_SECRET_ACCESS_KEY=client.coffer_key["secret_access_key"],
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE=str(aws_home / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(aws_home / "credentials"),
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            AWS_PAGER="",
        )
        r = subprocess.run(
            ["aws", "--endpoint-url", server.endpoint, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert r.returncode == 0, f"aws {' '.join(args)} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        return r

    return run


def multipart_etag(data: bytes, chunk: int) -> str:
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def test_mb_ls_rb(aws, s3):
    name = unique("cli")
    r = aws(s3, "s3", "mb", f"s3://{name}")
    assert f"make_bucket: {name}" in r.stdout
    r = aws(s3, "s3", "ls")
    assert name in r.stdout.split()
    s3.head_bucket(Bucket=name)
    r = aws(s3, "s3", "rb", f"s3://{name}")
    assert f"remove_bucket: {name}" in r.stdout
    r = aws(s3, "s3", "ls")
    assert name not in r.stdout.split()
    with s3_error(None, 404):
        s3.head_bucket(Bucket=name)


def test_cp_small_and_multipart(aws, s3, tmp_path):
    name = unique("cli")
    aws(s3, "s3", "mb", f"s3://{name}")
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello from the aws cli\n" * 10)
    big = tmp_path / "big.bin"
    big_data = os.urandom(20 * MiB)
    big.write_bytes(big_data)

    aws(s3, "s3", "cp", str(small), f"s3://{name}/small.txt")
    assert s3.get_object(Bucket=name, Key="small.txt")["Body"].read() == small.read_bytes()

    aws(s3, "s3", "cp", str(big), f"s3://{name}/dir/big.bin")
    head = json.loads(aws(s3, "s3api", "head-object", "--bucket", name, "--key", "dir/big.bin").stdout)
    assert head["ContentLength"] == 20 * MiB
    assert re.fullmatch(r'"[0-9a-f]{32}-\d+"', head["ETag"]), head["ETag"]
    # the CLI's default chunk size is 8 MiB
    assert head["ETag"] == multipart_etag(big_data, 8 * MiB)

    back = tmp_path / "back.bin"
    aws(s3, "s3", "cp", f"s3://{name}/dir/big.bin", str(back))
    assert back.read_bytes() == big_data
    back_small = tmp_path / "back.txt"
    aws(s3, "s3", "cp", f"s3://{name}/small.txt", str(back_small))
    assert back_small.read_bytes() == small.read_bytes()

    listing = aws(s3, "s3", "ls", f"s3://{name}/", "--recursive").stdout
    lines = {line.split()[-1]: int(line.split()[-2]) for line in listing.splitlines() if line.strip()}
    assert lines == {"small.txt": small.stat().st_size, "dir/big.bin": 20 * MiB}, listing

    head = json.loads(aws(s3, "s3api", "head-object", "--bucket", name, "--key", "small.txt").stdout)
    assert head["ContentLength"] == small.stat().st_size
    assert head["ETag"] == '"' + hashlib.md5(small.read_bytes()).hexdigest() + '"'

    r = aws(s3, "s3api", "head-object", "--bucket", name, "--key", "missing", check=False)
    assert r.returncode != 0
    assert "404" in r.stderr or "Not Found" in r.stderr


def test_sync_and_rm_recursive(aws, s3, tmp_path):
    name = unique("cli")
    s3.create_bucket(Bucket=name)
    src = tmp_path / "site"
    files = {
        "index.html": b"<h1>hi</h1>",
        "css/site.css": b"body{}",
        "img/deep/logo.bin": os.urandom(3000),
    }
    old = time.time() - 3600
    for rel, data in files.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (old, old))

    r = aws(s3, "s3", "sync", str(src), f"s3://{name}/site/")
    assert r.stdout.count("upload:") == 3, r.stdout
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", []))
    assert keys == sorted(f"site/{k}" for k in files)
    for rel, data in files.items():
        assert s3.get_object(Bucket=name, Key=f"site/{rel}")["Body"].read() == data

    # nothing changed: a second sync uploads nothing
    r = aws(s3, "s3", "sync", str(src), f"s3://{name}/site/")
    assert "upload:" not in r.stdout, r.stdout

    # a changed file is uploaded again
    (src / "index.html").write_bytes(b"<h1>changed</h1>")
    r = aws(s3, "s3", "sync", str(src), f"s3://{name}/site/")
    assert r.stdout.count("upload:") == 1, r.stdout
    assert s3.get_object(Bucket=name, Key="site/index.html")["Body"].read() == b"<h1>changed</h1>"

    r = aws(s3, "s3", "rm", f"s3://{name}/", "--recursive")
    assert r.stdout.count("delete:") == 3, r.stdout
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    aws(s3, "s3", "rb", f"s3://{name}")


def test_refused_write_shows_access_denied(server, aws, s3, make_user, tmp_path):
    name = unique("cli")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="readme.txt", Body=b"read me")
    reader = make_user()
    server.admin("grant", "add", "--bucket", name, "--user", reader.coffer_user, "--role", "read")
    eventually(lambda: reader.head_bucket(Bucket=name))

    r = aws(reader, "s3", "ls", f"s3://{name}/")
    assert "readme.txt" in r.stdout

    f = tmp_path / "upload.txt"
    f.write_bytes(b"should not land")
    r = aws(reader, "s3", "cp", str(f), f"s3://{name}/upload.txt", check=False)
    assert r.returncode != 0
    assert "AccessDenied" in r.stderr, r.stderr
    with s3_error("NoSuchKey", 404):
        s3.get_object(Bucket=name, Key="upload.txt")

    r = aws(reader, "s3", "rm", f"s3://{name}/readme.txt", check=False)
    assert r.returncode != 0
    assert "AccessDenied" in r.stderr, r.stderr
    assert s3.get_object(Bucket=name, Key="readme.txt")["Body"].read() == b"read me"
