"""Service-account tokens verified through the Kubernetes TokenReview API, end to end: coffer
(SQLite and PostgreSQL) asks a stand-in API server over HTTPS — a certificate authority made
here with openssl, trusted through `ca_file` — and boto3 uses the STS credentials it gets.

No real kube-apiserver can run on these machines, so the API server is a small fake that
speaks the TokenReview v1 JSON and checks what coffer sends: the path, its bearer
credential (coffer's own pod token, from `token_file`) and the audiences."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import STORES, configured_server, s3_error, unique
from test_sts import assume, cluster, session_s3, sts_client  # noqa: F401  (fixtures and helpers)

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


class FakeApiServer:
    """Answers TokenReviews: tokens in `accepted` are authenticated as their service account."""

    def __init__(self, tmp, credential: str):
        self.credential = credential
        self.accepted: dict[str, str] = {}
        self.seen: list[dict] = []
        self.problems: list[str] = []
        self.failing = False
        ca_key, ca_crt = tmp / "ca.key", tmp / "ca.crt"
        key, csr, crt = tmp / "api.key", tmp / "api.csr", tmp / "api.crt"
        ext = tmp / "san.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\n")
        run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
            "-days", "1", "-subj", "/CN=test cluster CA")
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=kubernetes")
        run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", "1", "-extfile", str(ext))
        self.ca_file = ca_crt
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                if fake.failing:
                    self.send_error(503, "etcd is down")
                    return
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.seen.append(body)
                if self.path != REVIEW_PATH:
                    fake.problems.append(f"path {self.path}")
                if self.headers.get("authorization") != f"Bearer {fake.credential}":
                    fake.problems.append("coffer's bearer credential is wrong")
                token = body["spec"]["token"]
                if token in fake.accepted:
                    status = {"authenticated": True, "audiences": body["spec"]["audiences"],
                              "user": {"username": fake.accepted[token], "groups": ["system:authenticated"]}}
                else:
                    status = {"authenticated": False, "error": "token has been invalidated"}
                answer = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                     "status": status}).encode()
                self.send_response(201)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(crt), str(key))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module", params=STORES)
def reviewed(request, cluster, coffer_bin, tmp_path_factory):
    """A coffer whose cluster issuer is checked by TokenReview against the fake API server."""
    base = tmp_path_factory.mktemp(f"coffer-review-{request.param}")
    own_token = base / "pod-token"
    own_token.write_text("coffer-pod-token-" + unique("x") + "\n")
    api = FakeApiServer(base, own_token.read_text().strip())
    toml = (
        "[[oidc.issuers]]\n"
        f'issuer = "{cluster.url}"\n'
        'audiences = ["coffer"]\n'
        "service_accounts = true\n"
        "[oidc.issuers.token_review]\n"
        f'api_server = "{api.url}"\n'
        f'token_file = "{own_token}"\n'
        f'ca_file = "{api.ca_file}"\n'
        "cache_seconds = 1\n"
    )
    for srv in configured_server(coffer_bin, request.param, base, toml):
        yield srv, api
    api.stop()


def sa_token(cluster, ns: str, sa: str = "default-editor") -> str:
    return cluster.token({"aud": "coffer", "sub": f"system:serviceaccount:{ns}:{sa}"})


def test_a_reviewed_service_account_gets_working_credentials(reviewed, cluster):
    srv, api = reviewed
    ns = unique("team")
    token = sa_token(cluster, ns)
    api.accepted[token] = f"system:serviceaccount:{ns}:default-editor"
    s3 = session_s3(srv, assume(srv, token))
    bucket = unique("sa")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"from a reviewed pod")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"from a reviewed pod"
    owners = {b["name"]: b["owner"] for b in srv.admin("bucket", "list")}
    assert owners[bucket] == ns  # the profile principal is the namespace
    assert api.problems == []
    assert api.seen[-1]["spec"]["audiences"] == ["coffer"]


def test_tokens_the_api_server_refuses_are_refused(reviewed, cluster):
    srv, api = reviewed
    sts = sts_client(srv)
    from botocore.exceptions import ClientError

    def code_of(token):
        with pytest.raises(ClientError) as e:
            sts.assume_role_with_web_identity(
                RoleArn="arn:aws:iam::000000000000:role/coffer", RoleSessionName="review", WebIdentityToken=token
            )
        return e.value.response["Error"]["Code"]

    # unknown to the API server (a deleted pod's token)
    before = len(api.seen)
    assert code_of(sa_token(cluster, unique("gone"))) == "InvalidIdentityToken"
    assert len(api.seen) == before + 1
    # expired: refused before any review
    expired = cluster.token({"aud": "coffer", "sub": "system:serviceaccount:x:y"}, expires_in=-600)
    assert code_of(expired) == "ExpiredTokenException"
    assert len(api.seen) == before + 1
    # the API server names someone who is not a service account
    person = sa_token(cluster, unique("p"))
    api.accepted[person] = "alice"
    assert code_of(person) == "InvalidIdentityToken"
    assert api.problems == []


def test_a_failing_api_server_is_an_idp_error(reviewed, cluster):
    srv, api = reviewed
    token = sa_token(cluster, unique("late"))
    api.accepted[token] = "system:serviceaccount:late:default"
    api.failing = True
    try:
        with s3_error("IDPCommunicationError", 400):
            assume(srv, token)
    finally:
        api.failing = False
    assert assume(srv, token)["AccessKeyId"].startswith("CS")
