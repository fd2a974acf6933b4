#!/usr/bin/env bash
# Drift monitoring for hosts rather than CI, for cron where there is no systemd (with systemd,
# enable netconverge-check.timer instead, which runs the same command), e.g.
#   */5 * * * * root /usr/share/doc/netconverge/examples/prometheus-textfile.sh
# `check --textfile` writes netconverge_drift_objects{kind=…},
# netconverge_last_check_timestamp_seconds and netconverge_check_success for node_exporter's
# textfile collector, atomically (temp file + rename). A check that cannot run (exit 2)
# writes netconverge_check_success 0 and no drift figures, so no stale file is left behind.
set -u
dir=${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}
desired=${DESIRED:-/etc/netconverge}
# The drift report on stdout would be mailed by cron every time: only errors are kept.
exec netconverge --desired "$desired" check --textfile "$dir/netconverge.prom" >/dev/null
