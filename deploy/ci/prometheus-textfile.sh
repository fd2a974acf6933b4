#!/usr/bin/env bash
# Drift monitoring for hosts rather than CI: run from cron or a systemd timer on the host, e.g.
#   */5 * * * * root /usr/local/share/netconverge/prometheus-textfile.sh
# Writes netconverge_drift_objects{kind=…} and netconverge_last_check_timestamp_seconds for
# node_exporter's textfile collector, atomically (temp file + rename).
set -u
dir=${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}
desired=${DESIRED:-/etc/netconverge}
tmp=$(mktemp "$dir/.netconverge.prom.XXXXXX") || exit 2
netconverge --desired "$desired" --output prometheus check > "$tmp"
rc=$?
# 0 in sync and 1 drift both produce metrics; 2 means the check itself failed.
if [ $rc -le 1 ]; then
  chmod 0644 "$tmp" && mv "$tmp" "$dir/netconverge.prom"
else
  rm -f "$tmp"
fi
exit $rc
