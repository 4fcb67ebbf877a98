#!/bin/sh
# berth's smoke checks in a fresh container, as root, with the feature at /feature: install
# it as the Dev Containers CLI does (remote user dev), then use berth as a dev container
# does: --version, inject, the daemon, the lifecycle hooks as dev (which write dev's Docker
# config and pre-pull IMAGES through the engine at /var/run/docker.sock), status.
# POSIX sh: it runs under busybox sh in the musl image. Each step prints "== STEP"; it
# stops at the first failure.
#
# EMULATE=DIR: after installing, run the aarch64 binary DIR/berth-aarch64 under
# DIR/qemu-aarch64-static instead (the daemon in the foreground: under qemu, berth cannot
# start itself again with --background).
set -eu
exec 2>&1

step() { echo "== $*"; }

step install
_REMOTE_USER=dev IMAGES=${IMAGES:-} sh /feature/install.sh

if [ -n "${EMULATE:-}" ]; then
    step emulate
    printf '#!/bin/sh\nexec %s/qemu-aarch64-static %s/berth-aarch64 "$@"\n' "$EMULATE" "$EMULATE" \
        >/usr/local/bin/berth
fi

step version
berth --version

step inject
berth inject --user root
step "root's config"
cat /root/.docker/config.json
echo

step daemon
if [ -n "${EMULATE:-}" ]; then
    berth daemon >/tmp/daemon.log 2>&1 &
else
    berth daemon --background
fi

step hooks
for phase in onCreate updateContent postCreate; do
    su dev -s /bin/sh -c "berth hook $phase"
done

step status
berth status --wait --timeout 300 || { berth status; exit 1; }
berth status
pid=$(berth status | sed -n 's/^daemon: running (pid \([0-9]*\).*/\1/p')
echo "daemon command line: $(tr '\0' ' ' <"/proc/$pid/cmdline")"

step "dev's config"
stat -c '%U %a' /home/dev/.docker/config.json
cat /home/dev/.docker/config.json
echo

step finished
