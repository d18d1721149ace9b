#!/usr/bin/env python3
"""A 1 GiB log streamed through the service: the fake apiserver writes a running pod's
follow log as fast as it is read (1 GiB of kubelet-timestamped lines), one client reads
the SSE stream of /api/k8s/jobs/test-job-running/logs/stream; the service's RSS is
sampled every 0.5 s. Two ways in:

- shared (`log_stream.shared.*`): a plain stream (?tail=0), which since the streams are
  shared reads the job's one upstream follow. The upstream does not wait for its
  followers: a follower more than 1,024 events behind is sent an `error` event and
  ended. A burst this fast outruns a Python reader within a second, so this part
  reports how much the client got before it was told, and whether it was.
- resumed (`log_stream.*`): the same with `Last-Event-ID` (a point before the log's
  start), which has a follow of its own that waits for its client (32 events buffered):
  the whole GIB goes through, and RSS must stay flat.

    cargo build --release
    python3 benches/log_stream.py target/release/sparktest-k8s [GIB=1]

Output: `log_stream.shared.{events,seconds,told_behind}`, `log_stream.upstream_mib_per_s`,
`log_stream.seconds`, `log_stream.events`, `log_stream.rss_kib.{min,max}` (while
streaming). Bounded: the resumed part stops after 600 s whatever happens."""
import asyncio
import sys
import time

from fakeapi import FakeApiserver, recorded, rss_kib, start_service, wait_until_up

LINE = b" test_api.py::test_case PASSED [ 42%] a line of a chatty test run, about a hundred bytes\n"
POD = b"test-job-running-dvhw8"  # the pod of 21_pods_list_job_running


async def route(api, method, target, writer):
    path, _, query = target.partition("?")
    if path.endswith("/jobs/test-job-running"):
        return await api.json(writer, recorded("11_job_get_running.body.json"))
    if "watch=true" in query:
        # The caches stay off (as under the documented Role): a log stream does not use them.
        return await api.json(writer, recorded("50_forbidden_watch_jobs_sa.body.json"), 403)
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
    return await api.json(writer, b'{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}')


async def open_stream(port, headers=b""):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(b"GET /api/k8s/jobs/test-job-running/logs/stream?tail=0 HTTP/1.1\r\nhost: x\r\n"
                 + headers + b"\r\n")
    await writer.drain()
    return reader, writer


async def main():
    binary = sys.argv[1]
    gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    api = await FakeApiserver(route).start()
    port = 38383
    proc = start_service(binary, api.port, port, LOG_ARCHIVE="off")
    try:
        await wait_until_up(port)

        # Shared: read as fast as we can until the stream ends (or 30 s).
        api.total, api.sent = int(gib * (1 << 30)), 0
        reader, writer = await open_stream(port)
        events, tail, start = 0, b"", time.monotonic()
        while time.monotonic() - start < 30:
            try:
                data = await asyncio.wait_for(reader.read(1 << 20), 5)
            except asyncio.TimeoutError:
                break
            if not data:
                break
            events += (tail[-16:] + data).count(b"event:log") - tail[-16:].count(b"event:log")
            tail = (tail + data)[-4096:]
            if tail.endswith(b"\r\n0\r\n\r\n"):  # the end of the chunked body
                break
        writer.close()
        print(f"log_stream.shared.events {events}")
        print(f"log_stream.shared.seconds {time.monotonic() - start:.1f}")
        print(f"log_stream.shared.told_behind {int(b'fell behind' in tail)}")
        await asyncio.sleep(6)  # the shared upstream lingers 5 s after its last follower

        # Resumed: a follow of its own, which waits for this client.
        api.total, api.sent = int(gib * (1 << 30)), 0
        reader, writer = await open_stream(port, b"last-event-id: " + POD + b"/2020-01-01T00:00:00Z\r\n")
        samples, events, start = [], 0, time.monotonic()
        last_sample = start
        while api.sent < api.total and time.monotonic() - start < 600:
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
        print(f"log_stream.rss_kib.min {min(samples, default=0)}")
        print(f"log_stream.rss_kib.max {max(samples, default=0)}")
    finally:
        proc.terminate()
        proc.wait(30)
        api.server.close()


if __name__ == "__main__":
    asyncio.run(main())
