#!/usr/bin/env python3
"""A 1 GiB log streamed through the service: the fake apiserver writes a running pod's
follow log as fast as it is read (1 GiB of kubelet-timestamped lines), one client reads
the SSE stream of /api/k8s/jobs/test-job-running/logs/stream; the service's RSS is
sampled every 0.5 s.

    cargo build --release
    python3 benches/log_stream.py target/release/sparktest-k8s [GIB=1]

Output: `log_stream.upstream_mib_per_s`, `log_stream.rss_kib.{min,max}` (while
streaming), `log_stream.events`."""
import asyncio
import sys
import time

from fakeapi import FakeApiserver, recorded, rss_kib, start_service, wait_until_up

LINE = b" test_api.py::test_case PASSED [ 42%] a line of a chatty test run, about a hundred bytes\n"


async def route(api, method, target, writer):
    path, _, query = target.partition("?")
    if path.endswith("/jobs/test-job-running"):
        return await api.json(writer, recorded("11_job_get_running.body.json"))
    if path.endswith("/pods"):
        return await api.json(writer, recorded("21_pods_list_job_running.body.json"))
    if path.endswith("/log"):
        async def lines():
            sent, n = 0, 0
            while sent < api.total:
                chunk = bytearray()
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()).encode()
                for _ in range(600):
                    n += 1
                    chunk += stamp + b".%09dZ" % n + LINE
                sent += len(chunk)
                api.sent = sent
                yield bytes(chunk)
        return await api.stream(writer, lines())
    return await api.json(writer, b'{"kind":"List","items":[]}')


async def main():
    binary = sys.argv[1]
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    api = await FakeApiserver(route).start()
    api.total, api.sent = int(gib * (1 << 30)), 0
    port = 38383
    proc = start_service(binary, api.port, port)
    samples = []
    try:
        await wait_until_up(port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(b"GET /api/k8s/jobs/test-job-running/logs/stream?tail=0 HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        events = 0
        start = time.monotonic()
        last_sample = start

        while api.sent < api.total:
            data = await reader.read(1 << 20)
            if not data:
                break
            events += data.count(b"event:log")
            now = time.monotonic()
            if now - last_sample >= 0.5:
                samples.append(rss_kib(proc.pid))
                last_sample = now
        elapsed = time.monotonic() - start
        writer.close()
        print(f"log_stream.upstream_mib_per_s {api.sent / elapsed / (1 << 20):.1f}")
        print(f"log_stream.seconds {elapsed:.1f}")
        print(f"log_stream.events {events}")
        print(f"log_stream.rss_kib.min {min(samples)}")
        print(f"log_stream.rss_kib.max {max(samples)}")
    finally:
        proc.terminate()
        proc.wait(30)
        api.server.close()


if __name__ == "__main__":
    asyncio.run(main())
