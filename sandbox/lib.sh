# Shared helpers for the sandbox scripts. Sourced, not executed.
# shellcheck shell=bash

SANDBOX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Load sandbox.env; a variable already set in the environment wins, so any
# value can be overridden per run (e.g. SANDBOX_STATE=/tmp/x sandbox/up).
while IFS='=' read -r key value; do
  [[ -z "$key" || "$key" == \#* ]] && continue
  if [[ -z "${!key+x}" ]]; then
    export "$key=$value"
  fi
done < "$SANDBOX_DIR/sandbox.env"

VERDACCIO_HOME="$SANDBOX_DIR/.verdaccio"

log() { printf '%s\n' "$*" >&2; }
die() { log "sandbox: $*"; exit 1; }

# Poll a command until it succeeds or the timeout (seconds) runs out.
# usage: wait_for TIMEOUT CMD...
wait_for() {
  local timeout="$1"; shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
      return 1
    fi
    sleep 0.2
  done
}

# True when the pid recorded in FILE is a live process.
pid_alive() {
  local file="$1" pid
  [[ -s "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# base64 of "user:password" for HTTP Basic auth headers and npm's _auth.
basic_token() { printf '%s:%s' "$1" "$2" | base64 -w0; }
