#!/usr/bin/env bash
# Benchmark (not a test, not in CI): netconverge against `nmstatectl apply --kernel` on the
# same state — a bridge with 100 veth pairs as ports and 2,000 routes in two tables — each
# applied to a fresh network namespace, then re-applied (a no-op). Needs root and nmstatectl
# on PATH (`cargo install nmstatectl --locked`, about 8 minutes here).
#
#   bash tests/bench/nmstate.sh [PAIRS] [ROUTES]
set -euo pipefail
pairs=${1:-100}
routes=${2:-2000}
cd "$(dirname "$0")/../.."
nc=${NETCONVERGE:-target/release/netconverge}
[ -x "$nc" ] || cargo build --release -q
command -v nmstatectl >/dev/null || { echo "skipped: nmstatectl is not installed"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "skipped: needs root"; exit 0; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"; for n in nc-bench-$$-a nc-bench-$$-b; do ip netns del $n 2>/dev/null || true; rm -f /run/netconverge/$n.lock; done' EXIT
mkdir "$dir/desired"
python3 - "$dir" "$pairs" "$routes" <<'PY'
import sys
d, pairs, routes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
nc = ["links:", "  br0:", "    kind: bridge", "    bridge: { stp: false }", "    addresses: [10.0.0.1/16]"]
nm = ["interfaces:", "- name: br0", "  type: linux-bridge", "  state: up",
      "  ipv4: { enabled: true, address: [ { ip: 10.0.0.1, prefix-length: 16 } ] }",
      "  bridge:", "    options: { stp: { enabled: false } }", "    port:"]
nm += [f"    - name: v{i}" for i in range(pairs)]
for i in range(pairs):
    nc += [f"  v{i}:", "    kind: veth", f"    veth: {{ peer: v{i}p }}", "    master: br0",
           f"  v{i}p:", "    kind: veth", f"    veth: {{ peer: v{i} }}"]
    for a, b in ((f"v{i}", f"v{i}p"), (f"v{i}p", f"v{i}")):
        nm += [f"- name: {a}", "  type: veth", "  state: up", f"  veth: {{ peer: {b} }}",
               "  ipv4: { enabled: false }"]
nc.append("routes:")
nm += ["routes:", "  config:"]
for i in range(routes):
    dst = f"172.{16 + i // 65536}.{(i // 256) % 256}.{i % 256}/32"
    t = 101 if i % 2 == 0 else 102
    nc.append(f"  - {{ to: {dst}, via: 10.0.0.254, dev: br0, table: {t} }}")
    nm.append(f"  - {{ destination: {dst}, next-hop-address: 10.0.0.254, next-hop-interface: br0, table-id: {t} }}")
open(f"{d}/desired/bench.yaml", "w").write("\n".join(nc) + "\n")
open(f"{d}/nmstate.yml", "w").write("\n".join(nm) + "\n")
PY

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>"$dir/err" || { cat "$dir/err"; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }

ip netns add "nc-bench-$$-a"
nm_apply=$(ms ip netns exec "nc-bench-$$-a" nmstatectl apply --kernel "$dir/nmstate.yml")
nm_noop=$(ms ip netns exec "nc-bench-$$-a" nmstatectl apply --kernel "$dir/nmstate.yml")
ip netns del "nc-bench-$$-a"; sleep 3

ip netns add "nc-bench-$$-b"
nc_apply=$(ms "$nc" --netns "nc-bench-$$-b" -d "$dir/desired" -q reconcile)
nc_noop=$(ms "$nc" --netns "nc-bench-$$-b" -d "$dir/desired" -q reconcile)

echo "scenario: br0 with $pairs veth pairs as ports + $routes routes in tables 101/102"
echo "nmstatectl apply --kernel: apply ${nm_apply} ms, no-op re-apply ${nm_noop} ms"
echo "netconverge reconcile:     apply ${nc_apply} ms, no-op re-apply ${nc_noop} ms"
awk -v a="$nm_apply" -v b="$nc_apply" -v c="$nm_noop" -v d="$nc_noop" \
  'BEGIN { printf "netconverge is %.1fx faster to apply, %.1fx faster to re-apply (target >= 5x)\n", a / b, c / d }'
