#!/usr/bin/env python3
"""Archiving a 1 GiB log costs little memory: the fake apiserver (plain HTTP on
loopback, benches/fakeapi.py) serves a finished SparkTest run (the recorded completed
Job `test-job-123`, label app=sparktest, a Complete condition; its one pod) whose log is
GIB GiB of kubelet-timestamped lines (RFC 3339 with nanoseconds), generated as it is
read. The service runs with LOG_ARCHIVE=<tmpdir> and LOG_ARCHIVE_MAX_BYTES=2 GiB, so
that the whole log is archived. One GET of the run's status makes the service see it
finished and archive it; its VmRSS is sampled from /proc every 100 ms until the run's
record (`default/test-job-123/run.json`) exists.

    cargo build --release
    python3 benches/archive_memory.py target/release/sparktest-k8s [GIB=1]

The run is hidden from the fake apiserver (lists empty, GET 404) until the baseline is
read, so the start-up sweep does not archive it early; watches are refused (403, the
documented Role has no `watch`), so the caches are off and every read is direct.
Spill files go to <tmpdir>/spill (TMPDIR); everything is removed at the end. Knobs:
BENCH_PORT (38484, the service), MAX_SECONDS (900, then it gives up), READ_BACK (1).

Output, one `archive_memory METRIC VALUE` line each: rss_before_kib (VmRSS just before
the trigger), rss_peak_kib (largest sample), growth_kib (peak - before), hwm_before_kib
and hwm_after_kib (the kernel's VmHWM: a peak between samples shows there),
rss_after_kib (1 s after the record exists), seconds (trigger -> record),
upstream_mib_per_s, log_query (what the service asked the log with), log_bytes_sent,
log_bytes (plain, as the record says), truncated,
archived_gz_bytes (compressed, on disk), samples, svc_cpu_s, and
growth_target_16mib ok/MISSED. Then (READ_BACK=0 skips it) the run is read back once
through GET /api/k8s/jobs/test-job-123/logs, answered from the archive: read.ok,
read.seconds, read.answer_bytes, read.rss_before_kib, read.rss_peak_kib (sampled every
100 ms), read.hwm_after_kib, read.rss_after_kib."""
import asyncio
import json
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time

from fakeapi import FakeApiserver, recorded, rss_kib, start_service, wait_until_up

JOB = "test-job-123"
POD = "test-job-123-h6gvc"  # the pod of the recorded completed Job (19_pods_list_job_completed)


async def route(api, method, target, writer):
    path, _, query = target.partition("?")
    if path == "/version":
        return await api.json(writer, recorded("01_version.body.json"))
    if "watch=true" in query or "watch=1" in query:
        return await api.json(writer, recorded("50_forbidden_watch_jobs_sa.body.json"), 403)
    if path == "/apis/batch/v1/namespaces/default/jobs":
        listing = json.loads(recorded("15_job_list.body.json"))
        listing["items"] = [json.loads(recorded("09_job_get_completed.body.json"))] if api.visible else []
        return await api.json(writer, json.dumps(listing).encode())
    if path == f"/apis/batch/v1/namespaces/default/jobs/{JOB}" and api.visible:
        return await api.json(writer, recorded("09_job_get_completed.body.json"))
    if path.startswith("/apis/batch/v1/namespaces/default/jobs/"):
        return await api.json(writer, recorded("14_job_get_not_found.body.json"), 404)
    if path == "/api/v1/namespaces/default/pods":
        if api.visible:
            return await api.json(writer, recorded("19_pods_list_job_completed.body.json"))
        return await api.json(writer, recorded("24_pods_list_no_match.body.json"))
    if path == f"/api/v1/namespaces/default/pods/{POD}/log":
        api.log_query = query
        return await api.stream(writer, log_chunks(api))
    return await api.json(writer, recorded("26_pod_get_not_found.body.json"), 404)


def line_pool(count=6000, seed=42):
    """Varied pytest-like lines (~100 bytes each, ~600 KB in all, far beyond gzip's
    32 KiB window) so that the log compresses like a real one, not like one line
    repeated."""
    import random
    rng = random.Random(seed)
    words = ("api auth cache client config db delete event fetch job list log metric "
             "node parse pod queue retry run schema sched status store stream sync "
             "template timeout token upload user watch worker").split()
    outcomes = [b"PASSED"] * 18 + [b"FAILED", b"SKIPPED"]
    pool = []
    for i in range(count):
        a, b, c = rng.sample(words, 3)
        pool.append(b" tests/%s/test_%s.py::test_%s_%s[%d-%s] %s [%3d%%] (%d ms) %08x\n" % (
            a.encode(), b.encode(), c.encode(), rng.choice(words).encode(), rng.randrange(1000),
            rng.choice(words).encode(), rng.choice(outcomes), i * 100 // count,
            rng.randrange(1, 5000), rng.getrandbits(32)))
    return pool


async def log_chunks(api):
    """api.total bytes of `TIMESTAMP SP TEXT` lines, ~70 KB a chunk, as fast as they are read."""
    pool = line_pool()
    sent, n = 0, 0
    api.log_started = time.monotonic()
    while sent < api.total:
        second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()).encode()
        lines = []
        for _ in range(600):
            lines.append(b"%s.%09dZ%s" % (second, n % 1000000000, pool[n % len(pool)]))
            n += 1
        chunk = b"".join(lines)
        if sent + len(chunk) > api.total:
            chunk = chunk[: api.total - sent]
        sent += len(chunk)
        api.sent = sent
        yield chunk
    api.log_finished = time.monotonic()


class Sampler(threading.Thread):
    """VmRSS of `pid` every `period` seconds until stopped."""

    def __init__(self, pid, period=0.1):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            try:
                self.samples.append(rss_kib(self.pid))
            except OSError:
                return
            self.stopped.wait(self.period)


def proc_field(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def emit(metric, value):
    print(f"archive_memory {metric} {value}", flush=True)


async def main():
    binary = sys.argv[1]
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    port = int(os.environ.get("BENCH_PORT", "38484"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="sparktest-archive-memory-"))
    archive, spill = work / "archive", work / "spill"
    spill.mkdir()
    record = archive / "default" / JOB / "run.json"

    api = await FakeApiserver(route).start()
    api.visible, api.total, api.sent = False, int(gib * (1 << 30)), 0
    api.log_started = api.log_finished = None
    proc = start_service(binary, api.port, port, LOG_ARCHIVE=archive,
                         LOG_ARCHIVE_MAX_BYTES=2147483648, TIMEOUT_SECONDS=3600,
                         TMPDIR=spill)
    try:
        await wait_until_up(port)
        await asyncio.sleep(2.0)  # start-up sweep, health probe: the process at rest
        rss_before = rss_kib(proc.pid)
        hwm_before = proc_field(proc.pid, "VmHWM")
        cpu_before = cpu_seconds(proc.pid)
        sampler = Sampler(proc.pid)
        sampler.start()

        api.visible = True
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /api/k8s/jobs/{JOB}/status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        if b'"completed"' not in answer:
            raise RuntimeError(f"the status answer is not completed: {answer[:300]!r}")

        deadline = started + float(os.environ.get("MAX_SECONDS", "900"))
        while not record.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {record} after {deadline - started:.0f} s "
                                   f"({api.sent} log bytes sent)")
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited ({proc.returncode})")
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        sampler.stopped.set()
        sampler.join()
        hwm_after = proc_field(proc.pid, "VmHWM")
        cpu_used = cpu_seconds(proc.pid) - cpu_before
        await asyncio.sleep(1.0)
        rss_after = rss_kib(proc.pid)

        run = json.loads(record.read_text())
        container = run["pods"][0]["containers"][0]
        gz = sum(f.stat().st_size for f in (archive / "default" / JOB / "logs").rglob("*.log.gz"))
        peak = max(sampler.samples)
        emit("rss_before_kib", rss_before)
        emit("rss_peak_kib", peak)
        emit("growth_kib", peak - rss_before)
        emit("hwm_before_kib", hwm_before)
        emit("hwm_after_kib", hwm_after)
        emit("rss_after_kib", rss_after)
        emit("samples", len(sampler.samples))
        emit("seconds", f"{elapsed:.1f}")
        if api.log_started and api.log_finished:
            emit("upstream_mib_per_s", f"{api.sent / (api.log_finished - api.log_started) / (1 << 20):.1f}")
        emit("svc_cpu_s", f"{cpu_used:.1f}")
        emit("log_query", api.log_query.replace(" ", "%20"))
        emit("log_bytes_sent", api.sent)
        emit("log_bytes", container["log_bytes"])
        emit("truncated", str(container["truncated"]).lower())
        emit("archived_gz_bytes", gz)
        emit("growth_target_16mib", "ok" if peak - rss_before < 16 * 1024 else "MISSED")

        if os.environ.get("READ_BACK", "1") != "0":
            # Then the archived run read back once: GET .../logs (the last --max-log-lines
            # lines), answered from the archive.
            read_before = rss_kib(proc.pid)
            sampler = Sampler(proc.pid)
            sampler.start()
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
            writer.write(f"GET /api/k8s/jobs/{JOB}/logs HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
            answer = await reader.read()
            writer.close()
            read_seconds = time.monotonic() - started
            sampler.stopped.set()
            sampler.join()
            head, _, body = answer.partition(b"\r\n\r\n")
            ok = head.startswith(b"HTTP/1.1 200") and b'"source":"archive"' in body
            emit("read.ok", "ok" if ok else "FAIL(" + head.split(b"\r\n")[0].decode() + ")")
            emit("read.seconds", f"{read_seconds:.2f}")
            emit("read.answer_bytes", len(body))
            emit("read.rss_before_kib", read_before)
            emit("read.rss_peak_kib", max(sampler.samples + [rss_kib(proc.pid)]))
            emit("read.hwm_after_kib", proc_field(proc.pid, "VmHWM"))
            emit("read.rss_after_kib", rss_kib(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:
            proc.kill()
        api.server.close()
        # Connections still open when the loop ends are cancelled: not an error here.
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
