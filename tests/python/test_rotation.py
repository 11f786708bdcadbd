"""Rotating a tier's storage credential under load, through the coffer binary: the tier's
key sits in files (as a Kubernetes Secret mount), clients upload through coffer without a
pause, the files are replaced Kubernetes-style (a new directory, then the `..data` symlink
swapped), and once coffer says it reloaded, the old key is deleted at the store (moto,
enforcing IAM). Not one request may fail, and every object must read back whole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from conftest import configured_server, free_port, unique

ROOT = Path(__file__).resolve().parents[2]
USER = "coffer-tier"


def moto_client(service, endpoint, key_id="testing", secret="testing"):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory):
    """A moto server of its own, enforcing IAM after its first five (setup) actions."""
    exe = os.environ.get("COFFER_TEST_MOTO") or shutil.which("moto_server")
    if not exe:
        msg = "moto_server is not installed: pip install -r tests/python/requirements.txt"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="5")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            import socket

            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "moto_server did not start"
            time.sleep(0.1)
    # Exactly five unauthenticated actions: a bucket, a user with a policy, two keys.
    bucket = f"tier-{uuid.uuid4().hex[:12]}"
    moto_client("s3", endpoint).create_bucket(Bucket=bucket)
    iam = moto_client("iam", endpoint)
    iam.create_user(UserName=USER)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}]}
    iam.put_user_policy(UserName=USER, PolicyName="coffer", PolicyDocument=json.dumps(policy))
    keys = [iam.create_access_key(UserName=USER)["AccessKey"] for _ in range(2)]
    yield endpoint, bucket, keys
    proc.terminate()
    proc.wait(timeout=10)


def write_secret(mount: Path, key: dict) -> None:
    """Write the key the way the kubelet updates a Secret volume: a fresh timestamped
    directory, then the `..data` symlink swapped to it in one rename."""
    version = mount / f"..{time.time_ns()}"
    version.mkdir()
    (version / "access-key-id").write_text(key["AccessKeyId"])
    (version / "secret-access-key").write_text(key["SecretAccessKey"])
    tmp = mount / "..data_tmp"
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(version.name)
    tmp.replace(mount / "..data")
    for name in ("access-key-id", "secret-access-key"):
        link = mount / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def test_rotation_under_load_fails_no_request(iam_moto, coffer_bin, tmp_path_factory):
    endpoint, bucket, (key1, key2) = iam_moto
    base = tmp_path_factory.mktemp("coffer-rotation")
    mount = base / "secret"
    mount.mkdir()
    write_secret(mount, key1)
    toml = (
        "[tiers.standard]\n"
        'kind = "s3"\n'
        f'bucket = "{bucket}"\n'
        f'endpoint = "{endpoint}"\n'
        "path_style = true\n"
        "allow_http = true\n"
        f'access_key_id_file = "{mount / "access-key-id"}"\n'
        f'secret_access_key_file = "{mount / "secret-access-key"}"\n'
    )
    for srv in configured_server(coffer_bin, "sqlite", base, toml):
        client = srv.new_user(unique("rot"))
        b = unique("rot")
        client.create_bucket(Bucket=b)
        written: dict[str, bytes] = {}
        failures: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def upload(worker: int):
            n = 0
            while not stop.is_set():
                key = f"w{worker}/{n}"
                body = os.urandom(1024 + n % 4096)
                try:
                    client.put_object(Bucket=b, Key=key, Body=body)
                    with lock:
                        written[key] = body
                except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                    failures.append(f"{key}: {e}")
                n += 1

        workers = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(4)]
        for w in workers:
            w.start()
        time.sleep(1.0)
        write_secret(mount, key2)
        deadline = time.monotonic() + 10
        while "reloaded the backend credential" not in srv.log_text():
            assert time.monotonic() < deadline, "coffer did not reload the credential"
            time.sleep(0.05)
        moto_client("iam", endpoint, key2["AccessKeyId"], key2["SecretAccessKey"]).delete_access_key(
            UserName=USER, AccessKeyId=key1["AccessKeyId"]
        )
        # the old key is really dead at the store
        with pytest.raises(Exception):
            moto_client("s3", endpoint, key1["AccessKeyId"], key1["SecretAccessKey"]).list_objects_v2(Bucket=bucket)
        time.sleep(1.5)
        stop.set()
        for w in workers:
            w.join(timeout=30)
        assert not failures, failures[:5]
        assert len(written) > 20, "too few uploads to show anything"
        for key, body in written.items():
            assert client.get_object(Bucket=b, Key=key)["Body"].read() == body, key
        # no secret in the server's logs
        log = srv.log_text()
        for k in (key1, key2):
            assert k["SecretAccessKey"] not in log
