#!/bin/sh
# The entrypoint of the test bed's Docker-in-Docker stand-in. It behaves like docker-init.sh
# of the devcontainers docker-in-docker feature (src/docker-in-docker/install.sh writes it)
# where that matters to berth; it is written from what that script does, not copied:
#
# - It holds the features' entrypoint chain (the entrypoints after it, berth's among them)
#   until its dockerd answers: rounds of up to five `docker info`, a second apart; after a
#   round without an answer it stops dockerd and starts it again; after the fifth round it
#   gives up and lets the chain go on, the last dockerd still starting. Meanwhile the Dev
#   Containers CLI runs the lifecycle commands: berth's first hooks run before its daemon.
# - It removes the pid files an earlier run of the container left (they would stop dockerd
#   from starting after a restart), and mounts a tmpfs on /tmp when /tmp is not a mount point.
# - dockerd listens on /var/run/docker.sock, for the docker group (install.sh puts the remote
#   user in it), and logs to /tmp/dockerd.log. It runs with --bridge=none --iptables=false
#   (the test machines' containers use the host's network and cannot be privileged).
#
# Left out, as they do not touch berth: AppArmor's securityfs, cgroup nesting, Azure's DNS,
# a containerd of its own, and sudo for a container user other than root.
#
# Options (install.sh writes them to /usr/local/share/dind/options.env):
#   START_DELAY     a slow engine: dockerd answers no earlier than this many seconds after
#                   this entrypoint started (each start of dockerd waits until then, so the
#                   restarts do not reset it)
#   STORAGE_DRIVER  dockerd's --storage-driver (classic image store only)
#   IMAGE_STORE     classic, or containerd (its default snapshotter, no --storage-driver)
#   HOLD_FIFO       for tests: once dockerd answers, hold the chain until a line is
#                   written to this FIFO (install.sh makes it, in the image)
#   MIN_API_VERSION the oldest API version dockerd accepts (DOCKER_MIN_API_VERSION); the
#                   image store is in /etc/docker/daemon.json, which install.sh writes
set -e

START_DELAY=0 STORAGE_DRIVER=vfs HOLD_FIFO='' IMAGE_STORE=classic MIN_API_VERSION=''
# shellcheck disable=SC1091 # written by install.sh
. /usr/local/share/dind/options.env

began=$(date +%s)
note() { echo "dind: $(date +%T.%N | cut -c1-12) $*" >&2; }

find /run /var/run -iname 'docker*.pid' -delete 2>/dev/null || :
find /run /var/run -iname 'container*.pid' -delete 2>/dev/null || :
mountpoint -q /tmp || mount -t tmpfs none /tmp

# start_engine: dockerd in the background, once START_DELAY s have passed since this
# entrypoint began; its pid (the wrapper's while it waits) in $engine.
start_engine() {
    (
        pause=
        trap '[ -z "$pause" ] || kill "$pause" 2>/dev/null; exit 143' TERM
        left=$((began + START_DELAY - $(date +%s)))
        if [ "$left" -gt 0 ]; then
            sleep "$left" &
            pause=$!
            wait "$pause"
        fi
        if [ -n "$MIN_API_VERSION" ]; then export DOCKER_MIN_API_VERSION="$MIN_API_VERSION"; fi
        if [ "$IMAGE_STORE" = containerd ]; then
            exec dockerd --bridge=none --iptables=false --ip-forward=false
        fi
        exec dockerd --storage-driver="$STORAGE_DRIVER" --bridge=none --iptables=false --ip-forward=false
    ) >>/tmp/dockerd.log 2>&1 &
    engine=$!
}

# stop_engine: stops the dockerd (or its wrapper) start_engine started, and waits for it to
# end, so that the next one does not find its pid file.
stop_engine() {
    kill "$engine" 2>/dev/null || :
    wait "$engine" 2>/dev/null || :
}

answers() { timeout 5 docker info >/dev/null 2>&1; }

slow=
[ "$START_DELAY" -eq 0 ] || slow=", answering no earlier than $START_DELAY s from now"
store="storage driver $STORAGE_DRIVER"
[ "$IMAGE_STORE" = classic ] || store="containerd image store"
note "starting dockerd ($store${MIN_API_VERSION:+, API $MIN_API_VERSION or later}$slow)"
rounds=0 ok=false
while [ "$ok" = false ] && [ "$rounds" -lt 5 ]; do
    start_engine
    tries=0
    while [ "$ok" = false ] && [ "$tries" -lt 5 ]; do
        sleep 1
        if answers; then ok=true; fi
        tries=$((tries + 1))
    done
    rounds=$((rounds + 1))
    if [ "$ok" = false ] && [ "$rounds" -lt 5 ]; then
        note "dockerd does not answer (round $rounds of 5); starting it again"
        stop_engine
    fi
done
if [ "$ok" = true ]; then
    note "dockerd answers (round $rounds); the entrypoint chain goes on"
else
    note "dockerd does not answer after 5 rounds; the entrypoint chain goes on without it"
fi

if [ -n "$HOLD_FIFO" ]; then
    [ -p "$HOLD_FIFO" ] || { rm -f "$HOLD_FIFO" && mkfifo -m 0600 "$HOLD_FIFO"; }
    note "holding the entrypoint chain until a line is written to $HOLD_FIFO"
    read -r _ <"$HOLD_FIFO"
    note "released"
fi

exec "$@"
