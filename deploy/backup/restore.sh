#!/usr/bin/env bash
# restore.sh — download a dump made by backup.sh (a named one, or the latest) and restore
# it into DATABASE_URL, replacing what that database holds.
#
# Environment:
#   DATABASE_URL     postgres://USER:PASSWORD@HOST:5432/DB — the database to restore INTO
#   RESTORE_CONFIRM  must be that database's name. Without it the script refuses: a restore
#                    drops and re-creates every table of the dump in the target.
#   RESTORE_DUMP     the dump's file name (coffer-20260102T030405Z.dump) or key under
#                    S3_PREFIX; `latest` or unset: the newest dump
#   S3_BUCKET, S3_PREFIX (default coffer), S3_ENDPOINT, AWS_* — as for backup.sh
#   RESTORE_FILE     restore this local dump file instead of downloading one
#   RESTORE_ALLOW_CONNECTIONS  `true` to restore while other sessions are connected to the
#                    database (by default the script refuses: stop coffer first)
#   RESTORE_STAGE    all (default) | download | restore. Like the backup CronJob, a restore
#                    Job may run `download` (the aws CLI) and `restore` (pg_restore) in two
#                    images sharing RESTORE_DIR.
#   RESTORE_DIR      where the dump is downloaded (default: a temporary directory)
#
# pg_restore runs with --clean --if-exists --no-owner --no-privileges in one transaction:
# either the whole dump is restored or the database is left as it was.
set -euo pipefail

STAGE="${RESTORE_STAGE:-all}"
PREFIX="${S3_PREFIX-coffer}"
PREFIX="${PREFIX#/}"
PREFIX="${PREFIX%/}"
WANTED="${RESTORE_DUMP:-latest}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
DUMP_PATTERN='^coffer-([0-9]{8}T[0-9]{6}Z)\.dump$'

log() { printf '%s restore: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
need() { [[ -n "${!1:-}" ]] || die "$1 is not set"; }

database_for_log() {
  local u="${DATABASE_URL#*://}"
  u="${u##*@}"
  printf '%s' "${u%%\?*}"
}

aws_s3() {
  if [[ -n "${S3_ENDPOINT:-}" ]]; then
    aws --endpoint-url "$S3_ENDPOINT" "$@"
  else
    aws "$@"
  fi
}

psql_value() { psql --no-psqlrc --quiet --tuples-only --no-align --set ON_ERROR_STOP=1 --dbname="$DATABASE_URL" -c "$1"; }

# Refuse unless RESTORE_CONFIRM names the target database, and (unless allowed) while
# anything else is connected to it.
check_target() {
  need DATABASE_URL
  command -v psql >/dev/null || die "psql is not installed (the restore stage runs in a PostgreSQL image)"
  command -v pg_restore >/dev/null || die "pg_restore is not installed"
  local db others
  db="$(psql_value 'SELECT current_database()')" || die "cannot connect to $(database_for_log)"
  if [[ "${RESTORE_CONFIRM:-}" != "$db" ]]; then
    die "refusing to restore into database '$db' ($(database_for_log)): its tables would be replaced. Set RESTORE_CONFIRM=$db to proceed."
  fi
  others="$(psql_value "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")"
  if ((others > 0)) && [[ "${RESTORE_ALLOW_CONNECTIONS:-}" != "true" ]]; then
    die "$others other session(s) are connected to '$db': scale coffer (gateway and controller) to 0 first, or set RESTORE_ALLOW_CONNECTIONS=true"
  fi
}

# The key of the dump to restore.
choose_key() {
  if [[ "$WANTED" != "latest" ]]; then
    if [[ "$WANTED" == */* || -z "$PREFIX" ]]; then
      printf '%s' "$WANTED"
    else
      printf '%s' "$PREFIX/$WANTED"
    fi
    return
  fi
  local listing key name best="" best_key=""
  listing="$(aws_s3 s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX:+$PREFIX/}" \
    --query 'Contents[].Key' --output text)" || die "cannot list s3://$S3_BUCKET/${PREFIX:+$PREFIX/}"
  while IFS= read -r key; do
    [[ -n "$key" && "$key" != "None" ]] || continue
    name="${key#"${PREFIX:+$PREFIX/}"}"
    [[ "$name" =~ $DUMP_PATTERN ]] || continue
    if [[ "${BASH_REMATCH[1]}" > "$best" ]]; then
      best="${BASH_REMATCH[1]}"
      best_key="$key"
    fi
  done < <(tr '\t' '\n' <<<"$listing")
  [[ -n "$best_key" ]] || die "no dump under s3://$S3_BUCKET/${PREFIX:+$PREFIX/}"
  printf '%s' "$best_key"
}

download() {
  local dir="$1" key
  need S3_BUCKET
  command -v aws >/dev/null || die "the aws CLI is not installed (the download stage runs in an aws-cli image)"
  key="$(choose_key)" || exit 1
  log "downloading s3://$S3_BUCKET/$key"
  aws_s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$key" "$dir/restore.dump.partial"
  mv "$dir/restore.dump.partial" "$dir/restore.dump"
}

restore() {
  local file="$1"
  [[ -s "$file" ]] || die "no dump at $file"
  pg_restore --list "$file" >/dev/null || die "$file is not a pg_dump custom-format archive"
  log "restoring $(stat -c %s "$file") bytes into $(database_for_log)"
  pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error \
    --dbname="$DATABASE_URL" "$file"
  log "restored; run \`coffer migrate\` (the migration Job) before starting coffer on it"
}

case "$STAGE" in
  all)
    check_target
    if [[ -n "${RESTORE_FILE:-}" ]]; then
      restore "$RESTORE_FILE"
    else
      dir="${RESTORE_DIR:-}"
      if [[ -z "$dir" ]]; then
        dir="$(mktemp -d)"
        trap 'rm -rf "$dir"' EXIT
      fi
      download "$dir"
      restore "$dir/restore.dump"
    fi
    ;;
  download)
    need RESTORE_DIR
    download "$RESTORE_DIR"
    ;;
  restore)
    check_target
    restore "${RESTORE_FILE:-${RESTORE_DIR:?RESTORE_DIR or RESTORE_FILE is not set}/restore.dump}"
    ;;
  *) die "RESTORE_STAGE must be all, download or restore, not '$STAGE'" ;;
esac
log "done"
