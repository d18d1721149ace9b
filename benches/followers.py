#!/usr/bin/env python3
"""Memory of sparktest-k8s with many concurrent log followers, and the cost per stream.

Starts a fake apiserver (plain HTTP on loopback: a running Job, its pod, and a follow
log that writes one line per second per stream, forever), starts the service against
it (KUBERNETES_API_URL), opens N Server-Sent-Events followers on
/api/k8s/jobs/test-job-running/logs/stream in steps, and prints the service's RSS at
each step and the RSS cost per stream. Python standard library only.

    cargo build --release
    python3 benches/followers.py target/release/sparktest-k8s [N=1000]

Output lines: `followers.N.rss_kib VALUE`, `followers.per_stream_kib VALUE`,
`followers.events_received VALUE`.
"""
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
REC = ROOT / "fixtures" / "recorded"
JOB = (REC / "11_job_get_running.body.json").read_bytes()
PODS = (REC / "21_pods_list_job_running.body.json").read_bytes()


open_follows = 0


async def fake_apiserver(reader, writer):
    global open_follows
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except Exception:
        writer.close()
        return
    target = head.split(b" ", 2)[1].decode()
    try:
        if "/log" in target:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                         b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n")
            n = 0
            open_follows += 1
            try:
              while True:
                n += 1
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                line = f"{ts}.{n % 1000000000:09d}Z working {n}\n".encode()
                writer.write(b"%x\r\n%s\r\n" % (len(line), line))
                await writer.drain()
                await asyncio.sleep(1)
            finally:
                open_follows -= 1
        else:
            body = PODS if "/pods" in target else JOB
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()


received = 0


async def follower(port, ready):
    global received
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await read_events(reader, writer, ready)
    finally:
        writer.close()


async def read_events(reader, writer, ready):
    global received
    writer.write(b"GET /api/k8s/jobs/test-job-running/logs/stream HTTP/1.1\r\n"
                 b"host: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n")
    await writer.drain()
    first = True
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.startswith(b"event:") and line[6:].strip() == b"log":
            received += 1
            if first:
                first = False
                ready.release()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main():
    binary = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    server = await asyncio.start_server(fake_apiserver, "127.0.0.1", 0, limit=1 << 16)
    api_port = server.sockets[0].getsockname()[1]
    port = int(os.environ.get("BENCH_PORT", "38181"))
    env = dict(os.environ, KUBERNETES_API_URL=f"http://127.0.0.1:{api_port}", PORT=str(port),
               MAX_STREAMS=str(total + 10), RUST_LOG="warn,warp::server=off", HOME="/nonexistent")
    env.pop("KUBECONFIG", None)
    proc = subprocess.Popen([binary, "--service-account-dir", "/nonexistent"], env=env)
    try:
        for _ in range(200):
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        idle = rss_kib(proc.pid)
        print(f"followers.0.rss_kib {idle}", flush=True)
        ready = asyncio.Semaphore(0)
        tasks = []
        step = max(total // 4, 1)
        opened = 0
        while opened < total:
            batch = min(step, total - opened)
            for _ in range(batch):
                tasks.append(asyncio.create_task(follower(port, ready)))
            for _ in range(batch):
                await asyncio.wait_for(ready.acquire(), 60)
            opened += batch
            await asyncio.sleep(2)
            print(f"followers.{opened}.rss_kib {rss_kib(proc.pid)}", flush=True)
        full = rss_kib(proc.pid)
        print(f"followers.per_stream_kib {(full - idle) / total:.1f}")
        print(f"followers.events_received {received}")
        print(f"followers.upstream_follows_open {open_follows}")
        for t in tasks:
            t.cancel()
        await asyncio.sleep(3)
        # Every client left: the service must have closed every upstream follow.
        print(f"followers.upstream_follows_open_after_close {open_follows}")
        print(f"followers.after_close.rss_kib {rss_kib(proc.pid)}")
    finally:
        proc.terminate()
        proc.wait(10)
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
