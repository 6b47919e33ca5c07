#!/usr/bin/env bash
# Stops what up.sh started (pid files in .run/), children included. An emulator that
# up.sh found already running (e.g. LocalStack in Docker) is not ours and stays up.
# dynoxide keeps its tables in memory, as moto does: they go with it.
set -u  # no -e: stop as much as possible whatever fails
cd "$(dirname "$0")/.."

descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
alive() { ps -o stat= -p "$*" | grep -qv '^ *Z'; }  # a zombie has exited already

rm -f .run/relay.pause-webhooks  # a benchmark's pause of the relay (localstack/relay.py)
only=" $* "  # optional names (relay watch proxy emulator dynoxide): stop just those
for entry in relay:relay.py "watch:lambda watch" proxy:fault_proxy.py emulator:emulator.py "dynoxide:dynoxide serve"; do
  name=${entry%%:*}
  [[ $# -gt 0 && $only != *" $name "* ]] && continue
  pidfile=.run/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  # Only if the pid is still what up.sh started: after a reboot it may be anything.
  if [[ $(ps -o args= -p "$pid") == *"${entry#*:}"* ]]; then
    # watch runs each function in a session of its own: collect them before the parent goes.
    pids="$pid $(descendants "$pid")"
    kill -TERM -- "-$pid" $pids 2>/dev/null
    for _ in $(seq 50); do alive $pids || break; sleep 0.2; done
    kill -KILL -- "-$pid" $pids 2>/dev/null
    echo "down: stopped $name (pid $pid)"
  fi
  rm -f "$pidfile" ".run/$name.endpoint"  # up.sh notes where watch's functions send requests
done

[[ $# -gt 0 ]] && exit 0
listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 4566 4567 4569 9000; do
  for _ in $(seq 25); do listens "$port" || break; sleep 0.2; done
  listens "$port" && echo "down: 127.0.0.1:$port still listens (not started by up.sh?)" >&2
done
exit 0
