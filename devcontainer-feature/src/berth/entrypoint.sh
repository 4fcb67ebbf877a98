#!/bin/sh
# berth's entrypoint: start the lifecycle daemon in the background (it returns as soon as
# the daemon listens, so the container's start is never held up), then run what the
# container runs. berth never stops a container from starting.
/usr/local/bin/berth daemon --background || true
exec "$@"
