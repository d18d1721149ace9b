#!/usr/bin/env bash
# The logs of a finished, archived run against the anchor's logs endpoint: wrk on
# GET /api/k8s/jobs/test-job-123/logs at 16 and 128 connections, with the requests
# that reach the fake apiserver during each load counted (0 for an archived run).
#
# The anchor (kube-rs + axum, in the harness's anchor/) reads the Job's pods and the log
# from the apiserver on every request. This service answers a finished run it has
# archived from the archive, with no apiserver call. Both run against the harness's fake
# apiserver (nginx over TLS, the harness's upstream/) with the harness's kubeconfig,
# back to back, loaded by wrk with the harness's report.lua. Like benches/compare.sh
# this needs the developers' shared benchmark harness (where benches/compare.sh looks
# for it, or BENCH_HARNESS=DIR).
#
#   cargo build --release
#   cargo build --release --manifest-path "$(benches/compare.sh --harness-dir)/anchor/Cargo.toml" --target-dir /tmp/anchor-target
#   benches/archived_logs.sh [OURS [ANCHOR]]      # ~1 min
#
# OURS defaults to target/release/sparktest-k8s, ANCHOR to
# /tmp/anchor-target/release/kube-rs-axum-anchor. Needs nginx, wrk, curl, openssl, python3.
#
# How the archived run is made: the harness's Job is not a SparkTest run (no
# app=sparktest label), so the service never archives it from nginx. benches/
# archive_fixture.py runs the service once against a Python fake apiserver serving the
# harness's own Job (labelled app=sparktest), pod list and 81 KB log, lets it archive
# the run (its start-up sweep finds the run finished; one GET of its status asks as
# well), waits for run.json and checks that the archived log is the harness's log byte
# for byte. The measured service is then started against
# nginx with LOG_ARCHIVE pointing at that directory: the same Job exists in "the
# cluster", finished, and is answered from the archive.
#
# Counting apiserver requests: a private copy of the harness's upstream (its own state
# directory and ports, so a harness run elsewhere on the machine is not disturbed) with
# one addition, nginx's stub_status on a separate loopback port; its request counter is
# read before and after each load (minus the reads of stub_status itself). nginx counts
# every request whatever the configuration, so this costs the anchor nothing. For ours
# the service's own /metrics (sparktest_k8s_apiserver_requests_total) is read as well.
#
# Output: "LABEL METRIC VALUE" lines, LABEL anchor, archived (ours) or ratio:
#   fixture.*                                    (archived) the archive built, see above
#   logs_field_bytes, source                     the answer checked before the load
#   logs.cN.{rps,p50_ms,p90_ms,p99_ms,max_ms,requests,errors}
#   logs.cN.apiserver_requests                   requests nginx served during the load
#   logs.cN.apiserver_requests_metrics           (ours) delta of /metrics' counter
#   logs.cN.{svc,upstream,wrk,other}_cpu_pct     CPU during the load (100 = one core; other:
#                                                busy CPU none of the three explains: noise)
#   logs.cN.svc_cpu_us_per_req                   the service's CPU time per request
#   rss_after_kib
#   ratio logs.cN.{rps,p50_ms,p99_ms}            ours / anchor
#   ratio logs.cN.rps_target_5x                  ok when ours serves >= 5x the anchor's req/s
#   ratio logs.cN.archived_apiserver_requests_zero   ok when no request reached nginx
#
# Knobs: DURATION (10s), WARMUP (3s, at the largest CONNS; 0 to skip), CONNS ("16 128"),
# THREADS (2), BENCH_PORT (38680), UPSTREAM_PORT (36643; watch.py +1, stub_status +2),
# STATE (/tmp/sparktest-archived-logs, removed and rebuilt on every run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${BENCH_HARNESS:-$("$ROOT/benches/compare.sh" --harness-dir)}"
for f in upstream/upstream.sh upstream/nginx.conf.in lib/report.lua; do
    if [[ ! -e "$SHARED/$f" ]]; then
        echo "archived_logs.sh: the benchmark harness is missing ($SHARED/$f); put it where benches/compare.sh looks for it or set BENCH_HARNESS=DIR" >&2
        exit 2
    fi
done
SHARED="$(readlink -f "$SHARED")"
OURS="$(readlink -f "${1:-$ROOT/target/release/sparktest-k8s}")"
ANCHOR="$(readlink -f "${2:-/tmp/anchor-target/release/kube-rs-axum-anchor}")"
for b in "$OURS" "$ANCHOR"; do
    [[ -x "$b" ]] || { echo "archived_logs.sh: $b is not an executable (build it: see the header)" >&2; exit 2; }
done
for tool in wrk curl python3 nginx openssl; do
    command -v "$tool" >/dev/null || { echo "archived_logs.sh: $tool not found (apt-get install wrk nginx-light curl openssl)" >&2; exit 2; }
done

DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-3s}"
CONNS="${CONNS:-16 128}"
THREADS="${THREADS:-2}"
SVC_PORT="${BENCH_PORT:-38680}"
export UPSTREAM_PORT="${UPSTREAM_PORT:-36643}"
STUB_PORT=$((UPSTREAM_PORT + 2))
STATE="${STATE:-/tmp/sparktest-archived-logs}"
export BENCH_STATE="$STATE/upstream-state"
JOB=test-job-123
URL="http://127.0.0.1:$SVC_PORT/api/k8s/jobs/$JOB/logs"
CLK_TCK="$(getconf CLK_TCK)"
SVC_PID=""
UP="$STATE/upstream/upstream.sh"

note() { printf '[archived_logs] %s\n' "$*" >&2; }

for port in "$SVC_PORT" "$UPSTREAM_PORT" "$((UPSTREAM_PORT + 1))" "$STUB_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "archived_logs.sh: something already listens on 127.0.0.1:$port (set BENCH_PORT / UPSTREAM_PORT)" >&2
        exit 1
    fi
done

alive() {  # running and not a zombie
    local s
    s="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    s="${s##*) }"
    [[ "${s:0:1}" != Z ]]
}
stop_service() {
    [[ -n "$SVC_PID" ]] || return 0
    kill -TERM "$SVC_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do alive "$SVC_PID" || break; sleep 0.05; done
    alive "$SVC_PID" && kill -KILL "$SVC_PID" 2>/dev/null || true
    wait "$SVC_PID" 2>/dev/null || true
    SVC_PID=""
}
cleanup() {
    stop_service
    [[ -x "$UP" ]] && "$UP" stop 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the fake apiserver: the harness's upstream, plus stub_status -------------------------
if [[ -e "$STATE" && ! -e "$STATE/.archived_logs" ]]; then
    echo "archived_logs.sh: $STATE exists and is not this bench's state directory (set STATE)" >&2
    exit 1
fi
rm -rf "$STATE"
mkdir -p "$STATE"
touch "$STATE/.archived_logs"
cp -r "$SHARED/upstream" "$STATE/upstream"
chmod -R u+w "$STATE/upstream"
python3 - "$STATE/upstream/nginx.conf.in" "$STUB_PORT" <<'PY'
import sys
path, port = sys.argv[1], sys.argv[2]
conf = open(path).read().rstrip()
assert conf.endswith("}"), "the harness's nginx.conf.in no longer ends with the http block"
stub = f"""
    # Added by benches/archived_logs.sh: the request counter, on its own port.
    server {{
        listen 127.0.0.1:{port};
        location = /stub_status {{ stub_status; }}
    }}
}}
"""
open(path, "w").write(conf[:-1] + stub)
PY
"$UP" start >&2
eval "$("$UP" env)"   # KUBECONFIG, UPSTREAM_URL, UPSTREAM_TOKEN, UPSTREAM_PID
UPSTREAM_PIDS="$UPSTREAM_PID $(ps --ppid "$UPSTREAM_PID" -o pid= | tr '\n' ' ')"

nginx_requests() {  # requests nginx has served (this read of stub_status included)
    curl -s "http://127.0.0.1:$STUB_PORT/stub_status" | awk 'NR == 3 { print $3 }'
}

# --- the archive ---------------------------------------------------------------------
note "building the archive of $JOB with $OURS"
(cd "$ROOT/benches" && python3 archive_fixture.py "$OURS" "$BENCH_STATE/www" "$STATE/archive") |
    sed 's/^archive_fixture /archived fixture./'

# --- helpers -------------------------------------------------------------------------
cpu_ticks() {
    local total=0 pid s
    local -a f
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        s="$(< "/proc/$pid/stat")"; s="${s##*) }"
        read -ra f <<< "$s"
        total=$(( total + f[11] + f[12] ))
    done
    echo "$total"
}
sys_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
us_to_ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }
metrics_apiserver() {  # ours: sum of sparktest_k8s_apiserver_requests_total
    curl -s "http://127.0.0.1:$SVC_PORT/metrics" |
        awk '/^sparktest_k8s_apiserver_requests_total[{ ]/ { s += $NF } END { printf "%d\n", s }'
}
run_wrk() {  # conns duration -> raw output
    local c="$1" t="$THREADS"
    (( c < t )) && t="$c"
    wrk -t"$t" -c"$c" -d"$2" --timeout 10s -s "$SHARED/lib/report.lua" "$URL"
}

RESULTS="$STATE/results.txt"
: > "$RESULTS"
measure() {  # label binary [env...]
    local label="$1" bin="$2"
    shift 2
    emit() { printf '%s %s %s\n' "$label" "$1" "$2" | tee -a "$RESULTS"; }
    note "$label: $bin"
    env "$@" KUBECONFIG="$KUBECONFIG" PORT="$SVC_PORT" "$bin" >> "$STATE/$label.log" 2>&1 < /dev/null &
    SVC_PID=$!
    local i body
    for i in $(seq 1 1500); do
        body="$(curl -s --max-time 1 "http://127.0.0.1:$SVC_PORT/api/k8s/health" || true)"
        [[ "$body" =~ \"kubernetes_connected\":\ *true ]] && break
        [[ -d /proc/$SVC_PID ]] || { echo "archived_logs.sh: $label exited; log: $STATE/$label.log" >&2; tail -5 "$STATE/$label.log" >&2; exit 1; }
        sleep 0.02
    done
    # Ours loads the archive's index just after start: wait until the run is answered
    # from the archive (the anchor has no "source").
    local answer="$STATE/$label.answer.json" source=""
    for i in $(seq 1 250); do
        curl -s -o "$answer" "$URL"
        source="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("source", "-"))' "$answer" 2>/dev/null || echo invalid)"
        [[ "$label" == anchor || "$source" == archive ]] && break
        sleep 0.02
    done
    emit source "$source"
    emit logs_field_bytes "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["logs"]))' "$answer" 2>/dev/null || echo 0)"
    if [[ "$label" != anchor && "$source" != archive ]]; then
        echo "archived_logs.sh: $label does not answer $JOB from the archive; log: $STATE/$label.log" >&2
        exit 1
    fi
    if [[ "$WARMUP" != 0 ]]; then
        local maxc=0 c
        for c in $CONNS; do (( c > maxc )) && maxc=$c; done
        note "$label: warm-up $WARMUP at $maxc connections"
        run_wrk "$maxc" "$WARMUP" >> "$STATE/$label.wrk.txt" 2>&1 || true
    fi
    local c raw n0 n1 m0 m1 up0 up1 s0 s1 y0 y1 t0 t1 wu ws
    TIMEFORMAT='%U %S'
    for c in $CONNS; do
        note "$label: $c connections for $DURATION"
        raw="$STATE/$label.wrk-c$c.txt"
        n0=$(nginx_requests); m0=0; [[ $label != anchor ]] && m0=$(metrics_apiserver)
        up0=$(cpu_ticks $UPSTREAM_PIDS); s0=$(cpu_ticks "$SVC_PID"); y0=$(sys_busy_ticks)
        t0=$(date +%s.%N)
        { time run_wrk "$c" "$DURATION" > "$raw" 2>&1; } 2> "$raw.time"
        t1=$(date +%s.%N)
        y1=$(sys_busy_ticks); s1=$(cpu_ticks "$SVC_PID"); up1=$(cpu_ticks $UPSTREAM_PIDS)
        n1=$(nginx_requests); m1=0; [[ $label != anchor ]] && m1=$(metrics_apiserver)
        get() { awk -v k="$1" '$1 == k {print $2}' "$raw"; }
        if [[ -z "$(get requests)" ]]; then emit "logs.c$c.error" wrk_failed; tail -5 "$raw" >&2; continue; fi
        emit "logs.c$c.rps" "$(get rps)"
        emit "logs.c$c.p50_ms" "$(us_to_ms "$(get p50_us)")"
        emit "logs.c$c.p90_ms" "$(us_to_ms "$(get p90_us)")"
        emit "logs.c$c.p99_ms" "$(us_to_ms "$(get p99_us)")"
        emit "logs.c$c.max_ms" "$(us_to_ms "$(get max_us)")"
        emit "logs.c$c.requests" "$(get requests)"
        emit "logs.c$c.errors" "$(( $(get err_connect) + $(get err_read) + $(get err_write) + $(get err_status) + $(get err_timeout) ))"
        emit "logs.c$c.apiserver_requests" "$(( n1 - n0 - 1 ))"   # the second read counts itself
        [[ $label != anchor ]] && emit "logs.c$c.apiserver_requests_metrics" "$(( m1 - m0 ))"
        read -r wu ws < "$raw.time"
        awk -v t0="$t0" -v t1="$t1" -v u0="$up0" -v u1="$up1" -v s0="$s0" -v s1="$s1" -v hz="$CLK_TCK" \
            -v wu="$wu" -v ws="$ws" -v y0="$y0" -v y1="$y1" -v l="$label" -v p="logs.c$c" \
            -v req="$(get requests)" 'BEGIN {
                el = t1 - t0
                svc = 100 * (s1 - s0) / hz / el; up = 100 * (u1 - u0) / hz / el; wrk = 100 * (wu + ws) / el
                printf "%s %s.svc_cpu_pct %.1f\n", l, p, svc
                printf "%s %s.svc_cpu_us_per_req %.1f\n", l, p, 1e6 * (s1 - s0) / hz / (req > 0 ? req : 1)
                printf "%s %s.upstream_cpu_pct %.1f\n", l, p, up
                printf "%s %s.wrk_cpu_pct %.1f\n", l, p, wrk
                printf "%s %s.other_cpu_pct %.1f\n", l, p, 100 * (y1 - y0) / hz / el - svc - up - wrk
            }' | tee -a "$RESULTS"
    done
    emit rss_after_kib "$(awk '$1 == "VmRSS:" {print $2}' "/proc/$SVC_PID/status")"
    stop_service
}

measure anchor "$ANCHOR"
measure archived "$OURS" LOG_ARCHIVE="$STATE/archive" TMPDIR="$STATE/spill"

python3 - "$RESULTS" "$CONNS" <<'PY'
import sys
values = {}
for line in open(sys.argv[1]):
    label, metric, value = line.split()
    values[(label, metric)] = value
for c in sys.argv[2].split():
    for metric in ("rps", "p50_ms", "p99_ms"):
        a, o = values.get(("anchor", f"logs.c{c}.{metric}")), values.get(("archived", f"logs.c{c}.{metric}"))
        if a and o and float(a) > 0:
            print(f"ratio logs.c{c}.{metric} {float(o) / float(a):.2f}")
    a = values.get(("archived", f"logs.c{c}.rps"))
    b = values.get(("anchor", f"logs.c{c}.rps"))
    if a and b:
        print(f"ratio logs.c{c}.rps_target_5x {'ok' if float(a) >= 5 * float(b) else 'MISSED'}")
    z = values.get(("archived", f"logs.c{c}.apiserver_requests"))
    print(f"ratio logs.c{c}.archived_apiserver_requests_zero {'ok' if z == '0' else 'MISSED'}")
PY
note "raw wrk output and service logs: $STATE"
