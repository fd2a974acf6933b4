#!/usr/bin/env bash
# A generic CI job for a repository of host network states.
#
#   netconverge-ci.sh HOSTS_DIR [REPORT_DIR]
#
# HOSTS_DIR holds one directory per host: HOSTS_DIR/<host>/desired/*.yaml, and optionally
# HOSTS_DIR/<host>/snapshot.yaml, the output of `netconverge show` published by that host
# (e.g. by a cron job or the monitoring below). For every host it
#   1. validates the desired state (a pre-merge gate: exit 2 = invalid YAML, with file:line:col);
#   2. if a snapshot exists, checks the host against the repository offline
#      (`check --observed`), writing a JUnit report per host into REPORT_DIR.
# Exit status: 0 all valid and in sync, 1 some host drifted, 2 some desired state is invalid or
# a check could not run.
set -u
hosts=${1:?usage: netconverge-ci.sh HOSTS_DIR [REPORT_DIR]}
reports=${2:-reports}
nc=${NETCONVERGE:-netconverge}
mkdir -p "$reports"
status=0
for dir in "$hosts"/*/; do
  host=$(basename "$dir")
  [ -d "$dir/desired" ] || continue
  echo "== $host: validate"
  if ! "$nc" --desired "$dir/desired" validate; then
    status=2
    continue
  fi
  if [ -f "$dir/snapshot.yaml" ]; then
    echo "== $host: check against its snapshot"
    "$nc" --desired "$dir/desired" --output junit check --observed "$dir/snapshot.yaml" \
      > "$reports/$host.xml"
    rc=$?
    "$nc" --desired "$dir/desired" check --observed "$dir/snapshot.yaml" || true
    case $rc in
      0) ;;
      1) [ $status -eq 0 ] && status=1 ;;
      *) status=2 ;;
    esac
  fi
done
exit $status
