#!/usr/bin/env bash
# Build the Debian package into target/debian/: the binary, then the man pages and shell
# completions it generates from its own command-line definitions (into target/assets, where
# Cargo.toml's [package.metadata.deb] assets take them from), then `cargo deb --no-build`.
#
#   deploy/debian/build.sh            # needs cargo-deb: cargo install --locked cargo-deb
#
# PROFILE=name builds with another cargo profile (CI uses `release`, as a release does).
# Prints the path of the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${PROFILE:-release}
cargo build --locked --profile "$profile" --bin netconverge
dir=$profile
[ "$profile" = dev ] && dir=debug
bin=target/$dir/netconverge
assets=target/assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man "$assets/man" >/dev/null
# Debian ships man pages compressed (-n: no name or time inside, so builds are reproducible).
gzip -9nf "$assets"/man/*
for shell in bash zsh fish; do
  "$bin" completions "$shell" >"$assets/completions/netconverge.$shell"
done
rm -rf target/debian
cargo deb --no-build --profile "$profile" --output target/debian/ >/dev/null
ls target/debian/*.deb
