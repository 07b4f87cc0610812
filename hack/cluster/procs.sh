# shellcheck shell=bash
# Start/stop helpers for the cluster's host processes. Sourced.
# Each process has $RUN/<name>.pid and $LOGS/<name>.log.

is_running() { local p; p=$(cat "$RUN/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }

start_proc() {  # name cmd...
  local name=$1; shift
  if is_running "$name"; then log "$name: already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  mkdir -p "$RUN" "$LOGS"
  setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  log "$name: started (pid $!, log $LOGS/$name.log)"
}

stop_proc() {  # name
  local name=$1 p
  p=$(cat "$RUN/$name.pid" 2>/dev/null) || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
    log "$name: stopped"
  fi
  rm -f "$RUN/$name.pid"
}

# Wait until a command succeeds, showing what is awaited; fail naming the log to read.
wait_for() {  # what timeout-seconds log cmd...
  local what=$1 timeout=$2 logf=$3; shift 3
  local start; start=$(date +%s)
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) - start > timeout )); then
      tail -n 30 "$logf" >&2 2>/dev/null || true
      die "$what did not become ready within ${timeout}s; see $logf"
    fi
    sleep 1
  done
  log "$what: ready after $(( $(date +%s) - start ))s"
}

port_owner() { ss -Hltnup "sport = :$1" 2>/dev/null | grep -o "pid=[0-9]*" | head -n1 | cut -d= -f2 || true; }

# A port is fine when free, or held by our own process of that name.
require_port() {  # port name
  local owner; owner=$(port_owner "$1")
  [ -z "$owner" ] && return
  is_running "$2" && [ "$(cat "$RUN/$2.pid")" = "$owner" ] && return
  die "port $1 (needed by $2) is taken by pid $owner ($(cat /proc/"$owner"/comm 2>/dev/null)); stop it or run 'make cluster-down'"
}

# Replace a file with stdin only when the content differs (running daemons watch some files).
write_if_changed() {
  local tmp; tmp=$(mktemp)
  cat > "$tmp"
  # Written in place, not renamed: containerd reloads its CNI config on write events and
  # ignores the create event a rename produces.
  cmp -s "$tmp" "$1" || cat "$tmp" > "$1"
  rm -f "$tmp"
}
