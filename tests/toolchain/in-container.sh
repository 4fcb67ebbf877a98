#!/bin/bash
# Runs the project's own installation of the build toolchain (scripts/install-build-tools,
# mounted with Cargo.toml at /src) in a fresh Debian 12 container: the test bed's base
# image, which has no package lists at all. Its apt sources are the host's (/run/host/
# debian.sources: Debian 12's main, updates and security suites), PyPI is reached with the
# host's CA bundle, as on a machine of this kind. LISTS says what the lists are before:
#   none   no lists at all
#   stale  made while the sources named only the main suite; the security suite added
#          since, without apt-get update (a machine's lists are months old)
#   main   the sources name only the main suite: no Rust new enough anywhere
# Prints "== install", the script's output, "== exit CODE", then one "name=value" line
# per version it ended with.
set -u
exec 2>&1

main_only() { awk 'BEGIN { RS = ""; ORS = "\n\n" } !/-security/' /run/host/debian.sources; }

# dpkg's fsync of every file it unpacks (1.8 GB for the Rust packages) is what a throwaway
# container can go without: it changes what is written when, not what is installed.
echo force-unsafe-io >/etc/dpkg/dpkg.cfg.d/berth-test-unsafe-io
rm -f /etc/apt/sources.list
rm -rf /var/lib/apt/lists/*
case $LISTS in
  none) cp /run/host/debian.sources /etc/apt/sources.list.d/debian.sources ;;
  stale | main)
    main_only >/etc/apt/sources.list.d/debian.sources
    apt-get update -q >/dev/null || exit 1
    [[ $LISTS == main ]] || cp /run/host/debian.sources /etc/apt/sources.list.d/debian.sources
    ;;
  *) echo "unknown LISTS=$LISTS"; exit 2 ;;
esac
echo "candidate-before=$(apt-cache policy rustc-web 2>/dev/null | sed -n 's/^ *Candidate: //p')"

echo "== install"
BERTH_TOOLS_DIR=/tmp/tools /src/scripts/install-build-tools
echo "== exit $?"

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
echo "rustc=$(/usr/bin/rustc --version 2>/dev/null)"
echo "cargo=$(/usr/bin/cargo --version 2>/dev/null)"
echo "rustc-web=$(version rustc-web)"
echo "rust-web-src=$(version rust-web-src)"
echo "zig=$(/tmp/tools/venv/bin/python-zig version 2>/dev/null)"
echo "cargo-web=$(version cargo-web)"
echo "cargo-zigbuild=$(/tmp/tools/venv/bin/cargo-zigbuild --version 2>/dev/null)"
echo "readelf=$(readelf --version 2>/dev/null | head -n 1)"
echo "jq=$(jq --version 2>/dev/null)"
