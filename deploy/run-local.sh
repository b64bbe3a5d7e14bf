#!/usr/bin/env bash
# Torch Classroom on several Streamlit replicas behind HAProxy, on this machine.
#
#   deploy/run-local.sh [N]        N replicas (default 2) on 127.0.0.1:8501.., HAProxy on 127.0.0.1:8500
#
# Settings every replica must share come from one place: the environment, else deploy/classroom.env
# (see deploy/classroom.env.example): STREAMLIT_SERVER_COOKIE_SECRET, STREAMLIT_SERVER_MAX_UPLOAD_SIZE,
# TORCH_CLASSROOM_DATA, TORCH_CLASSROOM_BACKEND / TORCH_CLASSROOM_RAY_ADDRESS, PROXY_PORT,
# PROXY_ADDRESS (127.0.0.1; 0.0.0.0 to serve a classroom's network), REPLICA_PORT_BASE.
# Stickiness is a cookie (SERVERID), never the client's IP: a class behind one NAT address would
# otherwise all land on one replica. Ctrl-C (or the end of this script) stops everything it started.
set -euo pipefail

N="${1:-2}"
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [number of replicas, at least 1]" >&2
  exit 2
fi
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
ENV_FILE="${TORCH_CLASSROOM_ENV_FILE:-$HERE/classroom.env}"

# The env file fills in what the environment does not already set.
if [[ -f "$ENV_FILE" ]]; then
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    if [[ -z "${!key+x}" ]]; then
      export "$key=$value"
    fi
  done < "$ENV_FILE"
fi

PROXY_PORT="${PROXY_PORT:-8500}"
PROXY_ADDRESS="${PROXY_ADDRESS:-127.0.0.1}"
REPLICA_PORT_BASE="${REPLICA_PORT_BASE:-8501}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"
PYTHON="${PYTHON:-python3}"
if [[ -z "${STREAMLIT_SERVER_COOKIE_SECRET:-}" ]]; then
  STREAMLIT_SERVER_COOKIE_SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')"
fi
export STREAMLIT_SERVER_COOKIE_SECRET
export STREAMLIT_SERVER_MAX_UPLOAD_SIZE="${STREAMLIT_SERVER_MAX_UPLOAD_SIZE:-50}"
export STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

if ! command -v haproxy >/dev/null 2>&1; then
  echo "HAProxy is not installed: on Debian/Ubuntu, sudo apt-get install -y haproxy" >&2
  exit 3
fi

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/torch-classroom.XXXXXX")"
PIDS=()
WARMERS=()
stop_all() {
  trap - EXIT INT TERM
  local pid
  for pid in "${WARMERS[@]}" "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "Stopped (logs in $RUN_DIR)."
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The replicas (no file watcher: a classroom server does not reload code under its students).
SERVERS=""
for i in $(seq 1 "$N"); do
  port=$((REPLICA_PORT_BASE + i - 1))
  (cd "$ROOT" && exec "$PYTHON" -m streamlit run streamlit_app.py --server.port "$port" \
      --server.address 127.0.0.1 --server.headless true --server.fileWatcherType none \
      --server.maxUploadSize "$STREAMLIT_SERVER_MAX_UPLOAD_SIZE") >"$RUN_DIR/replica-$i.log" 2>&1 &
  PIDS+=("$!")
  SERVERS+="    server r$i 127.0.0.1:$port check inter 5s fall 3 rise 2 cookie r$i"$'\n'
done
echo "$$ ${PIDS[*]}" > "$RUN_DIR/pids"

# Wait for every replica's health check.
healthy() {
  "$PYTHON" - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}
deadline=$((SECONDS + STARTUP_TIMEOUT))
for i in $(seq 1 "$N"); do
  port=$((REPLICA_PORT_BASE + i - 1))
  until healthy "http://127.0.0.1:$port/_stcore/health"; do
    if ! kill -0 "${PIDS[$((i - 1))]}" 2>/dev/null; then
      echo "Replica $i stopped while starting: see $RUN_DIR/replica-$i.log" >&2
      exit 1
    fi
    if (( SECONDS > deadline )); then
      echo "Replica $i did not answer within ${STARTUP_TIMEOUT}s: see $RUN_DIR/replica-$i.log" >&2
      exit 1
    fi
    sleep 1
  done
done
# Warm every replica up: one session each, so the first students do not pay its imports (WARM_UP=0: skip).
if [[ "${WARM_UP:-1}" == "1" ]]; then
  for i in $(seq 1 "$N"); do
    port=$((REPLICA_PORT_BASE + i - 1))
    (cd "$ROOT" && exec "$PYTHON" - "http://127.0.0.1:$port" >>"$RUN_DIR/replica-$i.log" 2>&1) <<'PY' &
import asyncio
import sys

from bench.st_client import Session


async def main() -> None:
    session = Session(sys.argv[1])
    try:
        await session.open(timeout=180)
    finally:
        await session.close()

try:
    asyncio.run(main())
except Exception as exc:  # a cold replica is slower, not broken
    print(f"warm-up of {sys.argv[1]} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
PY
    WARMERS+=("$!")
  done
  wait "${WARMERS[@]}" || true
  WARMERS=()
fi
# HAProxy, from the template, once the replicas answer (so none starts marked down).
CFG="$RUN_DIR/haproxy.cfg"
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ "$line" == "@SERVERS@" ]]; then
    printf '%s' "$SERVERS"
  else
    printf '%s\n' "${line//@PROXY_BIND@/$PROXY_ADDRESS:$PROXY_PORT}"
  fi
done < "$HERE/haproxy.cfg.in" > "$CFG"
haproxy -c -q -f "$CFG"
haproxy -db -f "$CFG" >"$RUN_DIR/haproxy.log" 2>&1 &
PIDS+=("$!")
echo "$$ ${PIDS[*]}" > "$RUN_DIR/pids"

until healthy "http://127.0.0.1:$PROXY_PORT/_stcore/health"; do
  if (( SECONDS > deadline )); then
    echo "HAProxy did not answer on port $PROXY_PORT: see $RUN_DIR/haproxy.log" >&2
    exit 1
  fi
  sleep 0.5
done

shown="$PROXY_ADDRESS"
[[ "$shown" == "0.0.0.0" ]] && shown="$(hostname -I 2>/dev/null | awk '{print $1}')"
echo "Torch Classroom: http://${shown:-127.0.0.1}:$PROXY_PORT  ($N replicas on ports $REPLICA_PORT_BASE-$((REPLICA_PORT_BASE + N - 1)), logs in $RUN_DIR)"
echo "Press Ctrl-C to stop."

# Run until Ctrl-C, or until one of them stops (then stop the rest).
set +e
wait -n "${PIDS[@]}"
echo "A process stopped (see $RUN_DIR): stopping the others." >&2
exit 1
