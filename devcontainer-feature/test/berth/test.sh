#!/bin/bash
# shellcheck disable=SC2016 # each check's command is expanded by its own bash -c, in the container
# The feature with its default options: installed, its daemon started by the entrypoint,
# every lifecycle hook run, and, with no registry secrets here, nothing written.
set -e

# shellcheck source=/dev/null
source dev-container-features-test-lib

check "berth runs" berth --version
check "the credential helper is installed" bash -c 'command -v docker-credential-berth'
check "the options are recorded" grep -q "^BERTH_INJECT_AT='postCreate'$" /usr/local/share/berth/options.env
check "only root may write the state folder" bash -c '[ "$(stat -c %U:%a /var/lib/berth)" = root:755 ]'
check "the options name no state folder (the daemon's user decides)" bash -c '! grep -q BERTH_STATE_DIR /usr/local/share/berth/options.env'
check "the daemon runs" bash -c 'berth status | grep -q "^daemon: running"'
check "the hooks ran in order" bash -c 'berth status --json | grep -o "\"phase\": \"[a-zA-Z]*\"" | uniq | tr -d "\n" | grep -q "onCreate.*updateContent.*postCreate.*postStart"'
check "no secrets, nothing written" bash -c '! test -e ~/.docker/config.json'
check "the hooks said so" bash -c 'berth logs | grep -q "no registry secrets"'

reportResults
