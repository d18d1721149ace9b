#!/usr/bin/env python3
"""Builds a directory archive of the benchmark harness's finished Job the way the
service itself writes one, for benches/archived_logs.sh.

The harness's Job `test-job-123` is not a SparkTest run (it carries
`app.kubernetes.io/managed-by: test-orchestrator`, not `app=sparktest`), so the service
never archives it from the harness's nginx. Here the same Job, labelled `app=sparktest`,
its pod list and its log (the harness's own fixtures, compacted in the harness's state
directory by upstream.sh) are served by benches/fakeapi.py over plain HTTP on loopback;
the service runs once with LOG_ARCHIVE=ARCHIVE_DIR and archives the run (its start-up
sweep finds it finished; one GET of its status asks as well), and it is stopped once
ARCHIVE_DIR/default/test-job-123/run.json exists. The archived log is then checked to be the harness's log byte for byte (the
fake apiserver, like the harness's nginx, ignores the log query), so that the archived
run and the anchor's cluster read serve the same text.

    python3 benches/archive_fixture.py BINARY HARNESS_WWW ARCHIVE_DIR

HARNESS_WWW: the `www` directory of the harness's state (job.json, podlist.json,
log.txt). Prints `archive_fixture METRIC VALUE` lines; exits non-zero on failure."""
import asyncio
import gzip
import json
import os
import pathlib
import sys
import time

from fakeapi import FakeApiserver, recorded, start_service, wait_until_up

JOB = "test-job-123"


def fixtures(www):
    job = json.loads((www / "job.json").read_bytes())
    job["metadata"]["labels"]["app"] = "sparktest"
    pods = json.loads((www / "podlist.json").read_bytes())
    pod = pods["items"][0]["metadata"]["name"]
    return json.dumps(job).encode(), json.dumps(pods).encode(), pod, (www / "log.txt").read_bytes()


async def main():
    binary, www, archive = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    job, pods, pod, log = fixtures(www)
    listing = json.loads(recorded("15_job_list.body.json"))
    listing["items"] = [json.loads(job)]
    listing = json.dumps(listing).encode()

    async def route(api, method, target, writer):
        path, _, query = target.partition("?")
        if path == "/version":
            return await api.json(writer, recorded("01_version.body.json"))
        if "watch=true" in query or "watch=1" in query:
            # The documented Role has no watch: caches off, every read direct.
            return await api.json(writer, recorded("50_forbidden_watch_jobs_sa.body.json"), 403)
        if path == "/apis/batch/v1/namespaces/default/jobs":
            return await api.json(writer, listing)
        if path == f"/apis/batch/v1/namespaces/default/jobs/{JOB}":
            return await api.json(writer, job)
        if path == "/api/v1/namespaces/default/pods":
            return await api.json(writer, pods)
        if path == f"/api/v1/namespaces/default/pods/{pod}/log":
            return await text(writer, log)
        return await api.json(writer, recorded("14_job_get_not_found.body.json"), 404)

    async def text(writer, body):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                     b"content-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        return True

    api = await FakeApiserver(route).start()
    port = int(os.environ.get("FIXTURE_PORT", "38781"))
    archive.mkdir(parents=True, exist_ok=True)
    spill = archive.parent / "spill"
    spill.mkdir(exist_ok=True)
    record = archive / "default" / JOB / "run.json"
    proc = start_service(binary, api.port, port, LOG_ARCHIVE=archive, TMPDIR=spill)
    try:
        await wait_until_up(port)
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /api/k8s/jobs/{JOB}/status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        if b'"completed"' not in answer:
            raise SystemExit(f"archive_fixture: the status answer is not completed: {answer[:300]!r}")
        while not record.exists():
            if time.monotonic() - started > 60:
                raise SystemExit(f"archive_fixture: no {record} after 60 s")
            await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(30)
        api.server.close()
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)

    run = json.loads(record.read_text())
    logs = sorted((archive / "default" / JOB / "logs").rglob("*.log.gz"))
    if len(logs) != 1 or gzip.decompress(logs[0].read_bytes()) != log:
        raise SystemExit(f"archive_fixture: the archived log is not the harness's log: {logs}")
    print(f"archive_fixture default_pod {run['default_pod']}")
    print(f"archive_fixture log {logs[0].relative_to(archive)}")
    print(f"archive_fixture log_bytes {len(log)}")
    print(f"archive_fixture gz_bytes {logs[0].stat().st_size}")
    print(f"archive_fixture apiserver_requests {sum(api.requests.values())}")


if __name__ == "__main__":
    asyncio.run(main())
