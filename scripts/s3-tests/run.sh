#!/usr/bin/env bash
# Run the ceph/s3-tests compatibility suite (boto3 tests in s3tests/functional/test_s3.py)
# against a throw-away coffer server.
#
# Usage:
#   S3TESTS_DIR=/path/to/s3-tests scripts/s3-tests/run.sh [extra pytest args...]
#
# Environment:
#   S3TESTS_DIR   (required) a checkout/export of https://github.com/ceph/s3-tests
#   COFFER_BIN    the coffer binary (default: <repo>/target/debug/coffer, built if missing)
#   S3TESTS_VENV  the Python venv for the suite (default: $S3TESTS_DIR/../venv; created and
#                 filled from the suite's requirements.txt when missing)
#   SELECTION     file of test names/node ids to run, one per line, '#' comments allowed
#                 (default: scripts/s3-tests/selection.txt next to this script)
#   TESTS_K       a pytest -k expression; when set it is used INSTEAD of the selection file
#   KEEP_DATA=1   keep coffer's temp data dir and log after the run (printed at the end)
#   S3TESTS_API_NAME  the "api_name" (LocationConstraint) of [s3 main]; default empty, which makes
#                 the suite send CreateBucket without a LocationConstraint and skip
#                 test_bucket_get_location. coffer treats a LocationConstraint as a storage tier
#                 name, so "standard" (the default tier) is the only other value that works.
#
# What it does: picks a free port, starts `coffer serve` on a fresh temp data dir with a
# known bootstrap admin key, creates the three users the suite needs ("s3 main", "s3 alt",
# "s3 tenant") with `coffer admin user create` and a key for each with
# `coffer admin --json key create`, writes an s3tests.conf, runs pytest on the selected
# tests, prints the summary and stops coffer. Exit status is pytest's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

: "${S3TESTS_DIR:?set S3TESTS_DIR to a checkout of ceph/s3-tests}"
S3TESTS_DIR="$(cd "$S3TESTS_DIR" && pwd)"
COFFER_BIN="${COFFER_BIN:-$repo/target/debug/coffer}"
S3TESTS_VENV="${S3TESTS_VENV:-$(dirname "$S3TESTS_DIR")/venv}"
SELECTION="${SELECTION:-$here/selection.txt}"

export COLUMNS="${COLUMNS:-200}"   # wider pytest summary lines (failure reasons not cut)
say() { printf '\n== %s\n' "$*" >&2; }

# --- coffer binary -------------------------------------------------------------------
if [ ! -x "$COFFER_BIN" ]; then
  say "building coffer (cargo build -p coffer)"
  (cd "$repo" && cargo build -p coffer)
fi

# --- Python venv with the suite's requirements ------------------------------------------
if [ ! -x "$S3TESTS_VENV/bin/python" ]; then
  say "creating venv $S3TESTS_VENV"
  python3 -m venv "$S3TESTS_VENV"
  "$S3TESTS_VENV/bin/pip" install -q --upgrade pip
  # tox is listed in requirements.txt but not needed to run pytest directly; harmless.
  "$S3TESTS_VENV/bin/pip" install -q -r "$S3TESTS_DIR/requirements.txt"
fi
PY="$S3TESTS_VENV/bin/python"

# --- temp data dir, free port ------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/coffer-s3tests.XXXXXX")"
data="$work/data"
conf="$work/s3tests.conf"
log="$work/coffer.log"
mkdir -p "$data"
port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# The bootstrap platform admin coffer creates on start (otherwise it generates and prints one).
# The tests never use it; they use the three users created below.
export COFFER_ADMIN_ACCESS_KEY="CKS3TESTSBOOTSTRAP00"
export COFFER_ADMIN_SECRET_KEY="s3tests-bootstrap-secret-$(date +%s)-$RANDOM"
export RUST_LOG="${RUST_LOG:-info}"

coffer_pid=""
cleanup() {
  if [ -n "$coffer_pid" ] && kill -0 "$coffer_pid" 2>/dev/null; then
    kill -TERM "$coffer_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$coffer_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$coffer_pid" 2>/dev/null || true
  fi
  if [ "${KEEP_DATA:-0}" = "1" ]; then
    echo "kept: data dir $data, coffer log $log, config $conf" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

admin() { "$COFFER_BIN" admin --data-dir "$data" "$@"; }

# --- users and keys (created before the server starts, in the same SQLite store) ----------
# The suite needs three distinct identities. coffer has no tenants, so "s3 tenant" is just a
# third plain user. coffer generates the key ids and secrets; we read them from --json.
say "creating users and keys in $data"
declare -A AK SK
for u in s3main s3alt s3tenant; do
  admin user create "$u" >/dev/null
  json="$(admin --json key create --user "$u")"
  AK[$u]="$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_key_id"])' <<<"$json")"
  SK[$u]="$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["secret_access_key"])' <<<"$json")"
done

# --- start coffer -----------------------------------------------------------------------
say "starting coffer on 127.0.0.1:$port (log: $log)"
"$COFFER_BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$log" 2>&1 &
coffer_pid=$!
for _ in $(seq 1 100); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$coffer_pid" 2>/dev/null || { echo "coffer exited early:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done

# --- s3tests.conf -------------------------------------------------------------------------
# user_id/display_name: coffer reports the user name as the owner ID and display name, so the
# tests that compare Owner.ID / DisplayName against the config get the names.
# api_name: see S3TESTS_API_NAME above.
cat >"$conf" <<EOF
[DEFAULT]
host = 127.0.0.1
port = $port
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = s3t-{random}-

[s3 main]
display_name = s3main
user_id = s3main
email = s3main@example.com
api_name = ${S3TESTS_API_NAME:-}
access_key = ${AK[s3main]}
secret_key = ${SK[s3main]}

[s3 alt]
display_name = s3alt
user_id = s3alt
email = s3alt@example.com
access_key = ${AK[s3alt]}
secret_key = ${SK[s3alt]}

[s3 tenant]
display_name = s3tenant
user_id = s3tenant
email = s3tenant@example.com
access_key = ${AK[s3tenant]}
secret_key = ${SK[s3tenant]}
tenant = testx

# Present only because the suite's configure() reads these sections unconditionally;
# coffer has no IAM/STS so these keys are never valid.
[iam]
email = iam@example.com
user_id = iam
access_key = NOTAVALIDKEY00000000
secret_key = notavalidsecret
display_name = iam

[iam root]
access_key = NOTAVALIDKEY00000001
secret_key = notavalidsecret
user_id = iamroot
email = iamroot@example.com

[iam alt root]
access_key = NOTAVALIDKEY00000002
secret_key = notavalidsecret
user_id = iamaltroot
email = iamaltroot@example.com
EOF

# --- which tests ----------------------------------------------------------------------------
args=()
if [ -n "${TESTS_K:-}" ]; then
  args+=(s3tests/functional/test_s3.py -k "$TESTS_K")
else
  # Each non-comment line of the selection file is a test function name in test_s3.py
  # (or already a full node id containing "::").
  while IFS= read -r line; do
    line="${line%%#*}"; line="$(echo "$line" | tr -d '[:space:]')"
    [ -z "$line" ] && continue
    case "$line" in
      *::*) args+=("$line") ;;
      *) args+=("s3tests/functional/test_s3.py::$line") ;;
    esac
  done <"$SELECTION"
fi

# --- run ----------------------------------------------------------------------------------
say "running ${#args[@]} pytest targets against coffer"
cd "$S3TESTS_DIR"
set +e
# Region: the suite's main client does not set one; make boto3 sign for us-east-1.
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" \
AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
S3TEST_CONF="$conf" \
  "$PY" -m pytest -p no:cacheprovider -q -rfEs --tb="${PYTEST_TB:-short}" "${args[@]}" "$@"
rc=$?
set -e
exit $rc
