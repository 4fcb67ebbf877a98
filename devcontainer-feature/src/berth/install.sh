#!/bin/sh
# Installs berth from this feature package: the binary for this machine's architecture
# (static, so any libc or none will do; also as the Docker credential helper
# docker-credential-berth), the entrypoint that starts its daemon, the options chosen
# in devcontainer.json (written by berth itself from the feature's declaration), and root's
# state folder. Safe to run again. POSIX sh, with only
# the tools busybox has.
#
# Nothing here is given to the remote user's uid: the Dev Containers CLI may change that
# uid after this runs (updateRemoteUserUID). The daemon looks the remote user up by name
# each time it starts, and keeps its own files where only its own user may write.
set -e

FEATURE_DIR=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=/usr/local/bin
SHARE_DIR=/usr/local/share/berth

# The remote user, for the last message (berth writes it to the options file itself).
REMOTE_USER=${_REMOTE_USER:-root}

fail() {
    echo "berth feature: $*" >&2
    exit 1
}

# The libc this image has, for messages only: berth's binaries are static and need none.
libc_found() {
    if v=$(getconf GNU_LIBC_VERSION 2>/dev/null) && [ -n "$v" ]; then
        echo "$v"
    elif ls /lib/ld-musl-*.so.1 >/dev/null 2>&1; then
        echo "musl"
    else
        echo "no known libc"
    fi
}

SUPPORTED="Linux on x86_64 (amd64) or aarch64 (arm64), with any libc (glibc of any version, musl) or none"

[ "$(id -u)" = 0 ] || fail "install.sh must run as root (the Dev Containers CLI runs it so)"

# One static binary per architecture, gzip-compressed in the package.
machine=$(uname -m)
case $machine in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) fail "this image runs on $machine ($(libc_found)), for which berth has no binary; supported: $SUPPORTED" ;;
esac
packed=$FEATURE_DIR/berth-$arch.gz
[ -f "$packed" ] || fail "the berth binary for $arch is missing from the feature package; build it with scripts/package-feature"
command -v gzip >/dev/null 2>&1 || fail "gzip is needed to unpack berth's binary; install it in the image (Debian/Ubuntu/Alpine: gzip, RHEL/UBI: microdnf install gzip)"

# Only tools every image has, busybox's included (which may lack `install`).
mkdir -p "$BIN_DIR" "$SHARE_DIR"
chmod 0755 "$SHARE_DIR"
gzip -dc "$packed" >"$BIN_DIR/berth.new" || fail "could not unpack $packed into $BIN_DIR (disk full or read-only?)"
chmod 0755 "$BIN_DIR/berth.new"
if ! ran=$("$BIN_DIR/berth.new" --version 2>&1); then
    rm -f "$BIN_DIR/berth.new"
    fail "berth's $arch binary cannot run in this image ($machine, $(libc_found)): ${ran:-no output}. Supported: $SUPPORTED; a kernel that refuses static binaries or a noexec $BIN_DIR would also cause this."
fi
mv -f "$BIN_DIR/berth.new" "$BIN_DIR/berth"
ln -sf berth "$BIN_DIR/docker-credential-berth"
cp "$FEATURE_DIR/entrypoint.sh" "$SHARE_DIR/entrypoint.sh.new"
chmod 0755 "$SHARE_DIR/entrypoint.sh.new"
mv -f "$SHARE_DIR/entrypoint.sh.new" "$SHARE_DIR/entrypoint.sh"

# The options file: berth writes every option devcontainer-feature.json declares, with the
# value the Dev Containers CLI passed (or its default), so that no option is listed here.
options=$SHARE_DIR/options.env
"$BIN_DIR/berth" feature-options "$FEATURE_DIR/devcontainer-feature.json" "$options" ||
    fail "could not write the options file $options"

# The state folder of a daemon that runs as root (as the container's user usually is):
# root's, which others may enter to reach the socket and read the log, not write. A daemon
# run as another user keeps its state in that user's ~/.local/state/berth instead.
mkdir -p /var/lib/berth
chown 0:0 /var/lib/berth
chmod 0755 /var/lib/berth

echo "berth feature: $("$BIN_DIR/berth" --version) installed for remote user $REMOTE_USER (options: $options)"
