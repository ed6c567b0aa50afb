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

# shellcheck disable=SC2034  # used by install and up
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

# True when the pid recorded in FILE is a live process whose command line
# contains PATTERN (default: the file's base name, e.g. "nginx" for
# nginx.pid; "" skips the check). The check on the command line keeps a stale pid file (after a
# reboot, say) from pointing up/down at an unrelated process.
pid_alive() {
  local file="$1" pattern="${2-$(basename "$1" .pid)}" pid
  [[ -s "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# True when process PID was started by sandbox/up for this state dir: its command line names
# something under $SANDBOX_STATE, or its environment carries SANDBOX_STATE as up exports it
# (verdaccio rewrites its command line, nginx clears its environment). A server of another
# state dir or of the system that answers on the same port is not ours to adopt or stop.
of_this_state() {
  local pid="$1"
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "${SANDBOX_STATE%/}/" \
    || tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qxF -- "SANDBOX_STATE=$SANDBOX_STATE"
}

# base64 of "user:password" for HTTP Basic auth headers and npm's _auth.
basic_token() { printf '%s:%s' "$1" "$2" | base64 -w0; }

# Writes a throw-away npm userconfig (registry + Basic credentials for it)
# into directory $1 and prints its path. Used instead of an .npmrc in any
# project folder; the caller deletes the directory.
# usage: npm_userconfig DIR USER PASSWORD
npm_userconfig() {
  local dir="$1" user="$2" password="$3"
  local nerf="${SANDBOX_NPM_REGISTRY#http:}"   # //127.0.0.1:4873/
  nerf="${nerf%/}/"
  {
    echo "registry=$SANDBOX_NPM_REGISTRY"
    echo "$nerf:_auth=$(basic_token "$user" "$password")"
    echo "audit=false"
    echo "fund=false"
    echo "update-notifier=false"
  } > "$dir/npmrc"
  chmod 600 "$dir/npmrc"
  echo "$dir/npmrc"
}

# Serialises up and down, also between test sessions running at the same
# time (a `down --purge` racing an `up` would delete a fresh server's files).
# The lock file sits beside the state dir, which --purge deletes.
sandbox_lock() {
  local lock="${SANDBOX_STATE%/}.lock"
  mkdir -p "$(dirname "$lock")"
  exec 9>"$lock"
  flock -w 900 9 || die "timed out waiting for $lock (another sandbox/up or down)"
}

# Pid of the process listening on 127.0.0.1:PORT (empty when none).
listener_pid() {
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2
}
