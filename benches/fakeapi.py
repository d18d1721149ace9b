"""A fake apiserver for the benchmarks (plain HTTP on loopback, standard library only)
and the helpers they share: start the service against it, read its RSS.

Bodies come from ../fixtures/recorded (answers of a real kube-apiserver)."""
import asyncio
import collections
import json
import os
import pathlib
import resource
import socket
import subprocess
import time
import urllib.parse

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
        self.streams_opened = 0

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
        except (Exception, asyncio.CancelledError):
            # A client gone, or the bench ending (its tasks are cancelled): no traceback.
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
        self.streams_opened += 1
        try:
            async for chunk in chunks:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            self.open_streams -= 1
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
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
    return subprocess.Popen([binary, "--service-account-dir", "/nonexistent"], env=environment,
                            preexec_fn=_die_with_parent)


def _die_with_parent():
    """In the child: SIGTERM when the bench dies, so no service outlives it."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


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
    return memory_kib(pid)["VmRSS"]


def memory_kib(pid):
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    found = {"VmRSS": 0, "VmHWM": 0}
    for line in open(f"/proc/{pid}/status"):
        key = line.split(":", 1)[0]
        if key in found:
            found[key] = int(line.split()[1])
    return found


def cpu_seconds(pid="self"):
    """User plus system CPU time a process has used so far, in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds():
    """CPU time the whole machine has spent busy (all cores), in seconds: with the
    processes' own, what else ran meanwhile (another build, noise)."""
    return machine_cpu_seconds()[0]


def machine_cpu_seconds():
    """(busy, softirq): CPU time the whole machine has spent busy (all cores), and the
    part of it in softirq (on loopback, mostly the benches' own TCP traffic, which the
    kernel does not charge to any process), in seconds."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    idle = fields[3] + fields[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, fields[6] / tick


async def wait_for_quiet(timeout, busy_pct=20.0, sample=3.0):
    """Waits (at most `timeout` seconds) until the machine is nearly idle: less than
    `busy_pct` of one core busy over `sample` seconds, as another build or test run on
    a shared machine skews every figure. Returns the busy percentage last seen."""
    deadline = time.monotonic() + timeout
    while True:
        before, t0 = machine_busy_seconds(), time.monotonic()
        await asyncio.sleep(sample)
        busy = 100 * (machine_busy_seconds() - before) / (time.monotonic() - t0)
        if busy < busy_pct or time.monotonic() >= deadline:
            return busy


def raise_nofile():
    """Raises this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_named(name):
    """The recorded completed Job (09) under another name and uid."""
    job = json.loads(recorded("09_job_get_completed.body.json"))
    job["metadata"]["name"] = name
    job["metadata"]["uid"] = f"00000000-0000-0000-0000-{abs(hash(name)) % 10**12:012d}"
    return job


def now_stamp(n):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{n % 1000000000:09d}Z"


def stamp_ns(ns):
    """A kubelet timestamp (RFC 3339, nanoseconds, UTC) of a time in ns since the epoch."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def _labels_match(selector, labels):
    """Equality-based label selectors (`a=b,c=d`), the only kind the service sends."""
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.lstrip("=").strip():
            return False
    return True


class JobLog:
    """The endless log of one pod's container: `every` seconds a line stamped by the
    "kubelet" (RFC 3339 ns) that carries its number and its send time in ns since the
    epoch (`#SEQ @SENT_NS ...`), written at once to every follow open on it. The last
    1,000 lines are kept for `tailLines`."""

    PAD = b"pytest tests/test_api.py::test_case PASSED [ 42%] a line of a chatty run"

    def __init__(self):
        self.seq = 0
        self.history = collections.deque(maxlen=1000)
        self.followers = set()

    def emit(self):
        self.seq += 1
        ns = time.time_ns()
        line = b"%s #%d @%d %s\n" % (stamp_ns(ns).encode(), self.seq, ns, self.PAD)
        self.history.append(line)
        for queue in self.followers:
            queue.put_nowait(line)

    async def run(self, every, phase, burst=0, burst_every=5.0):
        """Emits forever, on a fixed schedule (no drift), starting `phase` seconds in;
        with `burst`, also that many lines at once every `burst_every` seconds (a test
        dumping its output)."""
        loop = asyncio.get_running_loop()
        start = loop.time() + phase
        next_burst = start + burst_every
        n = 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, start + n * every - loop.time()))
            self.emit()
            if burst and loop.time() >= next_burst:
                next_burst += burst_every
                for _ in range(burst):
                    self.emit()

    async def follow(self, tail):
        queue = asyncio.Queue()
        self.followers.add(queue)
        try:
            history = list(self.history)[-tail:] if tail else []
            if history:
                yield b"".join(history)
            while True:
                lines = [await queue.get()]
                while not queue.empty():
                    lines.append(queue.get_nowait())
                yield b"".join(lines)
        finally:
            self.followers.discard(queue)


class Cluster:
    """A namespace of `count` SparkTest Jobs (`test-job-000`...), each with one pod, in the
    shape of the recorded running Job (11) and its pod (21), and the apiserver routes
    the service uses on them: list and watch of Jobs and pods (the watch sends a
    bookmark every 5 s, or is refused with 403 as under the documented Role, which has
    no `watch`), get of a Job or pod, and each pod's log: an endless follow
    ([`JobLog`]) when `every` is set. Requests are counted by kind (`api.requests`) and
    by the job they concern (`per_job`: job gets, pod lists by its selector, logs);
    `follows` counts the follow=true log requests of each job."""

    def __init__(self, count, every=None, refuse_watch=False, burst=0, burst_every=5.0):
        self.refuse_watch = refuse_watch
        self.every = every
        self.burst, self.burst_every = burst, burst_every
        template_job = json.loads(recorded("11_job_get_running.body.json"))
        template_job["metadata"].pop("managedFields", None)
        template_pod = json.loads(recorded("21_pods_list_job_running.body.json"))["items"][0]
        template_pod["metadata"].pop("managedFields", None)
        self.names = [f"test-job-{i:03d}" for i in range(count)]
        self.jobs, self.pods, self.pod_job, self.uid_job, self.logs = {}, {}, {}, {}, {}
        for i, name in enumerate(self.names):
            uid = f"00000000-0000-4000-8000-{i:012d}"
            job = json.loads(json.dumps(template_job))
            job["metadata"].update(name=name, uid=uid)
            job["spec"]["selector"]["matchLabels"]["controller-uid"] = uid
            job["spec"]["template"]["metadata"]["labels"].update({"controller-uid": uid, "job-name": name})
            pod = json.loads(json.dumps(template_pod))
            pod_name = f"{name}-x{i:04d}"
            pod["metadata"].update(name=pod_name, generateName=f"{name}-", uid=f"00000000-0000-4000-9000-{i:012d}")
            pod["metadata"]["labels"].update({"controller-uid": uid, "job-name": name})
            pod["metadata"]["ownerReferences"][0].update(name=name, uid=uid)
            self.jobs[name] = job
            self.pods[pod_name] = pod
            self.pod_job[pod_name] = name
            self.uid_job[uid] = name
            self.logs[name] = JobLog()
        self.job_bodies = {n: json.dumps(j).encode() for n, j in self.jobs.items()}
        self.per_job = collections.Counter()
        self.follows = collections.Counter()
        self.tasks = []

    def start_logs(self):
        """Starts every pod's log, the jobs' lines spread evenly over each period."""
        if self.every:
            n = len(self.names)
            self.tasks = [asyncio.create_task(self.logs[name].run(self.every, self.every * i / n,
                                                                  self.burst, self.burst_every))
                          for i, name in enumerate(self.names)]

    def stop_logs(self):
        for task in self.tasks:
            task.cancel()

    def open_follows(self):
        """Log follows open now (all jobs)."""
        return sum(len(log.followers) for log in self.logs.values())

    def sent(self):
        """The number of the last line each job's log has written."""
        return {name: log.seq for name, log in self.logs.items()}

    @staticmethod
    def _list(kind, api_version, items):
        return json.dumps({"kind": kind, "apiVersion": api_version,
                           "metadata": {"resourceVersion": "1000"}, "items": items}).encode()

    async def _watch(self, api, writer, kind, api_version):
        if self.refuse_watch:
            body = recorded("50_forbidden_watch_jobs_sa.body.json")
            if kind == "Pod":
                body = body.replace(b"jobs.batch", b"pods").replace(b'resource \\"jobs\\" in API group \\"batch\\"',
                                                                   b'resource \\"pods\\" in API group \\"\\"')
            return await api.json(writer, body, 403)

        async def bookmarks():
            while True:
                await asyncio.sleep(5)
                yield (b'{"type":"BOOKMARK","object":{"kind":"%s","apiVersion":"%s",'
                       b'"metadata":{"resourceVersion":"1000"}}}\n' % (kind.encode(), api_version.encode()))
        return await api.stream(writer, bookmarks(), b"application/json")

    async def route(self, api, method, target, writer):
        path, _, raw_query = target.partition("?")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(raw_query).items()}
        parts = path.strip("/").split("/")
        watch = query.get("watch") == "true"
        if path == "/version":
            return await api.json(writer, recorded("01_version.body.json"))
        if path == "/apis/batch/v1/namespaces/default/jobs":
            if watch:
                return await self._watch(api, writer, "Job", "batch/v1")
            field = query.get("fieldSelector", "")
            items = [j for n, j in self.jobs.items()
                     if _labels_match(query.get("labelSelector"), j["metadata"]["labels"])
                     and (not field.startswith("metadata.name=") or field == f"metadata.name={n}")]
            return await api.json(writer, self._list("JobList", "batch/v1", items))
        if len(parts) == 7 and path.startswith("/apis/batch/v1/namespaces/default/jobs/"):
            name = parts[6]
            if name in self.job_bodies:
                self.per_job[name] += 1
                return await api.json(writer, self.job_bodies[name])
            return await api.json(writer, recorded("14_job_get_not_found.body.json"), 404)
        if path == "/api/v1/namespaces/default/pods":
            if watch:
                return await self._watch(api, writer, "Pod", "v1")
            selector = query.get("labelSelector")
            items = [p for p in self.pods.values() if _labels_match(selector, p["metadata"]["labels"])]
            if "controller-uid=" in (selector or "") and len(items) == 1:
                self.per_job[self.pod_job[items[0]["metadata"]["name"]]] += 1
            return await api.json(writer, self._list("PodList", "v1", items))
        if path.startswith("/api/v1/namespaces/default/pods/") and parts[5] in self.pods:
            pod = parts[5]
            job = self.pod_job[pod]
            if len(parts) == 6:
                self.per_job[job] += 1
                return await api.json(writer, json.dumps(self.pods[pod]).encode())
            if parts[6:] == ["log"]:
                self.per_job[job] += 1
                log = self.logs[job]
                tail = int(query["tailLines"]) if "tailLines" in query else None
                if query.get("follow") == "true":
                    self.follows[job] += 1
                    return await api.stream(writer, log.follow(tail if tail is not None else len(log.history)))
                lines = list(log.history)[-tail:] if tail else list(log.history)
                body = b"".join(lines)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n"
                             % len(body) + body)
                await writer.drain()
                return True
        return await api.json(writer, recorded("26_pod_get_not_found.body.json"), 404)
