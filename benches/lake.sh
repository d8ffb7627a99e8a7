#!/usr/bin/env bash
# The lake benchmark: ingest + clean + features on ../shared/bench/gen.py's CSVs, against the
# pandas reference's same three steps on the same files in the same minutes.
#
#   benches/lake.sh seed [DATA_DIR]     # 10k customers (generated into DATA_DIR if missing)
#   benches/lake.sh scale [DATA_DIR]    # 1M customers, 200k products (~2 GB of CSV)
#   NIGHTLY=1 benches/lake.sh seed      # the whole nightly work: also sentiment, points,
#                                       # profile, retrain and recommend (issue #15), then
#                                       # `patron recommend C`, `points balance C` and
#                                       # `export features|recommendations --customer C`
#                                       # timed for 20 customers
#
# Prints one JSON object: patron's stage times (one daemon runs the five ingest jobs side by
# side, as the nightly pipeline does, then clean and features), the daemon's peak RSS, the SQLite file's size, the lake's size, and the reference's figures.
# Needs python3 with pandas, numpy and scikit-learn (../shared/bench/requirements.txt) and
# builds patron in release mode. Never run by the tests (wall clock is not a test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
case=${1:-seed}
data=${2:-$ROOT/target/bench-data/$case}
bench=${BENCH_DIR:-$ROOT/../shared/bench}
as_of=2026-06-30
case $case in
  seed) args=(--customers 10000 --products 100000 --orders-per-customer 10) ;;
  scale) args=(--customers 1000000 --products 200000 --orders-per-customer 10) ;;
  *) echo "usage: benches/lake.sh seed|scale [DATA_DIR]" >&2; exit 2 ;;
esac
if [[ ! -f $data/orders.csv ]]; then
  python3 "$bench/gen.py" "${args[@]}" --seed 42 --out "$data" >&2
fi
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/patron

work=$(mktemp -d)
# KEEP_WORK=1 keeps the database and lake for a look at the run's logs.
trap 'kill $(jobs -p) 2>/dev/null || true; if [[ -n ${KEEP_WORK:-} ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi' EXIT
export PATRON__DATABASE__URL="sqlite://$work/patron.db?mode=rwc"
export PATRON__DAEMON__HTTP_ADDR=off
unset PATRON__LAKE__PATH

"$bin" migrate >/dev/null
# The nightly pipeline's first three stages, through one daemon: the five ingest jobs side by
# side, then clean, then features.
{
  echo '[pipeline]'
  echo 'name = "bench"'
  for entity in customers products orders events reviews; do
    printf '[[job]]\nname = "ingest-%s"\nkind = "ingest"\nparams = { entity = "%s", path = "%s" }\n' \
      "$entity" "$entity" "$data/$entity.csv"
  done
  printf '[[job]]\nname = "clean"\nkind = "clean"\nafter = [%s]\n' \
    '"ingest-customers", "ingest-products", "ingest-orders", "ingest-events", "ingest-reviews"' 
  if [[ -n ${NIGHTLY:-} ]]; then
    # The rest of jobs/nightly.toml, in its order (compact aside: pandas has no such step).
    printf '[[job]]\nname = "sentiment"\nkind = "sentiment"\nafter = ["clean"]\n'
    printf '[[job]]\nname = "points"\nkind = "points"\nafter = ["clean"]\n'
    printf '[[job]]\nname = "features"\nkind = "features"\nafter = ["sentiment"]\nparams = { also_days_before = [90, 180] }\n'
    printf '[[job]]\nname = "profile"\nkind = "profile"\nafter = ["features"]\n'
    printf '[[job]]\nname = "retrain"\nkind = "retrain"\nafter = ["features"]\nparams = { horizon_days = 90 }\n'
    printf '[[job]]\nname = "recommend"\nkind = "recommend"\nafter = ["profile"]\n'
  else
    printf '[[job]]\nname = "features"\nkind = "features"\nafter = ["clean"]\n'
  fi
} > "$work/bench.toml"
"$bin" pipelines apply "$work/bench.toml" >/dev/null
"$bin" daemon --worker-id bench 2>"$work/daemon.log" &
daemon=$!
run=$("$bin" trigger bench --param as_of="$as_of" --wait --json) || {
  "$bin" runs show 1 >&2 || true
  tail -n 20 "$work/daemon.log" >&2
  exit 1
}
# The daemon's peak resident memory, from the kernel, before it stops.
grep VmHWM "/proc/$daemon/status" | awk '{print $2}' > "$work/daemon-time"
kill -TERM $daemon; wait $daemon || true
state=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["state"])' "$run")
[[ $state == succeeded ]] || { echo "bench pipeline: $state" >&2; cat "$work/daemon.log" >&2; exit 1; }
run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_id"])' "$run")
"$bin" runs show "$run_id" --json > "$work/run.json"

# Serving one customer, as a shop's front end would ask: wall time of whole CLI processes
# (start, connect, read) for 20 customers spread over the file.
echo '{}' > "$work/serving.json"
if [[ -n ${NIGHTLY:-} ]]; then
  python3 - "$bin" "$data/customers.csv" "$work/serving.json" <<'PY'
import csv, json, statistics, subprocess, sys, time
binary, customers, out = sys.argv[1:4]
ids = [row[0] for row in csv.reader(open(customers))][1:]
picks = [ids[i * len(ids) // 20] for i in range(20)]
result = {}
out_csv = out + ".csv"
commands = {
    "recommend": lambda c: ["recommend", c],
    "points_balance": lambda c: ["points", "balance", c],
    "export_features": lambda c: ["export", "features", "--customer", c, "--out", out_csv],
    "export_recommendations": lambda c: ["export", "recommendations", "--customer", c, "--out", out_csv],
}
for name, args in commands.items():
    times = []
    for c in picks:
        started = time.perf_counter()
        subprocess.run([binary, "--json", *args(c)], check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    result[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
json.dump(result, open(out, "w"))
PY
fi

# SKIP_REFERENCE=1: patron's side only (the reference takes 13 minutes at scale).
if [[ -n ${SKIP_REFERENCE:-} ]]; then
  reference='{}'
else
  reference=$(python3 "$bench/reference.py" "$data" --as-of "$as_of")
fi

python3 - "$work" "$reference" "$case" <<PY
import json, os, sys
work, reference, case = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
run = json.load(open(f"{work}/run.json"))
jobs = {j["name"]: j for j in run["jobs"]}
from datetime import datetime
def secs(j):
    return round((t(j["finished_at"]) - t(j["started_at"])).total_seconds(), 2)
entities = "customers products orders events reviews".split()
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
loads = [jobs[f"ingest-{e}"] for e in entities]
ingest_wall = round((max(t(j["finished_at"]) for j in loads) - min(t(j["started_at"]) for j in loads)).total_seconds(), 2)
daemon_rss = int(open(f"{work}/daemon-time").read().split()[-1])
lake_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{work}/patron.lake") for f in fs)
patron = {
    "ingest": ingest_wall,
    "ingest_per_file": {e: secs(j) for e, j in zip(entities, loads)},
    "clean": secs(jobs["clean"]),
    "features": secs(jobs["features"]),
    "peak_rss_mb": daemon_rss // 1024,
    "sqlite_mb": round(os.path.getsize(f"{work}/patron.db") / 2**20, 2),
    "lake_mb": round(lake_bytes / 2**20, 1),
}
# First ingest started to features finished: the stages and the daemon's hand-offs between them.
first = min(t(j["started_at"]) for j in loads)
patron["three_steps"] = round((t(jobs["features"]["finished_at"]) - first).total_seconds(), 2)
if "recommend" in jobs:
    for name in ("sentiment", "points", "profile", "retrain", "recommend"):
        patron[name] = secs(jobs[name])
    patron["nightly"] = round((max(t(j["finished_at"]) for j in jobs.values()) - first).total_seconds(), 2)
steps = reference.get("steps", reference)
pandas = {k: (steps.get(k) or {}).get("wall_s") for k in ("ingest", "clean", "features")}
pandas["three_steps"] = round(sum(v for v in pandas.values() if v), 2) or None
if "recommend" in jobs:
    pandas["steps"] = {k: v.get("wall_s") for k, v in steps.items() if isinstance(v, dict)}
print(json.dumps({"case": case, "patron": patron, "pandas": pandas,
                  "speedup": pandas["three_steps"] and round(pandas["three_steps"] / max(patron["three_steps"], 1e-9), 2),
                  "pandas_total_s": reference.get("total_wall_s"),
                  "speedup_nightly": patron.get("nightly") and reference.get("total_wall_s")
                  and round(reference["total_wall_s"] / patron["nightly"], 2),
                  "pandas_peak_rss_mb": reference.get("peak_rss_mb"),
                  "serving": json.load(open(f"{work}/serving.json"))}))
PY
