#!/bin/sh
# Installs the lifecycle clock: /usr/local/bin/berth becomes a wrapper that appends
# "berth ARGS... NANOSECONDS" to /var/tmp/lifecycle.times, then runs berth as it was
# (/usr/local/bin/berth-timed; docker-credential-berth points at it), or, when the image has
# no berth, does nothing more. The user's lifecycle commands note their own start in the
# same file ("user onCreate NANOSECONDS"), so that the time between a berth hook's start
# and the user's next command is measured by the container's own clock.
set -e

BIN=/usr/local/bin
TIMES=/var/tmp/lifecycle.times

if [ -x "$BIN/berth" ] && [ ! -e "$BIN/berth-timed" ]; then
    mv "$BIN/berth" "$BIN/berth-timed"
    ln -sf berth-timed "$BIN/docker-credential-berth"
fi
if [ -x "$BIN/berth-timed" ]; then
    then_run='exec /usr/local/bin/berth-timed "$@"' what="then run berth"
else
    then_run='exit 0' what="and do nothing else (this image has no berth)"
fi
cat >"$BIN/berth.new" <<WRAPPER
#!/bin/sh
echo "berth \$* \$(date +%s%N)" >>$TIMES
$then_run
WRAPPER
chmod 0755 "$BIN/berth.new"
mv -f "$BIN/berth.new" "$BIN/berth"
: >"$TIMES"
chmod 0666 "$TIMES"
echo "clock: berth's commands note their start in $TIMES, $what"
