#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the recorded apiserver answers and the kubeconfig
fixtures (plus a few hand-written inputs). The corpus is git-ignored (`/fuzz/corpus/`):
run this once before fuzzing, from anywhere:

    python3 fuzz/seed_corpus.py
"""

import hashlib
import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
RECORDED = ROOT / "fixtures" / "recorded"
KUBECONFIGS = ROOT / "fixtures" / "kubeconfigs"


def put(target: str, data: bytes) -> None:
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)


def recorded(name: str) -> bytes:
    return (RECORDED / f"{name}.body.json").read_bytes()


def main() -> None:
    # kubeconfig: every fixture.
    for path in sorted(KUBECONFIGS.glob("*.yaml")):
        put("kubeconfig", path.read_bytes())

    bodies = sorted(RECORDED.glob("*.body.json"))
    for path in bodies:
        body = path.read_bytes()
        meta = json.loads(path.with_name(path.name.replace(".body.json", ".meta.json")).read_text())
        code = int(meta.get("status") or 500)
        # status: a two-byte big-endian HTTP code, then the body.
        if code >= 300 or b'"kind":"Status"' in body:
            put("status", code.to_bytes(2, "big") + body)
        # objects: whole bodies, and each line of a watch body as one event.
        lines = body.splitlines()
        if len(lines) > 1:
            for line in lines:
                put("objects", line)
        else:
            put("objects", body)
    put("status", (502).to_bytes(2, "big") + b"<html>bad gateway</html>")
    put("status", (500).to_bytes(2, "big"))

    # objects: a Job, NUL, its PodList (the status endpoint's view of both).
    for job, pods in [
        ("09_job_get_completed", "19_pods_list_job_completed"),
        ("10_job_get_failed", "20_pods_list_job_failed"),
        ("11_job_get_running", "21_pods_list_job_running"),
        ("13_job_get_retry_failed_then_succeeded", "23_pods_list_job_retry_two_pods"),
        ("79_job_get_suspended", "80_pods_list_job_suspended"),
        ("81_job_get_unscheduled", "82_pods_list_job_unscheduled"),
        ("85_job_get_imagepull", "86_pods_list_job_imagepull"),
        ("90_job_get_parallel_two_active", "89_pods_list_job_parallel_two_running"),
    ]:
        put("objects", recorded(job) + b"\0" + recorded(pods))

    # names
    for name in [
        "test-job-123", "a", "job.v2", "0abc", "a" * 63, "default", "kube-system",
        "550e8400-e29b-41d4-a716-446655440000", "550E8400-E29B-41D4-A716-446655440000",
        "../secrets?x=1", "a/b", "job%2Fx", "jöb", "default\ntest-job-123",
    ]:
        put("names", name.encode())

    # rfc3339
    for ts in [
        "2025-07-07T10:30:00Z", "2026-11-26T11:48:24.123456Z", "2025-07-07T12:30:00+02:00",
        "2000-02-29T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
        "2025-07-07t10:30:00.999999999999z", "2025-07-07 10:30:00-11:59",
    ]:
        put("rfc3339", ts.encode())

    # exec_output: a byte choosing the apiVersion (odd: v1, even: v1beta1), then stdout.
    for version, byte in [("client.authentication.k8s.io/v1beta1", b"\0"), ("client.authentication.k8s.io/v1", b"\1")]:
        for status in [
            {"token": "k8s-aws-v1.abc", "expirationTimestamp": "2030-01-01T00:00:00Z"},
            {"token": "t"},
            {"clientCertificateData": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
             "clientKeyData": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"},
            {"clientCertificateData": "aGVsbG8=", "clientKeyData": "d29ybGQ=", "expirationTimestamp": ""},
            {},
        ]:
            doc = {"apiVersion": version, "kind": "ExecCredential", "status": status}
            put("exec_output", byte + json.dumps(doc).encode())

    # log_query: a byte choosing the route (0: job logs query, 1: test-run logs query,
    # 2: job name segment, 3: run id segment), then the query or the segment.
    for mode, rest in [
        (0, ""), (0, "tail=10"), (0, "tail=10&timestamps=false&container=main"),
        (0, "since_time=2025-07-07T10:30:00Z&limit_bytes=100&previous=true"),
        (0, "since_seconds=3600&all_containers=true&pod=test-job-123-h6gvc"),
        (0, "tail=-1"), (0, "unknown=1"), (0, "since_time=2025-07-07T10%3A30%3A00%2B02%3A00"),
        (1, "tail=5&timestamps=true"), (2, "test-job-123"), (2, "Test%20Job"), (2, "a..b"),
        (3, "550e8400-e29b-41d4-a716-446655440000"), (3, "not-a-uuid"),
    ]:
        put("log_query", bytes([mode]) + rest.encode())


if __name__ == "__main__":
    main()
