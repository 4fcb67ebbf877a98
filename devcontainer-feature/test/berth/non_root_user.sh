#!/bin/bash
# shellcheck disable=SC2016 # each check's command is expanded by its own bash -c, in the container
# Scenario: a non-root remote user (dev). The daemon runs as root from the entrypoint;
# the hooks run as dev, and the state folder and socket are dev's.
set -e

# shellcheck source=/dev/null
source dev-container-features-test-lib

check "the tests run as dev" bash -c '[ "$(id -un)" = dev ]'
check "the remote user is recorded" grep -q "^BERTH_REMOTE_USER='dev'$" /usr/local/share/berth/options.env
check "the state folder is dev's" bash -c '[ "$(stat -c %U:%a /var/lib/berth)" = dev:700 ]'
check "the socket is dev's, for dev alone" bash -c '[ "$(stat -c %U:%a /var/lib/berth/berth.sock)" = dev:600 ]'
check "dev may ask the daemon" bash -c 'berth status | grep -q "^daemon: running"'
check "the hooks ran as dev" bash -c 'berth status | grep -q "postCreate hook ran (uid $(id -u)"'

reportResults
