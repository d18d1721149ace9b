#!/usr/bin/env python3
"""Frontends poll; the apiserver must not feel it. 100 clients poll the status of the
same 20 jobs once a second each (2,000 requests/s asked of the service) for DURATION
seconds; the fake apiserver counts what reaches it.

    cargo build --release
    python3 benches/polling.py target/release/sparktest-k8s [DURATION=10]

Output: `polling.service_rps`, `polling.apiserver_rps` (requests reaching the
apiserver during the polling), and the apiserver's requests by kind over the whole run
(the cache's one list and one watch; direct job reads, if any); then the same with the
watch refused (`polling_without_cache.*`), where every status is a direct read."""
import asyncio
import json
import sys
import time

from fakeapi import FakeApiserver, job_named, recorded, start_service, wait_until_up

JOBS = [f"test-job-{i:02d}" for i in range(1, 21)]


async def route(api, method, target, writer):
    path, _, query = target.partition("?")
    if path == "/version":
        return await api.json(writer, recorded("01_version.body.json"))
    if path == "/apis/batch/v1/namespaces/default/jobs":
        if "watch=true" in query and api.refuse_watch:
            return await api.json(writer, recorded("50_forbidden_watch_jobs_sa.body.json"), 403)
        if "watch=true" in query:
            async def bookmarks():
                while True:
                    await asyncio.sleep(5)
                    yield b'{"type":"BOOKMARK","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"resourceVersion":"1000"}}}\n'
            return await api.stream(writer, bookmarks(), b"application/json")
        listing = json.loads(recorded("15_job_list.body.json"))
        listing["items"] = [job_named(n) for n in JOBS]
        listing["metadata"]["resourceVersion"] = "1000"
        return await api.json(writer, json.dumps(listing).encode())
    name = path.rsplit("/", 1)[1]
    if name in JOBS:
        return await api.json(writer, json.dumps(job_named(name)).encode())
    return await api.json(writer, recorded("14_job_get_not_found.body.json"), 404)


served = 0


async def client(port, until):
    global served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.monotonic() < until:
        started = time.monotonic()
        for name in JOBS:
            writer.write(f"GET /api/k8s/jobs/{name}/status HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            assert b'"completed"' in body, body
            served += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    writer.close()


async def measure(binary, duration, refuse_watch, label):
    global served
    served = 0
    api = await FakeApiserver(route).start()
    api.refuse_watch = refuse_watch
    port = 38282
    proc = start_service(binary, api.port, port)
    try:
        await wait_until_up(port)
        await asyncio.sleep(1.0)  # the cache lists and opens its watch
        before = sum(api.requests.values())
        start = time.monotonic()
        await asyncio.gather(*(client(port, start + duration) for _ in range(100)))
        elapsed = time.monotonic() - start
        print(f"{label}.service_rps {served / elapsed:.0f}")
        print(f"{label}.apiserver_rps {(sum(api.requests.values()) - before) / elapsed:.2f}")
        for k, v in sorted(api.requests.items()):
            print(f"{label}.apiserver_requests[{k}] {v}")
    finally:
        proc.terminate()
        proc.wait(30)
        api.server.close()


async def main():
    binary = sys.argv[1]
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    await measure(binary, duration, False, "polling")
    # The same load with the watch refused (403, as with a Role without `watch`): the
    # cache stays off and every status is a direct read, for comparison.
    await measure(binary, duration, True, "polling_without_cache")


if __name__ == "__main__":
    asyncio.run(main())
