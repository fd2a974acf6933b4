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
#      (`check --observed`), writing REPORT_DIR/<host>.xml, a JUnit report whose suite is
#      named after the host.
# A HOSTS_DIR without any <host>/desired directory is an error, not a pass: a wrong path or
# layout must not turn the job green having checked nothing.
# Exit status: 0 all valid and in sync, 1 some host drifted, 2 some desired state is invalid,
# a check could not run, or no host was found.
set -u
hosts=${1:?usage: netconverge-ci.sh HOSTS_DIR [REPORT_DIR]}
reports=${2:-reports}
nc=${NETCONVERGE:-netconverge}
if [ ! -d "$hosts" ]; then
  echo "error: $hosts is not a directory" >&2
  exit 2
fi
mkdir -p "$reports"
status=0
found=0
for dir in "$hosts"/*/; do
  host=$(basename "$dir")
  [ -d "$dir/desired" ] || continue
  found=$((found + 1))
  echo "== $host: validate"
  if ! "$nc" --desired "$dir/desired" validate; then
    status=2
    continue
  fi
  if [ -f "$dir/snapshot.yaml" ]; then
    echo "== $host: check against its snapshot"
    "$nc" --desired "$dir/desired" --output junit check --host "$host" \
      --observed "$dir/snapshot.yaml" >"$reports/$host.xml"
    rc=$?
    "$nc" --desired "$dir/desired" check --observed "$dir/snapshot.yaml" || true
    case $rc in
      0) ;;
      1) [ $status -eq 0 ] && status=1 ;;
      *) status=2 ;;
    esac
  fi
done
if [ $found -eq 0 ]; then
  echo "error: no host found in $hosts: expected $hosts/<host>/desired/*.yaml" \
    "(and optionally $hosts/<host>/snapshot.yaml)" >&2
  exit 2
fi
echo "== $found host(s) checked"
exit $status
