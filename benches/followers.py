#!/usr/bin/env python3
"""Memory of sparktest-k8s with many concurrent log followers, and the cost per stream.

The fake apiserver (fakeapi.py) serves a running Job, its pod, and a follow log that
writes one line per second per stream, forever; N Server-Sent-Events followers open
/api/k8s/jobs/test-job-running/logs/stream in steps; the service's RSS is printed at
each step, with the RSS cost per stream. Python standard library only.

    cargo build --release
    python3 benches/followers.py target/release/sparktest-k8s [N=1000]

Output: `followers.N.rss_kib`, `followers.per_stream_kib`, `followers.events_received`,
`followers.upstream_follows_open[_after_close]` (every upstream follow must be closed
once its client has left)."""
import asyncio
import sys

from fakeapi import FakeApiserver, now_stamp, recorded, rss_kib, start_service, wait_until_up


async def route(api, method, target, writer):
    path = target.partition("?")[0]
    if path.endswith("/log"):
        async def one_line_a_second():
            n = 0
            while True:
                n += 1
                yield f"{now_stamp(n)} working {n}\n".encode()
                await asyncio.sleep(1)
        return await api.stream(writer, one_line_a_second())
    if path.endswith("/pods"):
        return await api.json(writer, recorded("21_pods_list_job_running.body.json"))
    return await api.json(writer, recorded("11_job_get_running.body.json"))


received = 0


async def follower(port, ready):
    global received
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /api/k8s/jobs/test-job-running/logs/stream HTTP/1.1\r\n"
                     b"host: 127.0.0.1\r\naccept: text/event-stream\r\n\r\n")
        await writer.drain()
        first = True
        while line := await reader.readline():
            if line.startswith(b"event:") and line[6:].strip() == b"log":
                received += 1
                if first:
                    first = False
                    ready.release()
    finally:
        writer.close()


async def main():
    binary = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    api = await FakeApiserver(route).start()
    port = 38181
    proc = start_service(binary, api.port, port, MAX_STREAMS=total + 10)
    try:
        await wait_until_up(port)
        await asyncio.sleep(0.5)
        idle = rss_kib(proc.pid)
        print(f"followers.0.rss_kib {idle}", flush=True)
        ready = asyncio.Semaphore(0)
        tasks, opened, step = [], 0, max(total // 4, 1)
        while opened < total:
            batch = min(step, total - opened)
            tasks += [asyncio.create_task(follower(port, ready)) for _ in range(batch)]
            for _ in range(batch):
                await asyncio.wait_for(ready.acquire(), 60)
            opened += batch
            await asyncio.sleep(2)
            print(f"followers.{opened}.rss_kib {rss_kib(proc.pid)}", flush=True)
        print(f"followers.per_stream_kib {(rss_kib(proc.pid) - idle) / total:.1f}")
        print(f"followers.events_received {received}")
        print(f"followers.upstream_follows_open {api.open_streams}")
        for t in tasks:
            t.cancel()
        await asyncio.sleep(3)
        print(f"followers.upstream_follows_open_after_close {api.open_streams}")
        print(f"followers.after_close.rss_kib {rss_kib(proc.pid)}")
    finally:
        proc.terminate()
        proc.wait(30)
        api.server.close()


if __name__ == "__main__":
    asyncio.run(main())
