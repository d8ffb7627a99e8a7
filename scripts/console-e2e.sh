#!/usr/bin/env bash
# End-to-end check of `patron console` in tmux, on a fresh SQLite database in a temp folder:
# start a daemon and the console, trigger a run with `t` (giving it a parameter at the
# prompt), switch to Runs and wait until the run shows `succeeded`, open its DAG, quit with
# `q`, and check the console exited.
#
#   scripts/console-e2e.sh                 # builds with cargo, then runs
#   PATRON=path/to/patron scripts/console-e2e.sh
#   CAPTURE=dir scripts/console-e2e.sh     # also saves each screen as text in dir
#
# Needs tmux (`apt-get install -y tmux`); exits 2 without it. The tmux server is private
# (its own socket in the temp folder), so the user's sessions are never touched.
set -euo pipefail

if ! command -v tmux >/dev/null 2>&1; then
    echo "console-e2e: tmux is not installed (apt-get install -y tmux)" >&2
    exit 2
fi

if [ -z "${PATRON:-}" ]; then
    cargo build --quiet
    PATRON="${CARGO_TARGET_DIR:-target}/debug/patron"
fi
PATRON=$(cd "$(dirname "$PATRON")" && pwd)/$(basename "$PATRON")

work=$(mktemp -d)
socket="$work/tmux.sock"
session=console
daemon_pid=

cleanup() {
    tmux -S "$socket" kill-server >/dev/null 2>&1 || true
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/patron.toml" <<EOF
[database]
url = "sqlite://$work/patron.db?mode=rwc"

[scheduler]
poll_interval = "100ms"
heartbeat_interval = "500ms"
EOF

cat >"$work/e2e.toml" <<'EOF'
[pipeline]
name = "e2e-pipeline"
schedule = "0 0 3 * * *"
timezone = "Europe/Berlin"

[[job]]
name = "hello"
kind = "command"
params = { program = "sh", args = ["-c", "echo hello from the e2e run; sleep 1"] }

[[job]]
name = "after-hello"
kind = "noop"
after = ["hello"]
EOF

cd "$work"
"$PATRON" pipelines apply e2e.toml >/dev/null
"$PATRON" daemon --worker-id e2e-daemon >daemon.log 2>&1 &
daemon_pid=$!

tmux -S "$socket" new-session -d -s "$session" -x 120 -y 30 \
    "'$PATRON' console --log-file '$work/console.log'"

screen() { tmux -S "$socket" capture-pane -p -t "$session" 2>/dev/null; }
keys() { tmux -S "$socket" send-keys -t "$session" "$@"; }
save() {
    if [ -n "${CAPTURE:-}" ]; then
        mkdir -p "$CAPTURE"
        screen >"$CAPTURE/$1.txt"
    fi
}
# wait_for REGEX SECONDS: until the screen matches, or fail showing it.
wait_for() {
    local tries=$(($2 * 10))
    for _ in $(seq 1 "$tries"); do
        if screen | grep -Eq -- "$1"; then
            return 0
        fi
        sleep 0.1
    done
    echo "console-e2e: /$1/ did not appear within $2 s; the screen:" >&2
    screen >&2 || true
    echo "--- daemon log (tail) ---" >&2
    tail -n 20 daemon.log >&2 || true
    exit 1
}

wait_for 'e2e-pipeline +0 0 3 \* \* \* Europe/Berlin' 30
save pipelines
keys t
wait_for 'Trigger e2e-pipeline' 5
keys 'who=e2e'
keys Enter
wait_for 'run 1 of e2e-pipeline queued' 10
keys 2
wait_for '^1 +e2e-pipeline +(queued|running|succeeded)' 10
wait_for '^1 +e2e-pipeline +succeeded +manual' 60
save runs
keys Enter
wait_for '✓ after-hello' 10
wait_for 'who=e2e' 1
save run
keys Enter
wait_for 'hello from the e2e run' 10
save logs
keys 5
wait_for 'e2e-daemon .* running' 10
save workers
keys q
for _ in $(seq 1 50); do
    if ! tmux -S "$socket" has-session -t "$session" 2>/dev/null; then
        echo "console-e2e: ok (triggered with t, saw succeeded, quit with q)"
        exit 0
    fi
    sleep 0.1
done
echo "console-e2e: the console did not exit after q" >&2
screen >&2 || true
exit 1
