#!/bin/sh
# Installs the test bed's Docker-in-Docker stand-in: its entrypoint (dind-init.sh, beside
# this file) and its options, and lets the remote user use the engine, as the real
# feature does (a docker group, the remote user in it). Docker itself comes with the
# image (the test bed's local/debian-dind), as the real feature accepts when the image
# has docker and dockerd already.
set -e

FEATURE_DIR=$(cd "$(dirname "$0")" && pwd)
START_DELAY=${STARTDELAY:-0}
STORAGE_DRIVER=${STORAGEDRIVER:-vfs}
HOLD_FIFO=${HOLDFIFO:-}
IMAGE_STORE=${IMAGESTORE:-classic}
MIN_API_VERSION=${MINAPIVERSION:-}

fail() {
    echo "dind (test stand-in): $*" >&2
    exit 1
}

case $START_DELAY in
    '' | *[!0-9]*) fail "startDelay is a whole number of seconds, not '$START_DELAY'" ;;
esac
case $STORAGE_DRIVER in
    '' | *[!a-z0-9]*) fail "storageDriver is a storage driver's name (vfs, overlay2), not '$STORAGE_DRIVER'" ;;
esac
case $IMAGE_STORE in
    classic | containerd) ;;
    *) fail "imageStore is classic or containerd, not '$IMAGE_STORE'" ;;
esac
case $MIN_API_VERSION in
    '' | 1.[0-9] | 1.[0-9][0-9]) ;;
    *) fail "minApiVersion is an API version such as 1.44, or empty, not '$MIN_API_VERSION'" ;;
esac
case $HOLD_FIFO in
    /tmp/* | /run/* | /var/run/*) fail "holdFifo must be in the image, not under /tmp (the entrypoint mounts a tmpfs there) or /run: '$HOLD_FIFO'" ;;
    '' | /*) ;;
    *) fail "holdFifo is an absolute path, not '$HOLD_FIFO'" ;;
esac
case $HOLD_FIFO in
    *[!A-Za-z0-9/._-]*) fail "holdFifo may hold letters, digits, '/', '.', '_' and '-' only, not '$HOLD_FIFO'" ;;
esac
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    fail "the image has no docker and dockerd; use one that has (the test bed's local/debian-dind)"
fi

mkdir -p /usr/local/share/dind
install -m 0755 "$FEATURE_DIR/dind-init.sh" /usr/local/share/dind-init.sh
# Read by the entrypoint at each start; the values were checked above.
cat >/usr/local/share/dind/options.env <<OPTIONS
START_DELAY=$START_DELAY
STORAGE_DRIVER=$STORAGE_DRIVER
HOLD_FIFO=$HOLD_FIFO
IMAGE_STORE=$IMAGE_STORE
MIN_API_VERSION=$MIN_API_VERSION
OPTIONS
if [ "$IMAGE_STORE" = containerd ]; then
    mkdir -p /etc/docker
    printf '{"features": {"containerd-snapshotter": true}}\n' >/etc/docker/daemon.json
fi

# The FIFO is in the image, so that a test's writer waits for the entrypoint to read it, however
# early it writes.
if [ -n "$HOLD_FIFO" ]; then
    mkdir -p "$(dirname "$HOLD_FIFO")"
    rm -f "$HOLD_FIFO"
    mkfifo -m 0600 "$HOLD_FIFO"
fi

getent group docker >/dev/null 2>&1 || groupadd -r docker
if [ -n "${_REMOTE_USER:-}" ] && [ "$_REMOTE_USER" != root ] && id "$_REMOTE_USER" >/dev/null 2>&1; then
    usermod -aG docker "$_REMOTE_USER"
fi
echo "dind (test stand-in): installed (startDelay $START_DELAY s, storage driver $STORAGE_DRIVER, image store $IMAGE_STORE${MIN_API_VERSION:+, API $MIN_API_VERSION or later}${HOLD_FIFO:+, held on $HOLD_FIFO})"
