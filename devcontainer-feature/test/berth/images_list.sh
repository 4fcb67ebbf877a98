#!/bin/bash
# shellcheck disable=SC2016 # each check's command is expanded by its own bash -c, in the container
# Scenario: an images list (and options that change behaviour) on an image without a
# Docker engine: the options are recorded, and berth says plainly why nothing is pulled.
set -e

# shellcheck source=/dev/null
source dev-container-features-test-lib

options=/usr/local/share/berth/options.env
check "the images are recorded" grep -q "^BERTH_IMAGES='registry.example.com/team/app:1.0, ghcr.io/owner/tool:2'$" "$options"
check "injectAt is recorded" grep -q "^BERTH_INJECT_AT='onCreate'$" "$options"
check "waitForPulls is recorded" grep -q "^BERTH_WAIT_FOR_PULLS='true'$" "$options"
check "no engine, so no pull, and the log says why" bash -c 'berth logs | grep -q "no Docker engine in this container"'

reportResults
