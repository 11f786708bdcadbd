"""STS AssumeRoleWithWebIdentity: tokens from a real OpenID provider (oauth2-mock-server,
tests/oidc/issuer.mjs) exchanged for temporary credentials, used by boto3 and the aws CLI
through the stock web-identity flow."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import STORES, configured_server, eventually, s3_client, s3_error, unique

ROOT = Path(__file__).resolve().parents[2]
ISSUER_DIR = ROOT / "tests" / "oidc"


class Issuer:
    """The OpenID provider, driven over stdin/stdout (see issuer.mjs)."""

    def __init__(self):
        if not (ISSUER_DIR / "node_modules" / "oauth2-mock-server").exists():
            msg = f"oauth2-mock-server is not installed: run `npm ci` in {ISSUER_DIR}"
            if os.environ.get("CI") == "true":
                pytest.fail(msg)
            pytest.skip(msg)
        self.proc = subprocess.Popen(
            ["node", "issuer.mjs"], cwd=ISSUER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = json.loads(self.proc.stdout.readline())["issuer"]

    def token(self, claims: dict, expires_in: int = 600) -> str:
        self.proc.stdin.write(json.dumps({"cmd": "token", "claims": claims, "expiresIn": expires_in}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "token" in answer, answer
        return answer["token"]

    def login_as(self, claims: dict) -> None:
        """The next sign-in through the authorization code flow gets these claims."""
        self._ask({"cmd": "login-as", "claims": claims})

    def sign_ins(self) -> int:
        """How many authorization codes the provider has exchanged for tokens."""
        return self._ask({"cmd": "sign-ins"})["count"]

    def _ask(self, command: dict) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, answer
        return answer

    def close(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    yield i
    i.close()


@pytest.fixture(scope="module")
def cluster():
    """A second provider standing in for a Kubernetes cluster's service-account issuer."""
    i = Issuer()
    yield i
    i.close()


@pytest.fixture(scope="module", params=STORES)
def fed_server(request, issuer, cluster, coffer_bin, tmp_path_factory):
    """A coffer trusting the issuer (group `pb-readers` cleared for protected-b) and the
    cluster's service accounts (namespace `team-pb` cleared for protected-b)."""
    base = tmp_path_factory.mktemp(f"coffer-sts-{request.param}")
    toml = (
        "[[oidc.issuers]]\n"
        f'issuer = "{issuer.url}"\n'
        'audiences = ["coffer"]\n'
        "realm_roles = true\n"
        "[[oidc.issuers]]\n"
        f'issuer = "{cluster.url}"\n'
        'audiences = ["coffer"]\n'
        "service_accounts = true\n"
        "[oidc.clearances]\n"
        'pb-readers = ["protected-b"]\n'
        "[oidc.namespace_clearances]\n"
        'team-pb = ["protected-b"]\n'
    )
    yield from configured_server(coffer_bin, request.param, base, toml)


def claims(user: str, groups=(), **extra) -> dict:
    c = {"aud": "coffer", "sub": f"sub-{user}", "preferred_username": user, "groups": list(groups)}
    c.update(extra)
    return c


def sts_client(server):
    # AssumeRoleWithWebIdentity is unsigned; boto3 still wants some credentials configured.
    return boto3.client(
        "sts",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1}),
    )


def assume(server, token: str, **kw) -> dict:
    return sts_client(server).assume_role_with_web_identity(
        RoleArn="arn:aws:iam::000000000000:role/coffer", RoleSessionName="test", WebIdentityToken=token, **kw
    )["Credentials"]


def session_s3(server, creds: dict):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def test_a_provider_token_buys_working_credentials(fed_server, issuer):
    user = unique("fed")
    creds = assume(fed_server, issuer.token(claims(user)), DurationSeconds=900)
    assert creds["AccessKeyId"].startswith("CS")
    assert 800 < (creds["Expiration"].timestamp() - time.time()) <= 960
    s3 = session_s3(fed_server, creds)
    bucket = unique("sts")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"from a session")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"from a session"
    # the bucket belongs to the token's user
    owners = {b["name"]: b["owner"] for b in fed_server.admin("bucket", "list")}
    assert owners[bucket] == user


def test_bad_tokens_are_refused(fed_server, issuer):
    sts = sts_client(fed_server)

    def code_of(token):
        with pytest.raises(ClientError) as e:
            sts.assume_role_with_web_identity(
                RoleArn="arn:aws:iam::000000000000:role/coffer", RoleSessionName="tt", WebIdentityToken=token
            )
        return e.value.response["Error"]["Code"]

    assert code_of(issuer.token(claims("x"), expires_in=-600)) == "ExpiredTokenException"
    assert code_of(issuer.token(claims("x", aud="someone-else"))) == "InvalidIdentityToken"
    good = issuer.token(claims("x"))
    head, payload, sig = good.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["preferred_username"] = "admin"
    forged_b64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert code_of(f"{head}.{forged_b64}.{sig}") == "InvalidIdentityToken"
    none_head = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    assert code_of(f"{none_head}.{payload}.") == "InvalidIdentityToken"


def test_tampered_or_missing_session_tokens_are_refused(fed_server, issuer):
    creds = assume(fed_server, issuer.token(claims(unique("fed"))))
    tampered = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    with s3_error("InvalidToken", 400):
        session_s3(fed_server, tampered).list_buckets()
    # the session's key without its token
    bare = s3_client(fed_server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    with s3_error("InvalidToken", 400):
        bare.list_buckets()
    # another session's token
    other = assume(fed_server, issuer.token(claims(unique("fed"))))
    with s3_error("InvalidToken", 400):
        session_s3(fed_server, dict(creds, SessionToken=other["SessionToken"])).list_buckets()


def test_a_narrowed_session_cannot_exceed_its_policy(fed_server, issuer):
    user = unique("fed")
    full = session_s3(fed_server, assume(fed_server, issuer.token(claims(user))))
    bucket, other = unique("pol"), unique("pol")
    full.create_bucket(Bucket=bucket)
    full.create_bucket(Bucket=other)
    full.put_object(Bucket=bucket, Key="k", Body=b"x")
    policy = json.dumps({"read_only": True, "buckets": [bucket]})
    narrow = session_s3(fed_server, assume(fed_server, issuer.token(claims(user)), Policy=policy))
    assert narrow.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"
    with s3_error("AccessDenied", 403):
        narrow.put_object(Bucket=bucket, Key="k2", Body=b"y")
    with s3_error("AccessDenied", 403):
        narrow.list_objects_v2(Bucket=other)
    assert [b["Name"] for b in narrow.list_buckets()["Buckets"]] == [bucket]


def test_groups_give_clearance_and_grants_apply_live(fed_server, issuer):
    owner = fed_server.create_user(unique("own"), clearance=["unclassified", "protected-b"])["name"]
    bucket = unique("pb")
    fed_server.admin("bucket", "create", bucket, "--owner", owner, "--classification", "protected-b")
    fed_server.admin("grant", "add", "--bucket", bucket, "--group", "analysts", "--role", "read")
    plain = session_s3(fed_server, assume(fed_server, issuer.token(claims(unique("fed"), ["analysts"]))))
    with s3_error("AccessDenied", 403):  # group grant, but no clearance for protected-b
        plain.list_objects_v2(Bucket=bucket)
    cleared_user = unique("fed")
    cleared = session_s3(
        fed_server, assume(fed_server, issuer.token(claims(cleared_user, ["/analysts"], realm_access={"roles": ["pb-readers"]})))
    )
    assert cleared.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # removing the grant stops the live session within a second
    fed_server.admin("grant", "remove", "--bucket", bucket, "--group", "analysts")
    start = time.monotonic()

    def denied():
        try:
            cleared.list_objects_v2(Bucket=bucket)
            return False
        except ClientError as e:
            return e.response["Error"]["Code"] == "AccessDenied"

    eventually(lambda: denied() or None, timeout=1.5)
    assert time.monotonic() - start < 1.0


def web_identity_env(server, token: str, tmp_path) -> dict[str, str]:
    """The stock AWS SDK web-identity environment: a token file, a role, an STS endpoint
    override; no keys anywhere, and a private HOME (the aws CLI caches assumed-role
    credentials under ~/.aws/cli/cache)."""
    token_file = tmp_path / "token"
    token_file.write_text(token)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
        AWS_ROLE_ARN="arn:aws:iam::000000000000:role/coffer",
        AWS_ROLE_SESSION_NAME="cli",
        AWS_ENDPOINT_URL_STS=server.endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        HOME=str(tmp_path),
    )
    return env


@pytest.mark.skipif(shutil.which("aws") is None, reason="the aws CLI is not installed")
def test_the_stock_web_identity_flow_of_boto3_and_the_aws_cli(fed_server, issuer, tmp_path):
    user = unique("fed")
    env = web_identity_env(fed_server, issuer.token(claims(user)), tmp_path)
    bucket = unique("cli")
    (tmp_path / "f.txt").write_text("hello")
    for args in (["s3", "mb", f"s3://{bucket}"], ["s3", "cp", str(tmp_path / "f.txt"), f"s3://{bucket}/f.txt"]):
        r = subprocess.run(["aws", "--endpoint-url", fed_server.endpoint, *args], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    # boto3 in another process with the same environment, no keys anywhere
    code = (
        "import boto3, sys; from botocore.config import Config;"
        f"s3 = boto3.client('s3', endpoint_url='{fed_server.endpoint}', config=Config(s3={{'addressing_style': 'path'}}));"
        f"sys.stdout.write(s3.get_object(Bucket='{bucket}', Key='f.txt')['Body'].read().decode())"
    )
    r = subprocess.run(["python3", "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello"
    owners = {b["name"]: b["owner"] for b in fed_server.admin("bucket", "list")}
    assert owners[bucket] == user


def sa_claims(namespace: str, name: str = "notebook") -> dict:
    return {"aud": "coffer", "sub": f"system:serviceaccount:{namespace}:{name}"}


def test_service_account_tokens_act_as_their_namespace(fed_server, cluster, issuer):
    ns = unique("ns")
    pod = session_s3(fed_server, assume(fed_server, cluster.token(sa_claims(ns))))
    bucket = unique("prof")
    pod.create_bucket(Bucket=bucket)
    owners = {b["name"]: b["owner"] for b in fed_server.admin("bucket", "list")}
    assert owners[bucket] == ns
    # another service account of the same namespace is the same principal
    other_pod = session_s3(fed_server, assume(fed_server, cluster.token(sa_claims(ns, "pipeline"))))
    other_pod.put_object(Bucket=bucket, Key="k", Body=b"shared within the profile")
    # a person's token from the cluster issuer is not a service account: refused
    with pytest.raises(ClientError) as e:
        assume(fed_server, cluster.token(claims("alice")))
    assert e.value.response["Error"]["Code"] == "InvalidIdentityToken"
    # a service-account-shaped token from the people issuer is just a user named by its claims
    with pytest.raises(ClientError):
        assume(fed_server, issuer.token(sa_claims(ns)))  # no preferred_username


def test_namespace_clearance(fed_server, cluster):
    owner = fed_server.create_user(unique("own"), clearance=["unclassified", "protected-b"])["name"]
    bucket = unique("pbns")
    fed_server.admin("bucket", "create", bucket, "--owner", owner, "--classification", "protected-b")
    for ns in ("team-pb", "team-open"):
        fed_server.admin("grant", "add", "--bucket", bucket, "--user", ns, "--role", "read")
    cleared = session_s3(fed_server, assume(fed_server, cluster.token(sa_claims("team-pb"))))
    assert cleared.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    uncleared = session_s3(fed_server, assume(fed_server, cluster.token(sa_claims("team-open"))))
    with s3_error("AccessDenied", 403):
        uncleared.list_objects_v2(Bucket=bucket)


def test_the_stock_flow_with_a_projected_service_account_token(fed_server, cluster, tmp_path):
    ns = unique("ns")
    env = web_identity_env(fed_server, cluster.token(sa_claims(ns)), tmp_path)
    bucket = unique("pod")
    code = (
        "import boto3; from botocore.config import Config;"
        f"s3 = boto3.client('s3', endpoint_url='{fed_server.endpoint}', config=Config(s3={{'addressing_style': 'path'}}));"
        f"s3.create_bucket(Bucket='{bucket}'); s3.put_object(Bucket='{bucket}', Key='k', Body=b'pod')"
    )
    r = subprocess.run(["python3", "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        ["aws", "--endpoint-url", fed_server.endpoint, "s3", "cp", f"s3://{bucket}/k", "-"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "pod"
