#!/bin/bash
# shellcheck disable=SC2016 # each check's command is expanded by its own bash -c, in the container
# Scenario: default options on the local Debian image, as root.
set -e

# shellcheck source=/dev/null
source dev-container-features-test-lib

check "the remote user is root" bash -c 'grep -q "^BERTH_REMOTE_USER='"'"'root'"'"'$" /usr/local/share/berth/options.env'
check "the daemon runs as root" bash -c '[ "$(stat -c %U /proc/"$(cat /var/lib/berth/daemon.lock)")" = root ]'
check "status names every phase" bash -c 'berth status | grep -q "postStart hook ran"'
check "waitForPulls is off by default" grep -q "^BERTH_WAIT_FOR_PULLS='false'$" /usr/local/share/berth/options.env

reportResults
