#!/usr/bin/env bash
# A feedback pass over N new events on a shop that has been through the nightly pipeline:
#   benches/feedback_pass.sh DATABASE_URL [N] [PATRON_BINARY]
# Writes N events (views, clicks, carts and rec_clicks of customers on products they were
# recommended), loads them, runs the `feedback` job once through a daemon, and prints the
# pass the job recorded (its own wall time included).
set -euo pipefail
url=$1
n=${2:-10000}
patron=${3:-target/release/patron}
work=$(mktemp -d)
trap 'kill "${daemon:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

"$patron" --database-url "$url" export recommendations --out "$work/recs.csv" >/dev/null
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
awk -F, -v n="$n" -v now="$now" -v seed="$RANDOM" '
  NR == 1 { next }
  { c[m] = $1; p[m] = $3; m++ }
  END {
    srand(seed)
    split("view view view click cart rec_click", kinds, " ")
    print "event_id,customer_id,product_id,kind,occurred_at"
    for (i = 0; i < n; i++) {
      r = int(rand() * m)
      printf "FB-%s-%d,%s,%s,%s,%s\n", seed, i, c[r], p[r], kinds[1 + int(rand() * 6)], now
    }
  }' "$work/recs.csv" > "$work/events.csv"
"$patron" --database-url "$url" ingest events "$work/events.csv" >/dev/null

cat > "$work/fb.toml" <<'TOML'
[pipeline]
name = "feedback-bench"

[[job]]
name = "feedback"
kind = "feedback"
TOML
"$patron" --database-url "$url" pipelines apply "$work/fb.toml" >/dev/null
"$patron" --database-url "$url" daemon --worker-id feedback-bench >"$work/daemon.log" 2>&1 &
daemon=$!
"$patron" --database-url "$url" trigger feedback-bench --wait >/dev/null
"$patron" --database-url "$url" feedback passes --limit 1
