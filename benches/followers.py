#!/usr/bin/env python3
"""Many live log followers of many running jobs: what one shared upstream per job costs.

The fake apiserver (fakeapi.Cluster) serves JOBS running Jobs with one pod each; each
pod's log is endless (follow=true): a line every --every seconds (0.1), stamped by the
"kubelet" (RFC 3339, nanoseconds) and carrying its number and its send time
(`#SEQ @SENT_NS ...`), the jobs' lines spread evenly over the period. FOLLOWERS
Server-Sent-Events clients, spread evenly over the jobs, open
GET /api/k8s/jobs/{job}/logs/stream (the default tail, 100) in rounds of one follower
per job, each waiting for its first line. After a settle, a window of --window seconds
(20) is measured; then the clients leave and the upstream follows must all close.

The clients are --workers (2) Python asyncio processes on raw sockets: HTTP/1.1 (one
connection per follower, as EventSource or a proxy opens them) or, with --http2,
HTTP/2 over cleartext (prior knowledge; --streams-per-connection 100 followers share a
connection, as behind an HTTP/2 ingress). Every follower checks every log line it gets
by number: the window's lines (after the last line each job had sent when the window
opened, up to the last one it had sent when the window closed) must each arrive once, in
order. Every line of the window gives a delivery delay: its send time at the fake
apiserver to its receipt by the client (both read time.time_ns() on this machine; it
includes the client's own scheduling, and on a saturated machine the clients' own
lag). HTTP/2 flow control is the protocol's default (65,535-byte stream windows,
topped up as read), so a client that reads slowly holds the service back rather than
making it buffer.

With --slow K, K followers of each job (HTTP/1.1) stop reading after their first line
for --slow-pause seconds with a 4 KiB receive buffer: the service must tell each one it
fell behind (an `error` event) and end it, while the others still get every line
(window.slow_*; theirs are not in the completeness or delay figures). Kernel socket
buffers (several MB with Linux autotuning) absorb a lot before the service's 1,024
events count, so a quick check needs fast lines:

    python3 benches/followers.py target/release/sparktest-k8s 100 --jobs 5 --every 0.005 --slow 1 --slow-pause 60

With --burst N, each log also writes N lines at once every --burst-every seconds (a test
dumping its output): the followers must get them all, none told it fell behind, e.g.

    python3 benches/followers.py target/release/sparktest-k8s 200 --jobs 10 --burst 1000 --burst-every 10

    cargo build --release
    python3 benches/followers.py target/release/sparktest-k8s 10000 --http2
    python3 benches/followers.py target/release/sparktest-k8s 4000 100     # HTTP/1.1
    benches/live_at_scale.sh    # the issue-15 set, twice: see there

FOLLOWERS may be several numbers: each is a run of its own (fresh service and fake
apiserver), one after the other. Why HTTP/2 for 10,000: the service serves at most 4,096
connections at once (src/server.rs, ServerLimits::default, not configurable); the
4,097th HTTP/1.1 follower waits in the listen backlog and gets nothing, as

    python3 benches/followers.py target/release/sparktest-k8s 4200 --join-timeout 10 --window 5

shows (`joined 4096`).

Output, "LABEL.METRIC VALUE" (LABEL: followers_h1_N or followers_h2_N):
  joined, join_seconds, first_line_ms.{p50,p99}   the ramp
  apiserver_log_follows            follow=true log requests the fake apiserver got (want: JOBS)
  apiserver_log_follows_max_per_job
  apiserver_requests[KIND]         every request by kind, over the run
  window.followers_complete        followers that got every line of the window once, in order
  window.lines_expected, window.lines_received, window.lines_missing, window.lines_duplicated
  window.error_events, window.streams_ended   (an `error` event: a follower ended as too slow)
  window.slow_{followers,told_behind,ended,lines_received}   with --slow
  delay_ms.{p50,p90,p99,p999,max}, delay_samples
  rss_kib.{idle,joined,window_max,window_end}, hwm_kib   (VmRSS, VmHWM of the service)
  per_follower_kib                 (VmRSS at the window's end - idle) / followers; the cost
                                   of the 100 upstreams is in it: compare with a 100 run
  cpu_pct.{service,apiserver,clients}   during the window (100 = one core); clients summed
  cpu_pct.{softirq,other}          the machine's softirq (loopback TCP, charged to no process)
                                   and any other busy CPU (another build: noise; --quiet-wait
                                   waits for an idle machine before each run)
  upstream_follows_open, upstream_follows_open_after_close (want: 0, waited for up to
  --linger + 10 s), upstream_follows_closed_after_s, rss_kib.after_close

Bounded: every step has a timeout, and each run stops after --deadline seconds (300,
plus --quiet-wait) whatever happens; the service is started to die with the bench.
Needs no more than the hard limit of open files (raised to it; 10,000 followers need
~10,100 in the service). Python standard library only."""
import argparse
import asyncio
import collections
import json
import os
import re
import socket
import struct
import sys
import time

from fakeapi import (Cluster, FakeApiserver, cpu_seconds, free_port, machine_cpu_seconds, memory_kib,
                     raise_nofile, start_service, wait_for_quiet, wait_until_up)

LINE = re.compile(rb'"line":"#(\d+) @(\d+)')
BUCKET_NS = 100_000  # delays are counted in 0.1 ms buckets
NO_END = 1 << 62


# ---------------------------------------------------------------- the clients (workers)

class Follower:
    """One SSE client's view: fed the bytes of its response body, it counts the log
    lines by number (and when measuring, their delays)."""

    __slots__ = ("job", "slow", "buf", "first", "last", "lines", "anomalies", "context", "previous",
                 "s0", "s1", "seen", "delays", "errors", "ended", "status", "ready", "opened",
                 "first_line_ns")

    def __init__(self, job, delays, ready, slow=False):
        self.job, self.delays, self.ready, self.slow = job, delays, ready, slow
        self.buf = b""
        self.first = None
        self.last = 0
        self.lines = 0
        self.anomalies = 0
        self.context = None     # the bytes around the first gap or repeat, to see why
        self.previous = b""
        self.s0 = None          # the window: lines numbered s0+1 .. s1
        self.s1 = NO_END
        self.seen = None        # bytearray: how often each line of the window arrived
        self.errors = []
        self.ended = False
        self.status = None
        self.opened = time.monotonic_ns()
        self.first_line_ns = None

    def mark(self, s0, expected):
        self.s0 = s0
        self.seen = bytearray(expected)
        # Lines sent after s0 was read and received before this mark: each once, in
        # order, if every line so far came so (else they count as missing).
        if self.last > s0 and self.anomalies == 0:
            self.record_run(s0 + 1, self.last)

    def feed(self, data):
        buf = self.buf + data if self.buf else data
        end = buf.rfind(b"\n\n")
        if end < 0:
            self.buf = buf
            return
        done, self.buf = buf[:end + 2], buf[end + 2:]
        pairs = LINE.findall(done)
        if pairs:
            now = time.time_ns()
            if self.first_line_ns is None:
                self.first_line_ns = time.monotonic_ns()
                if not self.ready.done():
                    self.ready.set_result(None)
            seqs = [int(seq) for seq, _ in pairs]
            if self.first is None:
                self.first = seqs[0]
                self.last = seqs[0] - 1
            after = self.last + 1
            if seqs == list(range(after, after + len(seqs))):
                self.record_run(after, seqs[-1])
                self.last = seqs[-1]
            else:
                # Out of the ordinary (a gap, a line twice): line by line.
                if self.context is None:
                    self.context = (self.previous[-600:] + b" || " + done[:1200]).decode(errors="replace")
                for seq in seqs:
                    if seq != self.last + 1:
                        self.anomalies += 1
                    self.record_run(seq, seq, add=True)
                    self.last = max(self.last, seq)
            self.lines += len(seqs)
            self.previous = done
            if self.s0 is not None:
                delays, s0, s1 = self.delays, self.s0, self.s1
                for seq, (_, sent) in zip(seqs, pairs):
                    if s0 < seq <= s1:
                        delays[(now - int(sent)) // BUCKET_NS] += 1
        if b"event:error" in done or b"event:status" in done:
            for event in done.split(b"\n\n"):
                event = event[max(0, event.find(b"event:")):]  # after a chunk-size line
                if event.startswith(b"event:error") or event.startswith(b"event:status"):
                    self.errors.append(event[:300].decode(errors="replace"))

    def record_run(self, first, last, add=False):
        seen = self.seen
        if seen is None:
            return
        lo = max(first, self.s0 + 1)
        hi = min(last, self.s1)
        if lo > hi:
            return
        a, b = lo - self.s0 - 1, hi - self.s0
        if b > len(seen):
            seen.extend(bytes(b - len(seen) + 1024))
        if add:
            for k in range(a, b):
                seen[k] = min(seen[k] + 1, 255)
        else:
            seen[a:b] = b"\x01" * (b - a)

    def close(self, why=None):
        self.ended = True
        if why:
            self.errors.append(why)
        if not self.ready.done():
            self.ready.set_result(None)


class H1(asyncio.Protocol):
    """One follower over HTTP/1.1: GET, then the (chunked) SSE body as it comes. The
    chunk-size lines between events are ignored by the follower's parsing."""

    def __init__(self, follower, path, pause=0.0):
        self.follower, self.path, self.pause = follower, path, pause
        self.head = b""

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"GET %s HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n"
                        % self.path.encode())

    def data_received(self, data):
        if self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.follower.status = int(self.head[9:12])
            data, self.head = self.head[end + 4:], None
            if self.follower.status != 200:
                self.follower.close(f"HTTP {self.follower.status}: {data[:200]!r}")
                self.transport.close()
                return
        self.follower.feed(data)
        if self.pause and self.follower.first_line_ns is not None:
            # A slow client: stops reading for a while after its first line.
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(self.pause, self.transport.resume_reading)
            self.pause = 0.0

    def connection_lost(self, exc):
        if not self.follower.ended:
            self.follower.close("connection closed by the service")


def _hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _hpack_literal(index, value):
    """A header field literal without indexing, its name from the static table."""
    value = value.encode()
    return _hpack_int(index, 4, 0x00) + _hpack_int(len(value), 7, 0x00) + value


def _frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


class H2(asyncio.Protocol):
    """Followers over one HTTP/2 connection (cleartext, prior knowledge). Flow control as
    common clients do it: each stream's window is `window` (65,535, the protocol's
    default, unless set), the connection's 16 MiB, and each is topped up with
    WINDOW_UPDATE once half of it was read; so a client that reads slowly holds back
    the service instead of making it buffer. SETTINGS and PING are acknowledged."""

    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    CONNECTION_WINDOW = 16 << 20

    def __init__(self, authority, window):
        self.authority = authority
        self.window = window
        self.streams = {}
        self.unacked = {}  # bytes read on each stream since its last WINDOW_UPDATE
        self.next_id = 1
        self.buf = b""
        self.consumed = 0
        self.transport = None
        self.goaway = None

    def connection_made(self, transport):
        self.transport = transport
        settings = struct.pack(">HIHI", 2, 0, 4, self.window)  # no push; the stream window
        transport.write(self.PREFACE + _frame(4, 0, 0, settings)
                        + _frame(8, 0, 0, struct.pack(">I", self.CONNECTION_WINDOW - 65535)))

    def open(self, follower, path):
        sid, self.next_id = self.next_id, self.next_id + 2
        self.streams[sid] = follower
        self.unacked[sid] = 0
        block = (b"\x82\x86" + _hpack_literal(4, path) + _hpack_literal(1, self.authority)
                 + _hpack_literal(19, "text/event-stream"))
        self.transport.write(_frame(1, 0x5, sid, block))

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        i, size = 0, len(buf)
        streams, unacked, half = self.streams, self.unacked, self.window // 2
        updates = []
        while size - i >= 9:
            head = struct.unpack_from(">IBI", buf, i)
            length, kind, flags, sid = head[0] >> 8, head[0] & 0xFF, head[1], head[2] & 0x7FFFFFFF
            if size - i - 9 < length:
                break
            start, i = i + 9, i + 9 + length
            if kind == 0:  # DATA
                self.consumed += length
                follower = streams.get(sid)
                if follower is not None:
                    payload = buf[start:i]
                    if flags & 0x8:
                        payload = payload[1:len(payload) - payload[0]]
                    follower.feed(payload)
                    read = unacked[sid] + length
                    if read >= half and not flags & 0x1:
                        updates.append(_frame(8, 0, sid, struct.pack(">I", read)))
                        read = 0
                    unacked[sid] = read
                    if flags & 0x1:
                        follower.close("stream ended by the service")
            elif kind == 1:  # HEADERS: :status 200 is the static table's index 8 (0x88)
                follower = streams.get(sid)
                block = buf[start:i]
                if flags & 0x8:
                    block = block[1:len(block) - block[0]]
                if flags & 0x20:
                    block = block[5:]
                if follower is not None:
                    follower.status = 200 if block[:1] == b"\x88" else 0
                    if follower.status != 200:
                        follower.errors.append(f"HTTP status other than 200 (HPACK {block[:16].hex()})")
                    if flags & 0x1:
                        follower.close("stream ended by the service")
            elif kind == 3:  # RST_STREAM
                follower = streams.pop(sid, None)
                if follower is not None:
                    follower.close(f"RST_STREAM {struct.unpack_from('>I', buf, start)[0]}")
            elif kind == 4 and not flags & 0x1:  # SETTINGS
                updates.append(_frame(4, 0x1, 0))
            elif kind == 6 and not flags & 0x1:  # PING
                updates.append(_frame(6, 0x1, 0, buf[start:i]))
            elif kind == 7:  # GOAWAY
                self.goaway = buf[start:i][:64]
        self.buf = buf[i:]
        if self.consumed >= self.CONNECTION_WINDOW // 2:
            updates.append(_frame(8, 0, 0, struct.pack(">I", self.consumed)))
            self.consumed = 0
        if updates:
            self.transport.write(b"".join(updates))

    def connection_lost(self, exc):
        for follower in self.streams.values():
            if not follower.ended:
                follower.close(f"connection closed by the service ({self.goaway!r})")


class Worker:
    """A client process: opens followers as told (stdin, JSON lines) and reports."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.followers = []
        self.delays = collections.Counter()
        self.conns = []
        self.current = None
        self.sockets = []

    async def open_h1(self, follower, path):
        loop = asyncio.get_running_loop()
        pause, sock = 0.0, None
        if follower.slow:
            # A small receive buffer, so that the service, not the kernel, holds what
            # this follower does not read.
            pause = self.cfg["slow_pause"]
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", self.cfg["port"]))
            transport, _ = await loop.create_connection(lambda: H1(follower, path, pause), sock=sock)
        else:
            transport, _ = await loop.create_connection(lambda: H1(follower, path), "127.0.0.1",
                                                        self.cfg["port"])
        self.sockets.append(transport)

    async def open_h2(self, follower, path):
        if self.current is None or len(self.current.streams) >= self.cfg["streams_per_connection"]:
            loop = asyncio.get_running_loop()
            _, self.current = await loop.create_connection(
                lambda: H2(f"127.0.0.1:{self.cfg['port']}", self.cfg["h2_window"]), "127.0.0.1", self.cfg["port"])
            self.conns.append(self.current)
        self.current.open(follower, path)

    async def join(self, jobs, slow, timeout):
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        batch = []
        query = f"?tail={self.cfg['tail']}" if self.cfg["tail"] is not None else ""
        opening = asyncio.Semaphore(200)

        async def open_one(follower, path):
            async with opening:
                try:
                    if self.cfg["http2"]:
                        await self.open_h2(follower, path)
                    else:
                        await self.open_h1(follower, path)
                except OSError as e:
                    follower.close(f"connect: {e}")

        opens = []
        for job, is_slow in zip(jobs, slow):
            # A slow follower's delays are its own doing: not counted.
            delays = collections.Counter() if is_slow else self.delays
            follower = Follower(job, delays, loop.create_future(), is_slow)
            self.followers.append(follower)
            batch.append(follower)
            path = f"/api/k8s/jobs/{job}/logs/stream{query}"
            if self.cfg["http2"]:
                await open_one(follower, path)  # in order: streams fill connections
            else:
                opens.append(open_one(follower, path))
        await asyncio.gather(*opens)
        waiting = [f.ready for f in batch]
        await asyncio.wait(waiting, timeout=max(0.1, timeout - (time.monotonic() - started)))
        got = [f for f in batch if f.first_line_ns is not None]
        firsts = sorted((f.first_line_ns - f.opened) / 1e6 for f in got)
        return {"asked": len(batch), "joined": len(got), "first_line_ms": firsts,
                "errors": [e for f in batch for e in f.errors][:5]}

    def mark(self, s0, expected):
        for f in self.followers:
            f.mark(s0[f.job], expected)
        return {"marked": len(self.followers)}

    async def end(self, s0, s1, timeout):
        for f in self.followers:
            f.s1 = s1[f.job]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(f.ended if f.slow else (f.last >= f.s1 or f.ended) for f in self.followers):
                break
            await asyncio.sleep(0.1)
        out = collections.Counter()
        incomplete = []
        for f in self.followers:
            if f.slow:
                out["slow_followers"] += 1
                out["slow_told_behind"] += any("fell behind" in e for e in f.errors)
                out["slow_ended"] += f.ended
                out["slow_lines_received"] += f.lines
                if not any(i.get("slow") for i in incomplete):
                    incomplete.append({"slow": True, "job": f.job, "lines": f.lines, "last": f.last,
                                       "sent_at_end": s1[f.job], "errors": f.errors[:2]})
                continue
            want = s1[f.job] - s0[f.job]
            seen = f.seen[:want] if f.seen is not None else bytes(want)
            missing = seen.count(0)
            once = seen.count(1)
            out["followers"] += 1
            out["lines_expected"] += want
            out["lines_received"] += want - missing
            out["lines_missing"] += missing
            out["lines_duplicated"] += want - missing - once
            out["anomalies"] += f.anomalies
            out["error_events"] += sum(1 for e in f.errors if e.startswith("event:error"))
            out["streams_ended"] += f.ended
            if missing == 0 and once == want and f.seen is not None:
                out["followers_complete"] += 1
            else:
                out["incomplete_by_job." + f.job] += 1
                if len(incomplete) < 5 and all(i["job"] != f.job for i in incomplete):
                    lost = [s0[f.job] + 1 + k for k, c in enumerate(seen) if c != 1][:5]
                    incomplete.append({"job": f.job, "first": f.first, "last": f.last, "s0": s0[f.job],
                                       "s1": s1[f.job], "missing": missing, "lines_not_once": lost,
                                       "errors": f.errors[:2], "context": f.context})
        return {"counts": out, "incomplete": incomplete,
                "delays": {str(k): v for k, v in self.delays.items()}}

    def close(self):
        for t in self.sockets:
            t.close()
        for c in self.conns:
            if c.transport is not None:
                c.transport.close()
        return {"closed": len(self.sockets) + len(self.conns)}


async def worker_main(cfg):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    worker = Worker(cfg)

    def reply(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply({"pid": os.getpid()})
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "join":
            reply(await worker.join(cmd["jobs"], cmd["slow"], cmd["timeout"]))
        elif cmd["cmd"] == "mark":
            reply(worker.mark(cmd["s0"], cmd["expected"]))
        elif cmd["cmd"] == "end":
            reply(await worker.end(cmd["s0"], cmd["s1"], cmd["timeout"]))
        elif cmd["cmd"] == "close":
            reply(worker.close())
        elif cmd["cmd"] == "quit":
            break


# ---------------------------------------------------------------- the bench (main process)

class WorkerHandle:
    def __init__(self, proc):
        self.proc = proc

    @classmethod
    async def start(cls, cfg):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 26)
        handle = cls(proc)
        handle.pid = (await handle.read(30))["pid"]
        return handle

    async def read(self, timeout):
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("a client worker died")
        return json.loads(line)

    async def ask(self, cmd, timeout):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read(timeout)


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def histogram_percentiles(hist, qs):
    total = sum(hist.values())
    out, seen, keys = {}, 0, sorted(hist)
    targets = sorted((q, name) for name, q in qs.items())
    t = 0
    for k in keys:
        seen += hist[k]
        while t < len(targets) and seen >= targets[t][0] * total:
            out[targets[t][1]] = (k + 0.5) * BUCKET_NS / 1e6
            t += 1
    if keys:
        out["max"] = (keys[-1] + 1) * BUCKET_NS / 1e6
    return out, total


async def run(binary, total, args):
    label = f"followers_h{2 if args.http2 else 1}_{total}"

    def say(metric, value):
        print(f"{label}.{metric} {value}", flush=True)

    if args.quiet_wait > 0:
        say("machine_busy_pct_before", f"{await wait_for_quiet(args.quiet_wait):.0f}")
    jobs_n = min(args.jobs, total)
    cluster = Cluster(jobs_n, every=args.every, burst=args.burst, burst_every=args.burst_every)
    api = await FakeApiserver(cluster.route).start()
    cluster.start_logs()
    port = free_port()
    proc = start_service(binary, api.port, port, LOG_ARCHIVE="off", MAX_STREAMS=max(20000, total + 100))
    workers = []
    try:
        await wait_until_up(port)
        await asyncio.sleep(1.0)
        idle = memory_kib(proc.pid)["VmRSS"]
        say("rss_kib.idle", idle)
        n_workers = max(1, min(args.workers, total))
        cfg = {"port": port, "http2": args.http2, "tail": args.tail, "slow_pause": args.slow_pause,
               "streams_per_connection": args.streams_per_connection, "h2_window": args.h2_window}
        workers = [await WorkerHandle.start(cfg) for _ in range(n_workers)]

        # The ramp: rounds of one follower per job, --batch followers at a time, split
        # between the workers; each waits for its first line.
        order = [cluster.names[i % jobs_n] for i in range(total)]
        # The last --slow rounds are slow followers (HTTP/1.1 only).
        slow = [not args.http2 and i >= total - args.slow * jobs_n for i in range(total)]
        start = time.monotonic()
        joined, firsts, errors = 0, [], []
        for b in range(0, total, args.batch):
            batch, batch_slow = order[b:b + args.batch], slow[b:b + args.batch]
            parts = [(batch[w::n_workers], batch_slow[w::n_workers]) for w in range(n_workers)]
            answers = await asyncio.gather(*(w.ask({"cmd": "join", "jobs": p, "slow": q,
                                                    "timeout": args.join_timeout}, args.join_timeout + 30)
                                             for w, (p, q) in zip(workers, parts) if p))
            for a in answers:
                joined += a["joined"]
                firsts += a["first_line_ms"]
                errors += a["errors"]
            print(f"# {label}: {joined}/{b + len(batch)} followers have their first line, service RSS "
                  f"{memory_kib(proc.pid)['VmRSS']} KiB, {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
            if joined < b + len(batch) and args.stop_on_failure:
                break
        join_seconds = time.monotonic() - start
        firsts.sort()
        say("joined", joined)
        say("join_seconds", f"{join_seconds:.1f}")
        say("first_line_ms.p50", f"{percentile(firsts, 0.5):.1f}")
        say("first_line_ms.p99", f"{percentile(firsts, 0.99):.1f}")
        for e in errors[:3]:
            say("join_error", json.dumps(e))
        if joined == 0:
            return
        await asyncio.sleep(args.settle)
        say("rss_kib.joined", memory_kib(proc.pid)["VmRSS"])

        # The window.
        s0 = cluster.sent()
        pids = {"service": [proc.pid], "apiserver": ["self"], "clients": [w.pid for w in workers]}
        cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        busy0, softirq0 = machine_cpu_seconds()
        expected = int(args.window / args.every) + 200 + int(args.burst * (args.window / args.burst_every + 1))
        await asyncio.gather(*(w.ask({"cmd": "mark", "s0": s0, "expected": expected}, 30) for w in workers))
        t0 = time.monotonic()
        rss_max = 0
        while time.monotonic() - t0 < args.window:
            await asyncio.sleep(1.0)
            rss_max = max(rss_max, memory_kib(proc.pid)["VmRSS"])
        s1 = cluster.sent()
        elapsed = time.monotonic() - t0
        cpu1 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        busy1, softirq1 = machine_cpu_seconds()
        mem = memory_kib(proc.pid)
        wait = 15 + (args.slow_pause if args.slow else 0)
        answers = await asyncio.gather(*(w.ask({"cmd": "end", "s0": s0, "s1": s1, "timeout": wait}, wait + 45)
                                         for w in workers))
        counts, hist, incomplete = collections.Counter(), collections.Counter(), []
        for a in answers:
            counts.update(a["counts"])
            hist.update({int(k): v for k, v in a["delays"].items()})
            incomplete += a["incomplete"]

        say("apiserver_log_follows", sum(cluster.follows.values()))
        say("apiserver_log_follows_max_per_job", max(cluster.follows.values(), default=0))
        for k, v in sorted(api.requests.items()):
            say(f"apiserver_requests[{k}]", v)
        say("window.seconds", f"{elapsed:.1f}")
        say("window.lines_sent_per_job", f"{sum(s1[j] - s0[j] for j in s0) / len(s0):.0f}")
        say("window.followers", counts["followers"])
        say("window.followers_complete", counts["followers_complete"])
        for k in ("lines_expected", "lines_received", "lines_missing", "lines_duplicated",
                  "error_events", "streams_ended"):
            say(f"window.{k}", counts[k])
        by_job = {k.split(".", 1)[1]: v for k, v in counts.items() if k.startswith("incomplete_by_job.")}
        if by_job:
            say("window.incomplete_followers_by_job", json.dumps(by_job, sort_keys=True))
        if counts["slow_followers"]:
            for k in ("slow_followers", "slow_told_behind", "slow_ended", "slow_lines_received"):
                say(f"window.{k}", counts[k])
        for inc in incomplete[:3]:
            say("window.incomplete_example", json.dumps(inc))
        pct, samples = histogram_percentiles(hist, {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999})
        say("delay_samples", samples)
        for k in ("p50", "p90", "p99", "p999", "max"):
            if k in pct:
                say(f"delay_ms.{k}", f"{pct[k]:.1f}")
        say("rss_kib.window_max", max(rss_max, mem["VmRSS"]))
        say("rss_kib.window_end", mem["VmRSS"])
        say("hwm_kib", mem["VmHWM"])
        say("per_follower_kib", f"{(mem['VmRSS'] - idle) / joined:.1f}")
        for k in pids:
            say(f"cpu_pct.{k}", f"{100 * (cpu1[k] - cpu0[k]) / elapsed:.0f}")
        ours = sum(cpu1[k] - cpu0[k] for k in pids)
        softirq = softirq1 - softirq0
        say("cpu_pct.softirq", f"{100 * softirq / elapsed:.0f}")
        say("cpu_pct.other", f"{100 * max(0.0, busy1 - busy0 - ours - softirq) / elapsed:.0f}")
        say("upstream_follows_open", cluster.open_follows())

        await asyncio.gather(*(w.ask({"cmd": "close"}, 30) for w in workers))
        closed_at = time.monotonic()
        # The upstreams linger (--linger) after their last follower, then close; the fake
        # apiserver sees a follow closed at its next line.
        while cluster.open_follows() and time.monotonic() - closed_at < args.linger + 10:
            await asyncio.sleep(0.25)
        say("upstream_follows_open_after_close", cluster.open_follows())
        say("upstream_follows_closed_after_s", f"{time.monotonic() - closed_at:.1f}")
        say("rss_kib.after_close", memory_kib(proc.pid)["VmRSS"])
    finally:
        for w in workers:
            try:
                w.proc.stdin.write(b'{"cmd": "quit"}\n')
                await asyncio.wait_for(w.proc.wait(), 10)
            except Exception:
                w.proc.kill()
        cluster.stop_logs()
        proc.terminate()
        try:
            proc.wait(30)
        except Exception:
            proc.kill()
        api.server.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("followers", nargs="*", type=int, default=[10000])
    parser.add_argument("--jobs", type=int, default=100, help="running jobs the followers spread over")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between a pod's log lines")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--tail", type=int, default=None, help="?tail= (default: none, the service's 100)")
    parser.add_argument("--http2", action="store_true", help="HTTP/2 cleartext instead of HTTP/1.1")
    parser.add_argument("--streams-per-connection", type=int, default=100)
    parser.add_argument("--h2-window", type=int, default=65535,
                        help="each HTTP/2 stream's flow-control window (the protocol's default)")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--batch", type=int, default=500, help="followers opened at once in the ramp")
    parser.add_argument("--linger", type=float, default=5.0, help="the service's upstream linger")
    parser.add_argument("--burst", type=int, default=0,
                        help="also write this many lines at once to each log every --burst-every s")
    parser.add_argument("--burst-every", type=float, default=5.0)
    parser.add_argument("--slow", type=int, default=0,
                        help="slow followers a job (HTTP/1.1): each stops reading for --slow-pause s")
    parser.add_argument("--slow-pause", type=float, default=20.0)
    parser.add_argument("--join-timeout", type=float, default=60.0,
                        help="seconds a batch of the ramp may take to get its first lines")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds a run may take at most")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="wait at most this long for an idle machine before each run (0: don't)")
    parser.add_argument("--stop-on-failure", action="store_true",
                        help="stop the ramp at the first batch not fully joined")
    args = parser.parse_args()
    raise_nofile()
    for total in args.followers:
        try:
            await asyncio.wait_for(run(args.binary, total, args), args.deadline + args.quiet_wait)
        except asyncio.TimeoutError:
            print(f"followers_h{2 if args.http2 else 1}_{total}.deadline_exceeded {args.deadline:.0f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        asyncio.run(worker_main(json.loads(sys.argv[2])))
    else:
        asyncio.run(main())
