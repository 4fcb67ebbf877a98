#!/bin/sh
# Installs berth from this feature package: the binary (also as the Docker credential
# helper docker-credential-berth), the entrypoint that starts its daemon, the options chosen
# in devcontainer.json, and root's state folder. Safe to run again.
#
# Nothing here is given to the remote user's uid: the Dev Containers CLI may change that
# uid after this runs (updateRemoteUserUID). The daemon looks the remote user up by name
# each time it starts, and keeps its own files where only its own user may write.
set -e

FEATURE_DIR=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=/usr/local/bin
SHARE_DIR=/usr/local/share/berth

# The options, as the Dev Containers CLI passes them (upper-cased), with their defaults.
IMAGES=${IMAGES:-}
INJECTAT=${INJECTAT:-postCreate}
PULLAT=${PULLAT:-early}
WAITFORDOCKER=${WAITFORDOCKER:-true}
DOCKERTIMEOUT=${DOCKERTIMEOUT:-90}
WAITFORPULLS=${WAITFORPULLS:-false}
PULLTIMEOUT=${PULLTIMEOUT:-900}
PULLCONCURRENCY=${PULLCONCURRENCY:-4}
PLATFORM=${PLATFORM:-}
DISCOVER=${DISCOVER:-false}
DISCOVERPUBLIC=${DISCOVERPUBLIC:-false}
LOGLEVEL=${LOGLEVEL:-info}
FAILONERROR=${FAILONERROR:-false}
CREDENTIALHELPER=${CREDENTIALHELPER:-auto}
REMOTE_USER=${_REMOTE_USER:-root}

fail() {
    echo "berth feature: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "install.sh must run as root (the Dev Containers CLI runs it so)"
[ -f "$FEATURE_DIR/berth" ] || fail "the berth binary is missing from the feature package; build it with scripts/package-feature"
"$FEATURE_DIR/berth" --version >/dev/null 2>&1 ||
    fail "the berth binary cannot run in this image: it needs Linux x86-64 with glibc 2.34 or later (Debian 12, Ubuntu 22.04 or newer)"

install -d -m 0755 "$BIN_DIR" "$SHARE_DIR"
install -m 0755 "$FEATURE_DIR/berth" "$BIN_DIR/berth"
ln -sf berth "$BIN_DIR/docker-credential-berth"
install -m 0755 "$FEATURE_DIR/entrypoint.sh" "$SHARE_DIR/entrypoint.sh"

# quote VALUE: VALUE in single quotes for the options file (berth reads it without a shell).
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

options=$SHARE_DIR/options.env
{
    echo "# Written by the berth feature's install.sh from devcontainer.json's options."
    echo "# BERTH_* variables in the container's environment override these."
    printf 'BERTH_IMAGES=%s\n' "$(quote "$IMAGES")"
    printf 'BERTH_INJECT_AT=%s\n' "$(quote "$INJECTAT")"
    printf 'BERTH_PULL_AT=%s\n' "$(quote "$PULLAT")"
    printf 'BERTH_WAIT_FOR_DOCKER=%s\n' "$(quote "$WAITFORDOCKER")"
    printf 'BERTH_DOCKER_TIMEOUT=%s\n' "$(quote "$DOCKERTIMEOUT")"
    printf 'BERTH_WAIT_FOR_PULLS=%s\n' "$(quote "$WAITFORPULLS")"
    printf 'BERTH_PULL_TIMEOUT=%s\n' "$(quote "$PULLTIMEOUT")"
    printf 'BERTH_PULL_CONCURRENCY=%s\n' "$(quote "$PULLCONCURRENCY")"
    printf 'BERTH_PLATFORM=%s\n' "$(quote "$PLATFORM")"
    printf 'BERTH_DISCOVER=%s\n' "$(quote "$DISCOVER")"
    printf 'BERTH_DISCOVER_PUBLIC=%s\n' "$(quote "$DISCOVERPUBLIC")"
    printf 'BERTH_LOG_LEVEL=%s\n' "$(quote "$LOGLEVEL")"
    printf 'BERTH_FAIL_ON_ERROR=%s\n' "$(quote "$FAILONERROR")"
    printf 'BERTH_CREDENTIAL_HELPER=%s\n' "$(quote "$CREDENTIALHELPER")"
    printf 'BERTH_REMOTE_USER=%s\n' "$(quote "$REMOTE_USER")"
} >"$options.new"
chmod 0644 "$options.new"
mv -f "$options.new" "$options"

# The state folder of a daemon that runs as root (as the container's user usually is):
# root's, which others may enter to reach the socket and read the log, not write. A daemon
# run as another user keeps its state in that user's ~/.local/state/berth instead.
install -d -m 0755 -o root -g root /var/lib/berth

echo "berth feature: $("$BIN_DIR/berth" --version) installed for remote user $REMOTE_USER (options: $options)"
