#!/usr/bin/env python3
"""The frontend's own clients against the service: headless Chromium loads a page from
another origin that calls the API with fetch (GET with a bearer token, a JSON POST
that needs a CORS preflight, a request without a token) and follows a log with
EventSource (?access_token=), against a fake apiserver replaying recorded answers.

    apt-get install chromium        # once
    cargo build --release
    python3 tests/browser/check.py target/release/sparktest-k8s

Prints what the page saw and exits non-zero when it is not what the frontend needs.
Not part of `cargo test` (it needs a browser); the Rust tests cover the same routes
with real SSE and WebSocket client libraries."""
import asyncio
import http.server
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "benches"))
from fakeapi import FakeApiserver, recorded, start_service, wait_until_up  # noqa: E402

TOKEN = "browser-check-token"


async def route(api, method, target, writer):
    path, _, query = target.partition("?")
    if "watch=true" in query:
        async def quiet():  # a watch that stays open without events
            await asyncio.sleep(3600)
            yield b""
        return await api.stream(writer, quiet(), b"application/json")
    if path == "/version":
        return await api.json(writer, recorded("01_version.body.json"))
    if method == "POST" and path.endswith("/jobs"):
        # The fake reads request heads only: close the connection so that the unread
        # body is not taken for the next request.
        body = recorded("57_job_create_201.body.json")
        writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        return False
    if path.endswith("/jobs"):
        return await api.json(writer, recorded("15_job_list.body.json"))
    if path.endswith("/pods"):
        return await api.json(writer, recorded("19_pods_list_job_completed.body.json"))
    if path.endswith("/log"):
        async def the_log():
            yield recorded("28_log_completed_timestamps.body.txt")
        return await api.stream(writer, the_log())
    return await api.json(writer, recorded("09_job_get_completed.body.json"))


PAGE = """<!doctype html><html><body>waiting<script>
const api = "http://127.0.0.1:%(port)d";
const auth = {Authorization: "Bearer %(token)s"};
const out = {lines: 0};
function done() { document.body.textContent = "RESULT " + JSON.stringify(out); }
(async () => {
  try {
    let r = await fetch(api + "/api/k8s/jobs/test-job-123/status", {headers: auth});
    out.status = [r.status, (await r.json()).status];
    r = await fetch(api + "/api/test-runs", {method: "POST",
      headers: {...auth, "content-type": "application/json"},
      body: JSON.stringify({image: "busybox:1.36", commands: ["echo hello", "echo bye"]})});
    out.create = [r.status, (await r.json()).job_name];
    try {
      r = await fetch(api + "/api/k8s/jobs/test-job-123/status");
      out.without_token = r.status;
    } catch (e) { out.without_token = "unreadable: " + e; }
    const es = new EventSource(api + "/api/k8s/jobs/test-job-123/logs/stream?access_token=%(token)s");
    es.addEventListener("log", () => { out.lines++; });
    es.addEventListener("status", (e) => { out.final = JSON.parse(e.data).status; es.close(); done(); });
    es.onerror = () => { out.error = "EventSource error"; es.close(); done(); };
  } catch (e) { out.error = String(e); done(); }
})();
</script></body></html>"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    binary = sys.argv[1]
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        sys.exit("chromium not found: apt-get install chromium")
    api = await FakeApiserver(route).start()
    port, page_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{page_port}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "tokens").write_text(TOKEN + "\n")
        (tmp / "index.html").write_text(PAGE % {"port": port, "token": TOKEN})
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp))  # noqa: E731
        pages = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), handler)
        threading.Thread(target=pages.serve_forever, daemon=True).start()
        service = start_service(binary, api.port, port, CORS_ORIGINS=origin,
                                API_TOKENS_FILE=tmp / "tokens")
        try:
            await wait_until_up(port)
            proc = await asyncio.create_subprocess_exec(
                browser, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", f"--user-data-dir={tmp / 'profile'}",
                "--virtual-time-budget=15000", "--dump-dom", f"{origin}/index.html",
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            dom, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            service.terminate()
            service.wait()
            pages.shutdown()
    print("apiserver requests:", dict(api.requests))
    text = dom.decode()
    if "RESULT " not in text:
        sys.exit(f"the page did not finish: {text[:500]}")
    seen = json.loads(text.split("RESULT ", 1)[1].split("<", 1)[0])
    print(json.dumps(seen))
    log_lines = recorded("28_log_completed_timestamps.body.txt").decode().count("\n")
    expected = {"status": [200, "completed"], "create": [201, None], "without_token": 401,
                "lines": log_lines, "final": "completed"}
    problems = [k for k, v in expected.items()
                if (seen.get(k)[0] != v[0] if k == "create" and seen.get(k) else seen.get(k) != v)]
    if seen.get("create") and not str(seen["create"][1]).startswith("test-run-"):
        problems.append("create job_name")
    if problems:
        sys.exit(f"not what the frontend needs: {problems} (expected {expected})")
    print(f"ok: fetch with a token, a JSON POST through CORS, 401 without a token, and "
          f"{log_lines} log events then the final status through EventSource")


def quiet_exit(loop, context):
    pass  # the fake apiserver's open watches are cancelled at exit


async def run():
    asyncio.get_running_loop().set_exception_handler(quiet_exit)
    await main()


asyncio.run(run())
