#!/bin/bash
# shellcheck disable=SC2016 # each check's command is expanded by its own bash -c, in the container
# Scenario: a non-root remote user (dev). The daemon runs as root from the entrypoint;
# the hooks run as dev, who reaches the daemon through its socket and owns nothing of
# berth's; berth writes dev's Docker config as dev.
set -e

# shellcheck source=/dev/null
source dev-container-features-test-lib

check "the tests run as dev" bash -c '[ "$(id -un)" = dev ]'
check "the remote user is recorded" grep -q "^BERTH_REMOTE_USER='dev'$" /usr/local/share/berth/options.env
check "the state folder is root's, others may look" bash -c '[ "$(stat -c %U:%a /var/lib/berth)" = root:755 ]'
check "the socket is root's, for dev's group" bash -c '[ "$(stat -c %U:%G:%a /var/lib/berth/berth.sock)" = "root:$(id -gn):660" ]'
check "dev cannot write berth's record" bash -c '! test -w /var/lib/berth/events.jsonl'
check "dev may ask the daemon, which runs as root" bash -c 'berth status | grep -q "^daemon: running (pid [0-9]*, berth [0-9.]*, as root)"'
check "the hooks ran as dev" bash -c 'berth status | grep -q "postCreate hook ran (uid $(id -u)"'

reportResults
