#!/usr/bin/env python3
"""Frontends poll; the apiserver must not feel it. POLLERS clients (100) poll the status
of JOBS running jobs (20) for DURATION seconds (20); the fake apiserver (fakeapi.Cluster:
the recorded running Job and its pod, under 20 names) counts what reaches it, by job.

    cargo build --release
    python3 benches/polling.py target/release/sparktest-k8s [DURATION=20]
    python3 benches/polling.py target/release/sparktest-k8s 20 --paced --scenarios cache,role

Scenarios (--scenarios, all by default), each a fresh service and fake apiserver:
  cache         the apiserver allows watch: status is served from the watch-backed
                caches (one list and one watch each for Jobs and pods, then nothing)
  role          the documented Role (no `watch`): every watch is refused with 403, the
                caches are off, and each status is a Job read plus a pod list; answers
                are shared by concurrent callers and reused for ANSWER_REUSE_MS=1000
                (the default)
  role_reuse0   the same with ANSWER_REUSE_MS=0: only callers whose requests overlap
                share one read (single flight), nothing is reused

Pollers: by default each loops on one job (poller i on job i mod JOBS, 5 per job),
GET /api/k8s/jobs/{job}/status back to back on a keep-alive connection, as fast as the
service answers. With --paced, each asks every job once a second (JOBS requests a
second per poller: what 100 open dashboards ask), each from its own moment of the second
and its own first job, as dashboards are not in step. The pollers run in --workers (2)
Python processes of their own, apart from the fake apiserver.

Output, "LABEL.METRIC VALUE" (LABEL polling_SCENARIO, polling_paced_SCENARIO):
  polls_per_s                  statuses served per second (all pollers)
  poll_ms.{p50,p99}            a poll's time, request to answer
  apiserver_rps                requests reaching the apiserver per second, in all
  apiserver_rps_per_job.{mean,max}   the same per job (target: <= 2)
  apiserver_requests[KIND]     by kind, over the whole run (start-up included)
  cpu_pct.{service,apiserver,pollers,other}   during the polling (100 = one core)

Bounded: the polling stops after DURATION; each scenario after --deadline seconds."""
import argparse
import asyncio
import json
import os
import random
import sys
import time

from fakeapi import (Cluster, FakeApiserver, cpu_seconds, free_port, machine_cpu_seconds, raise_nofile,
                     start_service, wait_for_quiet, wait_until_up)

SCENARIOS = {
    "cache": {"refuse_watch": False, "reuse_ms": 1000},
    "role": {"refuse_watch": True, "reuse_ms": 1000},
    "role_reuse0": {"refuse_watch": True, "reuse_ms": 0},
}


# ---------------------------------------------------------------- the pollers (workers)

async def poller(port, jobs, until, paced, latencies, counts, seed):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if paced:
        # Dashboards are not in step: each starts at its own moment of the second and
        # goes through the jobs from its own place.
        rng = random.Random(seed)
        k = rng.randrange(len(jobs))
        jobs = jobs[k:] + jobs[:k]
        await asyncio.sleep(rng.random())
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            for name in jobs:
                sent = time.perf_counter()
                writer.write(f"GET /api/k8s/jobs/{name}/status HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                counts["ok" if b'"running"' in body else "other"] += 1
                if counts["other"] == 1 and b'"running"' not in body:
                    counts["first_other"] = body[:300].decode(errors="replace")
            if paced:
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    finally:
        writer.close()


async def worker_main(cfg):
    latencies, counts = [], {"ok": 0, "other": 0}
    await asyncio.sleep(max(0.0, cfg["start"] - time.time()))
    until = time.monotonic() + cfg["duration"]
    started = time.monotonic()
    await asyncio.gather(*(poller(cfg["port"], jobs, until, cfg["paced"], latencies, counts, cfg["seed"] + i)
                           for i, jobs in enumerate(cfg["pollers"])))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0
    print(json.dumps({"counts": counts, "elapsed": time.monotonic() - started,
                      "p50": pick(0.5), "p99": pick(0.99), "n": len(latencies)}), flush=True)


# ---------------------------------------------------------------- the bench

async def measure(binary, args, scenario):
    setting = SCENARIOS[scenario]
    label = f"polling{'_paced' if args.paced else ''}_{scenario}"

    def say(metric, value):
        print(f"{label}.{metric} {value}", flush=True)

    if args.quiet_wait > 0:
        say("machine_busy_pct_before", f"{await wait_for_quiet(args.quiet_wait):.0f}")
    cluster = Cluster(args.jobs, refuse_watch=setting["refuse_watch"])
    api = await FakeApiserver(cluster.route).start()
    port = free_port()
    proc = start_service(binary, api.port, port, LOG_ARCHIVE="off", ANSWER_REUSE_MS=setting["reuse_ms"])
    try:
        await wait_until_up(port)
        await asyncio.sleep(1.5)  # the caches list, then watch (or are refused)
        if args.paced:
            pollers = [cluster.names for _ in range(args.pollers)]
        else:
            pollers = [[cluster.names[i % args.jobs]] for i in range(args.pollers)]
        workers = []
        start = time.time() + 1.0
        for w in range(args.workers):
            cfg = {"port": port, "pollers": pollers[w::args.workers], "duration": args.duration,
                   "paced": args.paced, "start": start, "seed": w * 1000}
            workers.append(await asyncio.create_subprocess_exec(
                sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg),
                stdout=asyncio.subprocess.PIPE))
        await asyncio.sleep(max(0.0, start - time.time()))
        before, per_job_before = sum(api.requests.values()), dict(cluster.per_job)
        pids = {"service": [proc.pid], "apiserver": ["self"], "pollers": [w.pid for w in workers]}
        cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        busy0, softirq0 = machine_cpu_seconds()
        t0 = time.monotonic()
        await asyncio.sleep(args.duration)
        elapsed = time.monotonic() - t0
        cpu1 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        busy1, softirq1 = machine_cpu_seconds()
        after, per_job_after = sum(api.requests.values()), dict(cluster.per_job)
        results = []
        for w in workers:
            out, _ = await asyncio.wait_for(w.communicate(), 30)
            results.append(json.loads(out))
        served = sum(r["counts"]["ok"] + r["counts"]["other"] for r in results)
        others = sum(r["counts"]["other"] for r in results)
        say("polls_per_s", f"{served / elapsed:.0f}")
        if others:
            say("polls_not_running", others)
            say("first_not_running", json.dumps(next(r["counts"]["first_other"] for r in results
                                                     if "first_other" in r["counts"])))
        # The workers' latencies: the slower worker's percentiles (no merge of raw data).
        say("poll_ms.p50", f"{max(r['p50'] for r in results):.2f}")
        say("poll_ms.p99", f"{max(r['p99'] for r in results):.2f}")
        say("apiserver_rps", f"{(after - before) / elapsed:.2f}")
        per_job = [(per_job_after.get(n, 0) - per_job_before.get(n, 0)) / elapsed for n in cluster.names]
        say("apiserver_rps_per_job.mean", f"{sum(per_job) / len(per_job):.2f}")
        say("apiserver_rps_per_job.max", f"{max(per_job):.2f}")
        for k, v in sorted(api.requests.items()):
            say(f"apiserver_requests[{k}]", v)
        for k in pids:
            say(f"cpu_pct.{k}", f"{100 * (cpu1[k] - cpu0[k]) / elapsed:.0f}")
        ours = sum(cpu1[k] - cpu0[k] for k in pids)
        softirq = softirq1 - softirq0
        say("cpu_pct.softirq", f"{100 * softirq / elapsed:.0f}")
        say("cpu_pct.other", f"{100 * max(0.0, busy1 - busy0 - ours - softirq) / elapsed:.0f}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:
            proc.kill()
        api.server.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("duration", nargs="?", type=float, default=20.0)
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--paced", action="store_true", help="each poller asks every job once a second")
    parser.add_argument("--workers", type=int, default=2, help="poller processes")
    parser.add_argument("--scenarios", default="cache,role,role_reuse0")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="wait at most this long for an idle machine before each scenario (0: don't)")
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="seconds a scenario may take at most, besides DURATION and --quiet-wait")
    args = parser.parse_args()
    raise_nofile()
    for scenario in args.scenarios.split(","):
        try:
            await asyncio.wait_for(measure(args.binary, args, scenario),
                                   args.deadline + args.duration + args.quiet_wait)
        except asyncio.TimeoutError:
            print(f"polling_{scenario}.deadline_exceeded {args.deadline:.0f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        asyncio.run(worker_main(json.loads(sys.argv[2])))
    else:
        asyncio.run(main())
