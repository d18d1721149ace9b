"""A fake apiserver for the benchmarks (plain HTTP on loopback, standard library only)
and the helpers they share: start the service against it, read its RSS.

Bodies come from ../fixtures/recorded (answers of a real kube-apiserver)."""
import asyncio
import collections
import json
import os
import pathlib
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
REC = ROOT / "fixtures" / "recorded"


def recorded(name):
    return (REC / name).read_bytes()


class FakeApiserver:
    """Routes: a function (method, target) -> handler coroutine (reader, writer)."""

    def __init__(self, route):
        self.route = route
        self.requests = collections.Counter()
        self.open_streams = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1 << 16)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                method, target = method.decode(), target.decode()
                self.requests[kind(method, target)] += 1
                keep = await self.route(self, method, target, writer)
                if not keep:
                    break
        except Exception:
            pass
        finally:
            writer.close()

    async def json(self, writer, body, status=200):
        writer.write(b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n" % (status, len(body)) + body)
        await writer.drain()
        return True

    async def stream(self, writer, chunks, content_type=b"text/plain"):
        """Sends an async iterator of byte chunks as a chunked body, until it ends or
        the client goes away."""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type +
                     b"\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        self.open_streams += 1
        try:
            async for chunk in chunks:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self.open_streams -= 1
        return False


def kind(method, target):
    path, _, query = target.partition("?")
    if "watch=true" in query:
        return "watch"
    if path.endswith("/log"):
        return "log"
    if path.endswith("/jobs") or path.endswith("/pods"):
        return "list " + path.rsplit("/", 1)[1]
    return f"{method.lower()} {path.rsplit('/', 2)[-2]}"


def start_service(binary, api_port, port, **env):
    environment = dict(os.environ, KUBERNETES_API_URL=f"http://127.0.0.1:{api_port}", PORT=str(port),
                       RUST_LOG="warn,warp::server=off", HOME="/nonexistent",
                       **{k: str(v) for k, v in env.items()})
    environment.pop("KUBECONFIG", None)
    return subprocess.Popen([binary, "--service-account-dir", "/nonexistent"], env=environment)


async def wait_until_up(port):
    for _ in range(400):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("the service did not start")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def job_named(name):
    """The recorded completed Job (09) under another name and uid."""
    job = json.loads(recorded("09_job_get_completed.body.json"))
    job["metadata"]["name"] = name
    job["metadata"]["uid"] = f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}"
    return job


def now_stamp(n):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{n % 1000000000:09d}Z"
