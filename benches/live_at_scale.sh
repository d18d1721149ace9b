#!/usr/bin/env bash
# The live endpoints at scale (issue 15), each bench ROUNDS times (2), then the figures
# side by side (every round's value; the median when there are three or more):
#
#   followers.py  10,000 SSE followers of 100 running jobs (100 a job) over HTTP/2, and
#                 100 (one a job) for comparison; 4,000 over HTTP/1.1 (40 a job: the most
#                 under the service's 4,096-connection cap) and 100 over HTTP/1.1.
#                 A log line every 100 ms a job; 20 s measured.
#   polling.py    100 pollers on 20 jobs, 20 s, each looping on its job as fast as it is
#                 answered: with the caches (watch allowed), with the documented Role
#                 (watch refused: 403) and ANSWER_REUSE_MS=1000, and the same with
#                 ANSWER_REUSE_MS=0; then paced (each poller asks every job once a second,
#                 out of step: 2,000 polls/s) with the Role, reuse 1000 and 0.
#   and once (SLOW=0 skips it): one slow follower in each of 5 jobs stops reading for 60 s;
#                 it must be told it fell behind and be ended, the other 95 get every line.
#
#   cargo build --release
#   benches/live_at_scale.sh [BINARY]          # ~22 min: two rounds
#   ROUNDS=1 SLOW=0 benches/live_at_scale.sh   # one round, ~10 min
#
# The binary is copied first (other builds may replace target/release meanwhile). Each
# run waits up to QUIET_WAIT seconds (60) for an idle machine, and reports the CPU of
# everything else on it during the measurement (cpu_pct.other): on a shared 2-core
# machine another build skews every figure, the delays most. Output in OUT
# (/tmp/sparktest-k8s-live-at-scale.txt). Python 3 standard library only; loopback only;
# every run stops by itself (see --deadline in each script).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BINARY="${1:-target/release/sparktest-k8s}"
ROUNDS="${ROUNDS:-2}"
QUIET_WAIT="${QUIET_WAIT:-60}"
OUT="${OUT:-/tmp/sparktest-k8s-live-at-scale.txt}"
[[ -x "$BINARY" ]] || cargo build --release --quiet
private="$(mktemp -d)"
trap 'rm -rf "$private"' EXIT
cp "$BINARY" "$private/sparktest-k8s"
bin="$private/sparktest-k8s"

: >"$OUT"
for round in $(seq "$ROUNDS"); do
    echo "## round $round" | tee -a "$OUT"
    python3 benches/followers.py "$bin" 10000 100 --http2 --quiet-wait "$QUIET_WAIT" | tee -a "$OUT"
    python3 benches/followers.py "$bin" 4000 100 --quiet-wait "$QUIET_WAIT" | tee -a "$OUT"
    python3 benches/polling.py "$bin" 20 --quiet-wait "$QUIET_WAIT" | tee -a "$OUT"
    python3 benches/polling.py "$bin" 20 --paced --scenarios role,role_reuse0 --quiet-wait "$QUIET_WAIT" \
        | tee -a "$OUT"
done
# Once: slow followers are told and ended while the others get every line (fast lines,
# so that 1,024 events plus the kernel's socket buffers fill within a minute).
if [[ "${SLOW:-1}" == 1 ]]; then
    echo "## slow followers" | tee -a "$OUT"
    python3 benches/followers.py "$bin" 100 --jobs 5 --every 0.005 --slow 1 --slow-pause 60 \
        --quiet-wait "$QUIET_WAIT" | tee -a "$OUT"
fi

python3 - "$OUT" <<'PY'
import collections, statistics, sys
values = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    parts = line.rsplit(maxsplit=1)  # keys may hold a space: apiserver_requests[get jobs]
    if len(parts) != 2 or line.startswith("#"):
        continue
    key, value = parts
    if key not in values:
        order.append(key)
    values[key].append(value)
wanted = ("joined", "apiserver_log_follows", "followers_complete", "lines_missing", "lines_duplicated",
          "error_events", "delay_ms.p50", "delay_ms.p99", "rss_kib.idle", "rss_kib.window_max", "hwm_kib",
          "per_follower_kib", "cpu_pct.", "upstream_follows_open_after_close", "polls_per_s",
          "poll_ms.p99", "apiserver_rps", "apiserver_rps_per_job.mean", "apiserver_rps_per_job.max",
          "machine_busy_pct_before", "upstream_follows_closed_after_s", "first_line_ms.p99", "get jobs]",
          "slow_followers", "slow_told_behind", "slow_ended")
print("\n# every round's value, in order")
for key in order:
    if not any(key.endswith(w) or ("." + w) in key for w in wanted):
        continue
    vs = values[key]
    line = f"{key:58} {'  '.join(vs)}"
    try:
        nums = [float(v) for v in vs]
        if len(nums) >= 3:
            line += f"   (median {statistics.median(nums):g})"
    except ValueError:
        pass
    print(line)
PY
