#!/usr/bin/env bash
# backup.sh — dump coffer's PostgreSQL database, upload the dump to object storage, and
# delete the dumps older than RETENTION_DAYS.
#
# Environment:
#   DATABASE_URL     postgres://USER:PASSWORD@HOST:5432/DB — the database to dump
#   S3_BUCKET        the bucket the dumps go to (it must exist)
#   S3_PREFIX        the folder in that bucket (default: coffer); dumps are named
#                    <S3_PREFIX>/coffer-YYYYMMDDTHHMMSSZ.dump (UTC)
#   S3_ENDPOINT      an S3-compatible endpoint (MinIO, Ceph, …); unset or empty: AWS
#   RETENTION_DAYS   delete dumps older than this many days (default 30; 0 keeps all).
#                    Only objects named like a dump, directly under S3_PREFIX, are ever
#                    deleted, and only after a new dump has been uploaded.
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (default us-east-1), …
#                    the aws CLI's own variables
#   BACKUP_STAGE     all (default): dump and upload. The CronJob splits the work between two
#                    images: `dump` (pg_dump, in a PostgreSQL image) writes into BACKUP_DIR,
#                    then `upload` (the aws CLI, in its image) uploads what is there.
#   BACKUP_DIR       where the dump is written (default: a temporary directory); required
#                    for the split stages, which share it (an emptyDir).
#
# The dump is pg_dump's custom format: compressed, and restored selectively and in
# parallel by pg_restore (restore.sh). Nothing secret is printed: the database appears as
# host/name, and the aws CLI reads its credentials from the environment.
set -euo pipefail

STAGE="${BACKUP_STAGE:-all}"
PREFIX="${S3_PREFIX-coffer}"
PREFIX="${PREFIX#/}"
PREFIX="${PREFIX%/}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
# The file names this script makes — and the only ones its retention deletes.
DUMP_PATTERN='^coffer-([0-9]{8}T[0-9]{6}Z)\.dump$'

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
need() { [[ -n "${!1:-}" ]] || die "$1 is not set"; }

# postgres://user:secret@host:5432/db?sslmode=require → host:5432/db
database_for_log() {
  local u="${DATABASE_URL#*://}"
  u="${u##*@}"
  printf '%s' "${u%%\?*}"
}

# The object key of a dump file: <prefix>/<name> (or <name> with an empty prefix).
key_of() { printf '%s' "${PREFIX:+$PREFIX/}$1"; }

aws_s3() {
  if [[ -n "${S3_ENDPOINT:-}" ]]; then
    aws --endpoint-url "$S3_ENDPOINT" "$@"
  else
    aws "$@"
  fi
}

dump() {
  local dir="$1"
  need DATABASE_URL
  command -v pg_dump >/dev/null || die "pg_dump is not installed (the dump stage runs in a PostgreSQL image)"
  local name
  name="coffer-$(date -u +%Y%m%dT%H%M%SZ).dump"
  log "dumping $(database_for_log) to $name"
  # Written under a temporary name and renamed once complete and readable, so that the
  # upload never sees half a dump.
  pg_dump --format=custom --lock-wait-timeout=120s --dbname="$DATABASE_URL" --file="$dir/$name.partial"
  pg_restore --list "$dir/$name.partial" >/dev/null || die "pg_restore cannot read the new dump"
  mv "$dir/$name.partial" "$dir/$name"
  log "dumped $(stat -c %s "$dir/$name") bytes"
}

upload() {
  local dir="$1" file name key size remote uploaded=0
  need S3_BUCKET
  command -v aws >/dev/null || die "the aws CLI is not installed (the upload stage runs in an aws-cli image)"
  for file in "$dir"/coffer-*.dump; do
    [[ -e "$file" ]] || continue
    name="${file##*/}"
    [[ "$name" =~ $DUMP_PATTERN ]] || continue
    key="$(key_of "$name")"
    size="$(stat -c %s "$file")"
    log "uploading $name to s3://$S3_BUCKET/$key"
    aws_s3 s3 cp --only-show-errors "$file" "s3://$S3_BUCKET/$key"
    remote="$(aws_s3 s3api head-object --bucket "$S3_BUCKET" --key "$key" --query ContentLength --output text)"
    [[ "$remote" == "$size" ]] || die "s3://$S3_BUCKET/$key has $remote bytes, the dump $size"
    rm -f "$file"
    uploaded=$((uploaded + 1))
  done
  ((uploaded > 0)) || die "no dump to upload in $dir"
  log "uploaded $uploaded dump(s)"
}

# Delete the dumps under the prefix whose timestamp is older than RETENTION_DAYS.
prune() {
  if ((RETENTION_DAYS == 0)); then
    log "RETENTION_DAYS=0: keeping every dump"
    return
  fi
  local cutoff listing key name deleted=0 kept=0
  cutoff="$(date -u -d "@$(($(date -u +%s) - RETENTION_DAYS * 86400))" +%Y%m%dT%H%M%SZ)"
  # Keys in text output are tab-separated (a page per line); "None" when there are none.
  listing="$(aws_s3 s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "${PREFIX:+$PREFIX/}" \
    --query 'Contents[].Key' --output text)" || die "cannot list s3://$S3_BUCKET/${PREFIX:+$PREFIX/}"
  while IFS= read -r key; do
    [[ -n "$key" && "$key" != "None" ]] || continue
    if [[ -n "$PREFIX" ]]; then
      [[ "$key" == "$PREFIX/"* ]] || continue
      name="${key#"$PREFIX/"}"
    else
      name="$key"
    fi
    [[ "$name" =~ $DUMP_PATTERN ]] || continue
    # Fixed-width UTC timestamps compare as strings.
    if [[ "${BASH_REMATCH[1]}" < "$cutoff" ]]; then
      log "deleting s3://$S3_BUCKET/$key (older than $RETENTION_DAYS days)"
      aws_s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$key"
      deleted=$((deleted + 1))
    else
      kept=$((kept + 1))
    fi
  done < <(tr '\t' '\n' <<<"$listing")
  log "retention: $kept dump(s) kept, $deleted deleted"
}

[[ "$STAGE" == dump || "$RETENTION_DAYS" =~ ^[0-9]+$ ]] ||
  die "RETENTION_DAYS must be a whole number of days, not '$RETENTION_DAYS'"

case "$STAGE" in
  all)
    need S3_BUCKET
    dir="${BACKUP_DIR:-}"
    if [[ -z "$dir" ]]; then
      dir="$(mktemp -d)"
      trap 'rm -rf "$dir"' EXIT
    fi
    dump "$dir"
    upload "$dir"
    prune
    ;;
  dump)
    need BACKUP_DIR
    dump "$BACKUP_DIR"
    ;;
  upload)
    need BACKUP_DIR
    upload "$BACKUP_DIR"
    prune
    ;;
  *) die "BACKUP_STAGE must be all, dump or upload, not '$STAGE'" ;;
esac
log "done"
