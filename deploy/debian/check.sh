#!/usr/bin/env bash
# Check a built netconverge .deb the way an installation would use it, without installing
# it: the control fields, no maintainer scripts, the conffiles, and, unpacked into a scratch
# root, the binary runs, every man page renders, the completions load into bash, the units
# pass `systemd-analyze verify` against the packaged paths (the binary and man pages in that
# root), and the example desired directory applies nothing.
#
#   deploy/debian/check.sh target/debian/netconverge_*.deb
#
# Exit 0 when every check passed; each failure is named.
set -uo pipefail
deb=${1:?usage: check.sh PACKAGE.deb}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
bad() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { local what=$1; shift; if "$@" >"$work/out" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/    /' "$work/out"; fi; }

dpkg-deb -x "$deb" "$root" || { echo "FAILED: dpkg-deb -x $deb"; exit 1; }
dpkg-deb -e "$deb" "$work/control"
field() { dpkg-deb -f "$deb" "$1"; }

check "Package is netconverge" test "$(field Package)" = netconverge
check "Depends names iproute2" grep -qw iproute2 <<<"$(field Depends)"
check "Recommends nftables and dnsmasq-base" \
  bash -c '[[ $1 == *nftables* && $1 == *dnsmasq-base* ]]' _ "$(field Recommends)"
# Installing starts nothing and removing touches nothing: no maintainer scripts at all.
check "no maintainer scripts" \
  bash -c 'ls "$1" | grep -vxE "control|md5sums|conffiles" | { ! grep .; }' _ "$work/control"
for f in /etc/netconverge/README /etc/netconverge/example.yaml.sample \
  /etc/iproute2/rt_protos.d/netconverge.conf /etc/iproute2/rt_tables.d/netconverge.conf; do
  check "conffile $f" grep -qxF "$f" "$work/control/conffiles"
done

bin=$root/usr/sbin/netconverge
# The package's version is the crate's plus a Debian revision (0.1.0-1).
check "the binary runs --version ($(field Version))" \
  bash -c '[ "$("$1" --version)" = "netconverge ${2%-*}" ]' _ "$bin" "$(field Version)"
check "protocol 157 is named netconverge for ip(8)" \
  grep -qP '^157\tnetconverge$' "$root/etc/iproute2/rt_protos.d/netconverge.conf"

# Every command the binary lists has its page, and every page renders without a warning.
for cmd in $("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk '/^  [a-z]/ && $1 != "help" {print $1}'); do
  check "man page of $cmd" test -f "$root/usr/share/man/man8/netconverge-$cmd.8.gz"
done
pages=("$root"/usr/share/man/man8/*.8.gz "$root"/usr/share/man/man5/*.5.gz)
for page in "${pages[@]}"; do
  check "man -l $(basename "$page") renders cleanly" bash -c '
    out=$(MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null); [ -z "$out" ] || { echo "$out"; exit 1; }
    [ "$(MANWIDTH=80 man -l "$1" 2>/dev/null | wc -l)" -gt 5 ]' _ "$page"
done

# bash: the script loads, registers itself, and completes a subcommand and an option.
comp=$root/usr/share/bash-completion/completions/netconverge
check "bash completion completes 'rec' to reconcile" bash -c '
  source "$1" && complete -p netconverge >/dev/null || exit 1
  COMP_WORDS=(netconverge rec); COMP_CWORD=1; COMP_LINE="netconverge rec"; COMP_POINT=${#COMP_LINE}
  _netconverge netconverge rec netconverge; [[ " ${COMPREPLY[*]} " == *" reconcile "* ]]' _ "$comp"
check "bash completion completes 'watch --deb' to --debounce" bash -c '
  source "$1"
  COMP_WORDS=(netconverge watch --deb); COMP_CWORD=2; COMP_LINE="netconverge watch --deb"; COMP_POINT=${#COMP_LINE}
  _netconverge netconverge --deb watch; [[ " ${COMPREPLY[*]} " == *" --debounce "* ]]' _ "$comp"
for f in usr/share/zsh/vendor-completions/_netconverge usr/share/fish/vendor_completions.d/netconverge.fish; do
  check "$f names the commands" grep -q reconcile "$root/$f"
done
if command -v zsh >/dev/null; then
  check "zsh parses _netconverge" zsh -n "$root/usr/share/zsh/vendor-completions/_netconverge"
fi

# The units against the packaged paths: ExecStart= must be the root's /usr/sbin/netconverge
# and each Documentation=man: page must be in the root's man directories. verify --root wants
# the units a unit depends on (sysinit.target, …) and /bin/kill in that root too: they come
# from this machine, into a copy, never over the package's own files.
vroot=$work/verify-root
cp -a "$root" "$vroot"
cp -an /usr/lib/systemd/system/. "$vroot/usr/lib/systemd/system/"
mkdir -p "$vroot/bin" && cp -n /bin/kill "$vroot/bin/"
for unit in "$root"/usr/lib/systemd/system/*; do
  check "systemd-analyze verify $(basename "$unit")" bash -c '
    out=$(MANPATH="$1/usr/share/man" systemd-analyze verify --root="$1" "$2" 2>&1)
    [ -z "$out" ] || { echo "$out"; exit 1; }' _ "$vroot" "/usr/lib/systemd/system/$(basename "$unit")"
done
for service in netconverge-watch.service netconverge-check.service; do
  check "$service scores at most 3.0 in systemd-analyze security" \
    systemd-analyze security --offline=true --threshold=30 --no-pager --root="$vroot" \
    "/usr/lib/systemd/system/$service"
done

# The example directory is not live: validate finds no desired file there and refuses.
check "the packaged /etc/netconverge holds no desired state" \
  bash -c '! "$1" --desired "$2/etc/netconverge" validate' _ "$bin" "$root"
cp "$root/etc/netconverge/example.yaml.sample" "$work/example.yaml"
check "the example validates once named *.yaml" "$bin" --desired "$work/example.yaml" validate

echo "package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
