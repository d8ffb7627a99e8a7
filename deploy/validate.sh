#!/usr/bin/env bash
# Checks the deployment files in deploy/ without Docker, a Kubernetes cluster or systemd
# running, and checks that a patron binary starts with the settings they use.
#
#   deploy/validate.sh [PATRON_BINARY]        # default: target/release/patron
#
# What it checks:
#   - every YAML file under deploy/ parses (python3 + PyYAML; installed with
#     `pip install --user` if missing, skipped with a message if that fails too);
#   - the ConfigMap in deploy/k8s/configmap-jobs.yaml holds jobs/*.toml byte for byte, and is
#     exactly what deploy/gen-configmap.py writes (regenerate with that script);
#   - compose.yaml and k8s/ wire what the daemon needs (services, commands, depends_on,
#     worker ids, env, ports, probes, security context, Secret/ConfigMap/Service names);
#   - every PATRON__SECTION__KEY variable in deploy/ names a real setting in src/config.rs;
#   - stop timeouts (TimeoutStopSec, stop_grace_period, terminationGracePeriodSeconds)
#     exceed scheduler.shutdown_grace;
#   - `systemd-analyze verify` of patron.service (if systemd-analyze exists; the ExecStart
#     binary is pointed at PATRON_BINARY, as /usr/local/bin/patron is not installed here);
#   - the Dockerfile's stages, USER, EXPOSE, ENTRYPOINT/CMD, that its COPY sources exist and
#     are not excluded by .dockerignore, and that its bench-stub sed finds every [[bench]];
#   - deploy/healthcheck.sh against stub HTTP servers (200 healthy; 503 and closed unhealthy);
#   - hadolint and shellcheck, when they are installed;
#   - the binary: `migrate` on SQLite, `pipelines validate jobs/`, `pipelines apply` from a
#     copy of the ConfigMap laid out as the kubelet mounts it (symlinks into ..data), the
#     settings of patron.env.example, and a daemon that answers /healthz through
#     healthcheck.sh and exits promptly on SIGTERM.
# What it cannot check here: building the image, running compose, applying the manifests to
# a cluster (API-server schema validation), or the systemd sandbox at run time.
#
# Exits non-zero if any check fails.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$PWD
BIN=${1:-target/release/patron}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN

# The caller's settings must not leak into the checks.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^PATRON__' || true)

failures=0
ok() { printf 'ok    %s\n' "$*"; }
skip() { printf 'skip  %s\n' "$*"; }
fail() {
    printf 'FAIL  %s\n' "$*" >&2
    failures=$((failures + 1))
}
section() { printf '\n== %s\n' "$*"; }

tmp=$(mktemp -d)
daemon_pid=""
stub_pids=()
cleanup() {
    [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null
    for p in "${stub_pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
section "YAML"
have_python=false
have_yaml=false
if command -v python3 >/dev/null; then
    have_python=true
    if python3 -c 'import yaml' 2>/dev/null; then
        have_yaml=true
    elif python3 -m pip install --user --quiet pyyaml >/dev/null 2>&1 &&
        python3 -c 'import yaml' 2>/dev/null; then
        have_yaml=true
        ok "installed PyYAML with pip --user"
    fi
fi

if $have_yaml; then
    if python3 - <<'EOF'; then ok "every YAML file under deploy/ parses"; else fail "YAML files under deploy/ do not parse (above)"; fi
import pathlib, sys, yaml
bad = 0
files = sorted(p for p in pathlib.Path("deploy").rglob("*") if p.suffix in (".yaml", ".yml"))
for p in files:
    try:
        docs = [d for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d is not None]
        if not docs:
            raise ValueError("no document")
        print(f"      {p}: {len(docs)} document(s)")
    except Exception as e:
        print(f"      {p}: {e}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad or not files else 0)
EOF
else
    skip "YAML parsing and the structural checks: python3 with PyYAML is not available (pip install --user pyyaml)"
fi

# ---------------------------------------------------------------------------------------------
section "ConfigMap = jobs/*.toml"
if $have_python; then
    if python3 deploy/gen-configmap.py - >"$tmp/configmap.yaml" &&
        diff -u deploy/k8s/configmap-jobs.yaml "$tmp/configmap.yaml" >"$tmp/configmap.diff"; then
        ok "deploy/k8s/configmap-jobs.yaml is what deploy/gen-configmap.py writes from jobs/"
    else
        head -40 "$tmp/configmap.diff" >&2
        fail "deploy/k8s/configmap-jobs.yaml drifted from jobs/: run deploy/gen-configmap.py and commit it"
    fi
else
    skip "regenerating the ConfigMap: python3 is not available"
fi
if $have_yaml; then
    if python3 - "$tmp/configmap-mount" <<'EOF'; then ok "ConfigMap data reads back as jobs/*.toml byte for byte"; else fail "ConfigMap data differs from jobs/*.toml (above); run deploy/gen-configmap.py"; fi
import pathlib, sys, yaml
cm = yaml.safe_load(open("deploy/k8s/configmap-jobs.yaml", encoding="utf-8"))
data = cm.get("data") or {}
jobs = {p.name: p.read_bytes() for p in sorted(pathlib.Path("jobs").glob("*.toml"))}
bad = False
if set(data) != set(jobs):
    print(f"      keys {sorted(data)} != jobs/ files {sorted(jobs)}", file=sys.stderr)
    bad = True
for name, raw in jobs.items():
    if name in data and (not isinstance(data[name], str) or data[name].encode("utf-8") != raw):
        print(f"      {name}: content differs", file=sys.stderr)
        bad = True
# Lay the files out as the kubelet mounts a ConfigMap: a timestamped folder, a ..data link to
# it, and one link per key into ..data.
mount = pathlib.Path(sys.argv[1])
stamp = mount / "..2026_01_01_00_00_00.000000000"
stamp.mkdir(parents=True)
for name, text in data.items():
    (stamp / name).write_bytes(str(text).encode("utf-8"))
(mount / "..data").symlink_to(stamp.name)
for name in data:
    (mount / name).symlink_to(f"..data/{name}")
sys.exit(1 if bad else 0)
EOF
fi

# ---------------------------------------------------------------------------------------------
section "compose.yaml, k8s/, settings names, stop timeouts"
if $have_yaml; then
    if python3 - <<'EOF'; then ok "compose.yaml and k8s/ are wired as documented; every PATRON__ variable is a real setting"; else fail "deployment wiring (above)"; fi
import pathlib, re, sys, yaml

problems = []
def check(cond, what):
    if not cond:
        problems.append(what)

def load(path):
    return [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]

def seconds(text):
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|m|min|h)?\s*", str(text))
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n / 1000 if unit == "ms" else n * {"s": 1, "m": 60, "min": 60, "h": 3600}[unit]

config_rs = open("src/config.rs", encoding="utf-8").read()
grace = re.search(r'set_default\("scheduler\.shutdown_grace",\s*"([^"]+)"\)', config_rs)
grace = seconds(grace.group(1)) if grace else 30

# Settings: the fields of `Settings` (sections) and of each section's struct (keys).
def struct_fields(name):
    m = re.search(r"pub struct " + name + r"\s*\{(.*?)\n\}", config_rs, re.S)
    return dict(re.findall(r"pub (\w+):\s*([\w:<>]+)", m.group(1))) if m else {}
settings = {}
for section, ty in struct_fields("Settings").items():
    settings[section] = set(struct_fields(ty.split("::")[-1]))
for path in sorted(pathlib.Path("deploy").rglob("*")):
    if not path.is_file() or path.name == "validate.sh":
        continue
    for var in sorted(set(re.findall(r"\bPATRON__[A-Z0-9_]+", path.read_text(encoding="utf-8")))):
        parts = var.split("__")
        if len(parts) != 3:
            problems.append(f"{path}: {var} is not PATRON__SECTION__KEY")
            continue
        section, key = parts[1].lower(), parts[2].lower()
        if (section, key) == ("section", "key"):
            continue  # the naming pattern itself, in comments
        check(key in settings.get(section, ()), f"{path}: {var} is not a setting ({section}.{key}) in src/config.rs")

# --- compose.yaml
c = load("deploy/compose.yaml")[0]
s = c.get("services", {})
for name in ("postgres", "migrate", "apply", "daemon-1", "daemon-2"):
    check(name in s, f"compose: service {name} missing")
if not problems:
    check(str(s["postgres"].get("image", "")).startswith("postgres:16"), "compose: postgres image is not postgres:16")
    check("pg_isready" in str(s["postgres"].get("healthcheck", {}).get("test")), "compose: postgres healthcheck is not pg_isready")
    check(any(":/var/lib/postgresql/data" in str(v) for v in s["postgres"].get("volumes", [])), "compose: postgres has no data volume")
    check(s["migrate"].get("command") == ["migrate"], "compose: migrate does not run `migrate`")
    check(s["migrate"].get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
          "compose: migrate does not wait for postgres to be healthy")
    check(s["apply"].get("command") == ["pipelines", "apply", "/app/jobs"], "compose: apply does not run `pipelines apply /app/jobs`")
    for name, port in (("daemon-1", 9464), ("daemon-2", 9465)):
        d = s[name]
        check(d.get("command") == ["daemon", "--worker-id", name], f"compose: {name} command is not daemon --worker-id {name}")
        check(any(str(p).endswith(f"{port}:9464") for p in d.get("ports", [])), f"compose: {name} does not publish {port} -> 9464")
        check(seconds(d.get("stop_grace_period", "10s")) > grace, f"compose: {name} stop_grace_period does not exceed shutdown_grace {grace}s")
    for name in ("migrate", "apply", "daemon-1", "daemon-2"):
        d = s[name]
        env = d.get("environment", {})
        check(d.get("image") == "patron:latest", f"compose: {name} image is not patron:latest")
        check(env.get("PATRON__DATABASE__URL") == "postgres://patron:patron@postgres:5432/patron",
              f"compose: {name} PATRON__DATABASE__URL is not the postgres service")
        check(env.get("PATRON__DAEMON__HTTP_ADDR") == "0.0.0.0:9464", f"compose: {name} does not listen on 0.0.0.0:9464")
        if name != "migrate":
            check(d.get("depends_on", {}).get("migrate", {}).get("condition") == "service_completed_successfully",
                  f"compose: {name} does not wait for migrate to complete")

# --- k8s
docs = {}
for p in sorted(pathlib.Path("deploy/k8s").glob("*.yaml")):
    for d in load(p):
        docs[(d.get("kind"), d.get("metadata", {}).get("name"))] = d
deps = [d for (k, _), d in docs.items() if k == "Deployment"]
secrets = {n: d for (k, n), d in docs.items() if k == "Secret"}
cms = {n: d for (k, n), d in docs.items() if k == "ConfigMap"}
svcs = [d for (k, _), d in docs.items() if k == "Service"]
check(len(deps) == 1, "k8s: expected one Deployment")
check(len(svcs) == 1, "k8s: expected one Service")
if len(deps) == 1 and len(svcs) == 1:
    dep, svc = deps[0], svcs[0]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    check(dep["spec"].get("replicas") == 2, "k8s: replicas is not 2")
    check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "k8s: selector does not match the pod labels")
    check(pod.get("terminationGracePeriodSeconds", 30) > grace, f"k8s: terminationGracePeriodSeconds does not exceed shutdown_grace {grace}s")
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "k8s: pod runAsNonRoot is not true")
    inits = pod.get("initContainers", [])
    check(any(i.get("args") == ["migrate"] for i in inits), "k8s: no initContainer runs `migrate`")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    containers = pod.get("containers", [])
    check(len(containers) == 1, "k8s: expected one container")
    for ctr in inits + containers:
        n = ctr["name"]
        env = {e["name"]: e for e in ctr.get("env", [])}
        check(ctr.get("image") == "patron:latest", f"k8s: {n} image is not patron:latest")
        sc = ctr.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True, f"k8s: {n} readOnlyRootFilesystem is not true")
        check(sc.get("allowPrivilegeEscalation") is False, f"k8s: {n} allowPrivilegeEscalation is not false")
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"k8s: {n} runAsNonRoot is not true")
        check({"requests", "limits"} <= set(ctr.get("resources", {})), f"k8s: {n} has no resource requests and limits")
        ref = env.get("PATRON__DATABASE__URL", {}).get("valueFrom", {}).get("secretKeyRef", {})
        sec = secrets.get(ref.get("name"))
        check(sec is not None and ref.get("key") in (sec.get("stringData") or {}),
              f"k8s: {n} PATRON__DATABASE__URL is not a key of the Secret in secret.yaml")
        pdir = env.get("PATRON__PIPELINES__DIR", {}).get("value")
        for m in ctr.get("volumeMounts", []):
            v = volumes.get(m["name"])
            check(v is not None, f"k8s: {n} mounts unknown volume {m['name']}")
            if v and "configMap" in v:
                check(v["configMap"]["name"] in cms, f"k8s: volume {m['name']} names no ConfigMap in k8s/")
                check(m["mountPath"] == pdir == "/app/jobs", f"k8s: {n} mounts the ConfigMap at {m['mountPath']}, PATRON__PIPELINES__DIR is {pdir}")
    if containers:
        ctr = containers[0]
        env = {e["name"]: e for e in ctr.get("env", [])}
        check(ctr.get("args") == ["daemon", "--worker-id", "$(POD_NAME)"], "k8s: daemon args are not daemon --worker-id $(POD_NAME)")
        check(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
              "k8s: POD_NAME is not the pod name (downward API)")
        check(env.get("PATRON__DAEMON__HTTP_ADDR", {}).get("value") == "0.0.0.0:9464", "k8s: daemon does not listen on 0.0.0.0:9464")
        for probe in ("livenessProbe", "readinessProbe"):
            g = ctr.get(probe, {}).get("httpGet", {})
            check(g.get("path") == "/healthz" and g.get("port") == 9464, f"k8s: {probe} is not httpGet /healthz on 9464")
        check(any(p.get("containerPort") == 9464 and p.get("name") for p in ctr.get("ports", [])), "k8s: no named containerPort 9464")
    check(svc["spec"].get("type", "ClusterIP") == "ClusterIP", "k8s: Service is not ClusterIP")
    check(svc["spec"].get("selector", {}).items() <= labels.items(), "k8s: Service selector does not match the pods")
    check(any(p.get("port") == 9464 for p in svc["spec"].get("ports", [])), "k8s: Service does not expose 9464")
    ann = svc["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464",
          "k8s: Service lacks the prometheus.io scrape annotations")

# --- systemd stop timeout
unit = open("deploy/patron.service", encoding="utf-8").read()
m = re.search(r"^TimeoutStopSec=(\S+)", unit, re.M)
check(m is not None and (seconds(m.group(1)) or 0) > grace, f"patron.service: TimeoutStopSec does not exceed shutdown_grace {grace}s")

for p in problems:
    print(f"      {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
fi

# ---------------------------------------------------------------------------------------------
section "systemd unit"
if command -v systemd-analyze >/dev/null; then
    # /usr/local/bin/patron is not installed on this machine and `verify` rejects a missing
    # ExecStart binary, so the unit is checked with the binary under test in its place.
    exe=$BIN
    [[ -x $exe ]] || exe=$(command -v true)
    sed "s|/usr/local/bin/patron|$exe|g" deploy/patron.service >"$tmp/patron.service"
    if ! systemd-analyze verify "$tmp/patron.service" >"$tmp/verify.log" 2>&1; then
        sed 's/^/      /' "$tmp/verify.log" >&2
        fail "systemd-analyze verify deploy/patron.service (above)"
    elif grep -Eiq 'unknown (key|section|lvalue)|failed to parse|invalid|ignoring' "$tmp/verify.log"; then
        # verify only warns about a misspelt directive or a bad value, and systemd then
        # ignores it: a hardening line would silently do nothing.
        sed 's/^/      /' "$tmp/verify.log" >&2
        fail "systemd-analyze verify deploy/patron.service: directives systemd would ignore (above)"
    else
        sed 's/^/      /' "$tmp/verify.log"
        ok "systemd-analyze verify deploy/patron.service"
    fi
else
    skip "systemd-analyze verify: systemd-analyze is not installed"
fi

# ---------------------------------------------------------------------------------------------
section "Dockerfile"
df=deploy/Dockerfile
dockerfile_ok=true
expect() { # PATTERN DESCRIPTION
    if ! grep -Eq "$1" "$df"; then
        fail "Dockerfile: $2 (no line matching /$1/)"
        dockerfile_ok=false
    fi
}
expect '^FROM rust:1-bookworm AS builder$' "builder stage from rust:1-bookworm"
expect '^FROM debian:bookworm-slim( AS [a-z]+)?$' "runtime stage from debian:bookworm-slim"
expect 'cargo build --release --locked --bin patron' "cargo build --release --locked of the patron binary"
expect '^COPY --from=builder .* /usr/local/bin/patron$' "binary copied to /usr/local/bin/patron"
expect '^USER (10001|patron)(:[0-9a-z]+)?$' "non-root USER 10001 (patron)"
expect 'useradd .*--uid 10001' "user patron with uid 10001"
expect '^WORKDIR /app$' "WORKDIR /app"
expect '^COPY jobs /app/jobs$' "jobs/ copied to /app/jobs"
expect '^COPY campaigns /app/campaigns$' "campaigns/ copied to /app/campaigns"
expect '^EXPOSE 9464$' "EXPOSE 9464"
expect '^HEALTHCHECK ' "HEALTHCHECK"
expect '^ENTRYPOINT \["patron"\]$' 'ENTRYPOINT ["patron"]'
expect '^CMD \["daemon"\]$' 'CMD ["daemon"]'
expect 'install -y --no-install-recommends ca-certificates( \\)?$' "only ca-certificates installed"
# The final stage must set USER (a USER in the builder alone would leave the runtime root).
if [[ $(grep -nE '^(FROM|USER) ' "$df" | tail -1) != *USER* ]]; then
    fail "Dockerfile: USER is not set in the final stage"
    dockerfile_ok=false
fi
# The bench stubs: the Dockerfile's own sed must find every [[bench]] of Cargo.toml.
bench_sed=$(grep -o "sed -n '[^']*' Cargo.toml" "$df" | head -1 | sed "s/^sed -n '//; s/' Cargo.toml$//")
benches=$(grep -c '^\[\[bench\]\]' Cargo.toml || true)
found=$(sed -n "$bench_sed" Cargo.toml | grep -c . || true)
if [[ -z $bench_sed || $found != "$benches" ]]; then
    fail "Dockerfile: its bench-stub sed finds $found names, Cargo.toml declares $benches [[bench]] targets"
    dockerfile_ok=false
fi
# COPY sources from the build context must exist and not be excluded by .dockerignore.
if $have_python; then
    if ! python3 - <<'EOF'; then dockerfile_ok=false; fail "Dockerfile: COPY sources (above)"; fi
import fnmatch, pathlib, re, sys
ignore = []
if pathlib.Path(".dockerignore").exists():
    for line in open(".dockerignore", encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            ignore.append(line)
def excluded(path):
    # Docker's rules, roughly: last matching pattern wins, `**/` matches any depth, a
    # pattern excluding a folder excludes what is below it.
    parts = pathlib.PurePosixPath(path).parts
    result = False
    for pat in ignore:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if fnmatch.fnmatchcase(prefix, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(prefix, pat[3:])) \
               or (pat.startswith("**/") and fnmatch.fnmatchcase(parts[i - 1], pat[3:])):
                result = not neg
                break
    return result
bad = 0
text = open("deploy/Dockerfile", encoding="utf-8").read().replace("\\\n", " ")
for line in text.splitlines():
    m = re.match(r"\s*COPY\s+(.*)", line)
    if not m:
        continue
    args = [a for a in m.group(1).split() if not a.startswith("--")]
    if "--from=" in m.group(1):
        continue
    for src in args[:-1]:
        if not pathlib.Path(src).exists():
            print(f"      COPY {src}: not in the repository", file=sys.stderr); bad += 1
        elif excluded(src):
            print(f"      COPY {src}: excluded by .dockerignore", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
EOF
fi
if [[ ! -x deploy/healthcheck.sh ]]; then
    fail "deploy/healthcheck.sh is not executable (COPY keeps the mode)"
    dockerfile_ok=false
fi
if command -v hadolint >/dev/null; then
    if hadolint deploy/Dockerfile >"$tmp/hadolint.log" 2>&1; then
        ok "hadolint deploy/Dockerfile"
    else
        sed 's/^/      /' "$tmp/hadolint.log" >&2
        fail "hadolint deploy/Dockerfile (above)"
    fi
fi
$dockerfile_ok && ok "Dockerfile: two stages, non-root USER 10001, EXPOSE 9464, HEALTHCHECK, ENTRYPOINT/CMD, COPY sources present"

# ---------------------------------------------------------------------------------------------
section "healthcheck.sh"
if command -v shellcheck >/dev/null; then
    if shellcheck deploy/healthcheck.sh deploy/validate.sh >"$tmp/shellcheck.log" 2>&1; then
        ok "shellcheck deploy/healthcheck.sh deploy/validate.sh"
    else
        sed 's/^/      /' "$tmp/shellcheck.log" >&2
        fail "shellcheck (above)"
    fi
fi
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
if $have_python; then
    cat >"$tmp/stub.py" <<'EOF'
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(sys.argv[2]) if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"{}\n")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
    hc_ok=true
    for case in "200 0" "503 1" "closed 1"; do
        read -r code want <<<"$case"
        port=$(free_port)
        if [[ $code != closed ]]; then
            python3 "$tmp/stub.py" "$port" "$code" 2>/dev/null &
            stub_pids+=($!)
            for _ in $(seq 50); do
                (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
                sleep 0.1
            done
        fi
        PATRON__DAEMON__HTTP_ADDR="0.0.0.0:$port" deploy/healthcheck.sh 2>/dev/null
        got=$?
        if [[ $got != "$want" ]]; then
            fail "healthcheck.sh: /healthz $code gave exit $got, expected $want"
            hc_ok=false
        fi
    done
    $hc_ok && ok "healthcheck.sh: 200 healthy; 503 and a closed port unhealthy"
else
    skip "healthcheck.sh: python3 (for a stub HTTP server) is not available"
fi

# ---------------------------------------------------------------------------------------------
section "binary: $BIN"
if [[ ! -x $BIN ]]; then
    fail "$BIN is not an executable file (build it: cargo build --release, or pass its path)"
else
    # An empty settings file, so a local ./patron.toml cannot change the outcome.
    : >"$tmp/patron.toml"
    run() { # DESCRIPTION -- COMMAND...
        local what=$1
        shift 2
        if "$@" >"$tmp/out" 2>&1; then
            sed 's/^/      /' "$tmp/out"
            ok "$what"
        else
            sed 's/^/      /' "$tmp/out" >&2
            fail "$what (above)"
        fi
    }
    db="sqlite://$tmp/p.db?mode=rwc"
    run "PATRON__DATABASE__URL=sqlite://\$tmp/p.db?mode=rwc patron migrate" -- \
        env PATRON__DATABASE__URL="$db" "$BIN" --config "$tmp/patron.toml" migrate
    run "patron pipelines validate jobs/" -- \
        env PATRON__DATABASE__URL="$db" "$BIN" --config "$tmp/patron.toml" pipelines validate jobs/
    if [[ -d $tmp/configmap-mount ]]; then
        # As the k8s `apply` initContainer does it: no paths, pipelines.dir = the mounted ConfigMap.
        run "patron pipelines apply with PATRON__PIPELINES__DIR = the ConfigMap, mounted as the kubelet does" -- \
            env PATRON__DATABASE__URL="$db" PATRON__PIPELINES__DIR="$tmp/configmap-mount" \
            PATRON__DAEMON__HTTP_ADDR=0.0.0.0:9464 "$BIN" --config "$tmp/patron.toml" pipelines apply
        # The same content from jobs/ must be recognised as already applied.
        if env PATRON__DATABASE__URL="$db" "$BIN" --config "$tmp/patron.toml" pipelines apply jobs/ >"$tmp/out" 2>&1 &&
            ! grep -qv '^unchanged' "$tmp/out"; then
            sed 's/^/      /' "$tmp/out"
            ok "patron pipelines apply jobs/ finds every ConfigMap pipeline unchanged"
        else
            sed 's/^/      /' "$tmp/out" >&2
            fail "patron pipelines apply jobs/ after the ConfigMap: not all unchanged (above)"
        fi
    else
        run "patron pipelines apply jobs/" -- \
            env PATRON__DATABASE__URL="$db" "$BIN" --config "$tmp/patron.toml" pipelines apply jobs/
    fi
    # patron.env.example: every value must be a valid setting (its database is swapped for SQLite).
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    run "deploy/patron.env.example loads (database swapped for SQLite)" -- \
        bash -c 'set -a; . deploy/patron.env.example; set +a
                 PATRON__DATABASE__URL=$1 exec "$2" --config "$3" migrate' _ "$db" "$BIN" "$tmp/patron.toml"

    # The daemon: /healthz through healthcheck.sh, then a prompt exit on SIGTERM.
    if $have_python; then port=$(free_port); else port=19464; fi
    PATRON__DATABASE__URL="$db" PATRON__DAEMON__HTTP_ADDR="0.0.0.0:$port" \
        "$BIN" --config "$tmp/patron.toml" daemon --worker-id validate-1 >"$tmp/daemon.log" 2>&1 &
    daemon_pid=$!
    healthy=false
    for _ in $(seq 150); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        if PATRON__DAEMON__HTTP_ADDR="0.0.0.0:$port" deploy/healthcheck.sh 2>/dev/null; then
            healthy=true
            break
        fi
        sleep 0.1
    done
    if $healthy; then
        ok "patron daemon (PATRON__DAEMON__HTTP_ADDR=0.0.0.0:$port) is healthy by deploy/healthcheck.sh"
        if command -v curl >/dev/null &&
            curl -fsS "http://127.0.0.1:$port/metrics" -o "$tmp/metrics" &&
            grep -q '^patron_' "$tmp/metrics"; then
            ok "/metrics serves patron_* series ($(grep -c '^patron_' "$tmp/metrics") samples)"
        fi
    elif ! kill -0 "$daemon_pid" 2>/dev/null; then
        sed 's/^/      /' "$tmp/daemon.log" >&2
        fail "patron daemon exited at start (log above)"
    else
        sed 's/^/      /' "$tmp/daemon.log" >&2
        fail "patron daemon did not answer /healthz with 200 on port $port within 15s (log above)"
    fi
    if kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid"
        start=$SECONDS
        while kill -0 "$daemon_pid" 2>/dev/null && ((SECONDS - start < 60)); do sleep 0.1; done
        if kill -0 "$daemon_pid" 2>/dev/null; then
            fail "patron daemon still running 60s after SIGTERM (TimeoutStopSec / terminationGracePeriodSeconds)"
            kill -KILL "$daemon_pid"
        else
            wait "$daemon_pid"
            status=$?
            if [[ $status == 0 ]]; then
                ok "patron daemon exits 0 on SIGTERM after $((SECONDS - start))s (idle; limit 60s)"
            else
                sed 's/^/      /' "$tmp/daemon.log" >&2
                fail "patron daemon exited $status on SIGTERM (log above)"
            fi
        fi
        daemon_pid=""
    fi
fi

# ---------------------------------------------------------------------------------------------
echo
if ((failures)); then
    echo "deploy/validate.sh: $failures check(s) FAILED" >&2
    exit 1
fi
echo "deploy/validate.sh: all checks passed (not checked here: docker build, compose up, a cluster, the systemd sandbox at run time)"
