#!/usr/bin/env bash
# Renders the kustomize base (deploy/) and the overlays built from its components, and
# validates every rendered object strictly (an unknown or misspelt field is an error,
# an object without a schema too) against the Kubernetes JSON schemas of the PyPI
# package kubernetes-validate, for Kubernetes 1.24 (the oldest supported), 1.30 and
# 1.37 (the newest it knows). Then checks what the schemas cannot: probes, drain time,
# hardening, selectors, that every Role carries rbac.yaml's rules, that the log
# archive (when a component turns it on) can write and takes its credentials from a
# Secret, and (components/testruns) that the TestRun CRD's schema is structural as
# Kubernetes 1.24 and later require and that the controller's RBAC is in place.
#
#   deploy/validate.sh            from any directory; exit 0 only if everything passes
#
# Needs kubectl (its built-in kustomize) and python3 with venv. Installs two pinned
# kubernetes-validate versions (1.30.0 has the 1.22-1.30 schemas, 1.37.0 has
# 1.25-1.37) into target/deploy-validate/ once (DEPLOY_VALIDATE_CACHE overrides).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE="${DEPLOY_VALIDATE_CACHE:-$PWD/target/deploy-validate}"
fail() { echo "deploy/validate.sh: $*" >&2; exit 1; }

command -v kubectl >/dev/null || fail "kubectl is required (kubectl kustomize renders the manifests)"
command -v python3 >/dev/null || fail "python3 is required"

# kubernetes-validate package version -> its virtualenv (created once, quietly).
venv_for() {
    local dir="$CACHE/kubernetes-validate-$1"
    if [[ ! -x "$dir/bin/kubernetes-validate" ]]; then
        rm -rf "$dir"
        mkdir -p "$CACHE"
        python3 -m venv "$dir" >/dev/null 2>&1 \
            || fail "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
        "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input \
            "kubernetes-validate==$1" >"$CACHE/pip-$1.log" 2>&1 \
            || { cat "$CACHE/pip-$1.log" >&2; fail "pip install kubernetes-validate==$1 failed"; }
    fi
    echo "$dir"
}
# Kubernetes version -> the package that has its schemas.
package_for() {
    case "$1" in
        1.24.0 | 1.30.0) echo 1.30.0 ;;
        1.37.0) echo 1.37.0 ;;
        *) fail "no kubernetes-validate package chosen for Kubernetes $1" ;;
    esac
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The overlays live outside deploy/: kustomize refuses an overlay inside the base's
# own directory (a cycle). These are the overlays the README's recipes show.
ln -s "$PWD/deploy" "$WORK/deploy"
overlay() {  # NAME COMPONENT...
    local name="$1"; shift
    mkdir -p "$WORK/$name"
    {
        printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n'
        printf 'resources:\n- ../deploy\ncomponents:\n'
        printf -- '- ../deploy/components/%s\n' "$@"
    } >"$WORK/$name/kustomization.yaml"
}
overlay multi-namespace multi-namespace
overlay s3-archive s3-archive
overlay dir-archive dir-archive
# Components compose; multi-namespace comes last, so that its home namespace is set on
# the objects the components before it add (the check below fails otherwise).
overlay s3-archive-multi-namespace s3-archive multi-namespace
# The TestRun resource and its controller; with multi-namespace last, as the README says.
overlay testruns testruns
overlay testruns-multi-namespace testruns multi-namespace

# target directory | Kubernetes versions
TARGETS=(
    "deploy|1.24.0 1.30.0 1.37.0"
    "$WORK/multi-namespace|1.24.0 1.30.0 1.37.0"
    "$WORK/s3-archive|1.24.0 1.30.0 1.37.0"
    "$WORK/dir-archive|1.24.0 1.30.0 1.37.0"
    "$WORK/s3-archive-multi-namespace|1.24.0 1.30.0 1.37.0"
    "$WORK/testruns|1.24.0 1.30.0 1.37.0"
    "$WORK/testruns-multi-namespace|1.24.0 1.30.0 1.37.0"
)

status=0
for entry in "${TARGETS[@]}"; do
    dir="${entry%%|*}"
    versions="${entry#*|}"
    name="${dir#"$WORK/"}"
    rendered="$WORK/$(basename "$dir").rendered.yaml"
    if ! kubectl kustomize "$dir" >"$rendered" 2>"$WORK/kustomize.err"; then
        cat "$WORK/kustomize.err" >&2
        echo "FAIL $name: kubectl kustomize" >&2
        status=1
        continue
    fi
    count="$(grep -c '^kind:' "$rendered" || true)"
    for version in $versions; do
        venv="$(venv_for "$(package_for "$version")")"
        # --quiet prints only warnings and errors: any output is a failure (a kind
        # without a schema is only a warning to kubernetes-validate).
        if out="$("$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered" 2>&1)" \
            && [[ -z "$out" ]]; then
            echo "ok   $name: $count objects valid against Kubernetes $version (strict)"
        else
            echo "$out" >&2
            echo "FAIL $name: Kubernetes $version" >&2
            status=1
        fi
    done
    # Checks the schemas cannot make (PyYAML comes with kubernetes-validate).
    if ! "$venv/bin/python" - "$rendered" "$name" <<'PY'; then
import sys, yaml

path, name = sys.argv[1], sys.argv[2]
objs = [o for o in yaml.safe_load_all(open(path)) if o]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

by_kind = {}
for o in objs:
    by_kind.setdefault(o["kind"], []).append(o)
deps = by_kind.get("Deployment", [])
check(len(deps) == 1, "exactly one Deployment")
dep = deps[0]
home = dep["metadata"].get("namespace")
pod = dep["spec"]["template"]["spec"]
labels = dep["spec"]["template"]["metadata"]["labels"]
check(dep["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "sparktest-k8s"},
      "the Deployment selects app.kubernetes.io/name=sparktest-k8s")
check(dep["spec"]["replicas"] >= 2, "at least 2 replicas")
(c,) = pod["containers"]
env = {e["name"]: e.get("value") for e in c.get("env", [])}

# Probes: the service's own endpoints, never the apiserver-dependent health.
check(c["livenessProbe"]["httpGet"]["path"] == "/livez", "liveness probe on /livez")
check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe on /readyz")
for p in ("livenessProbe", "readinessProbe", "startupProbe"):
    check(c.get(p, {}).get("httpGet", {}).get("path") != "/api/k8s/health",
          f"{p} must not be /api/k8s/health (it follows the apiserver)")

# Drain: the kubelet's SIGKILL comes after the unready delay and the whole drain.
grace = int(env.get("SHUTDOWN_GRACE_SECONDS") or 20)
delay = int(env.get("SHUTDOWN_DELAY_SECONDS") or 0)
check(delay > 0, "SHUTDOWN_DELAY_SECONDS lets the endpoint leave the Service before the listener closes")
tgps = pod.get("terminationGracePeriodSeconds", 30)
check(tgps >= delay + grace + 5,
      f"terminationGracePeriodSeconds {tgps} < unready delay {delay} + drain {grace} + 5")

# Hardening.
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
check(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), "runAsNonRoot")
check((psc.get("seccompProfile") or csc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
      "seccomp RuntimeDefault")
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
for k in ("requests", "limits"):
    for r in ("cpu", "memory"):
        check(r in c.get("resources", {}).get(k, {}), f"resources.{k}.{r}")
check(env.get("LOG_FORMAT") == "json", "LOG_FORMAT=json")

# Selectors of the Service, the PodDisruptionBudget and the NetworkPolicy match the pods.
def selects(sel):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())
for o in by_kind.get("Service", []):
    check(selects(o["spec"]["selector"]), f"Service {o['metadata']['name']} selects the pods")
for o in by_kind.get("PodDisruptionBudget", []):
    check(selects(o["spec"]["selector"]["matchLabels"]), "PodDisruptionBudget selects the pods")
for o in by_kind.get("NetworkPolicy", []):
    check(selects(o["spec"]["podSelector"]["matchLabels"]), "NetworkPolicy selects the pods")
for k in ("ServiceAccount", "Service", "PodDisruptionBudget", "NetworkPolicy", "Role", "RoleBinding"):
    check(k in by_kind, f"a {k}")
# Every object but the extra namespaces' RBAC is in the Deployment's namespace (none set:
# `kubectl apply -n`); one without would land in whatever namespace kubectl defaults to.
# Cluster-scoped objects (the TestRun CRD) have none.
CLUSTER_SCOPED = ("CustomResourceDefinition",)
for o in objs:
    if o["kind"] in CLUSTER_SCOPED:
        check("namespace" not in o["metadata"], f"{o['kind']} {o['metadata']['name']} is cluster-scoped: no namespace")
        continue
    if o["kind"] not in ("Role", "RoleBinding") or o["metadata"]["name"] != "sparktest-backend-remote":
        check(o["metadata"].get("namespace") == home,
              f"{o['kind']} {o['metadata']['name']} is in the Deployment's namespace {home}")

# RBAC: every Role of the service has exactly rbac.yaml's rules (the extra namespaces'
# Roles are copied from it), every binding names the Deployment's service account in
# its namespace, and the Deployment runs as that account. The one other Role allowed
# is the TestRun controller's leader election (checked below).
LEADER_ROLE = "sparktest-k8s-leader-election"
sa = pod["serviceAccountName"]
base_roles = [r for r in by_kind.get("Role", []) if r["metadata"]["name"] == "sparktest-backend"]
check(len(base_roles) == 1, "one Role sparktest-backend")
for r in by_kind.get("Role", []):
    if r["metadata"]["name"] == LEADER_ROLE:
        continue
    check(r.get("rules") and r["rules"] == base_roles[0]["rules"],
          f"Role {r['metadata'].get('namespace')}/{r['metadata']['name']} has rbac.yaml's rules (with multi-namespace, list it last)")
roles = {(r["metadata"].get("namespace"), r["metadata"]["name"]) for r in by_kind.get("Role", [])}
for b in by_kind.get("RoleBinding", []):
    ns = b["metadata"].get("namespace")
    check((ns, b["roleRef"]["name"]) in roles, f"RoleBinding {ns}/{b['metadata']['name']}: its Role exists in its namespace")
    for s in b["subjects"]:
        check(s["kind"] == "ServiceAccount" and s["name"] == sa
              and s.get("namespace", ns) == home,
              f"RoleBinding {ns}/{b['metadata']['name']} binds {home}/{sa}")
if "ALLOWED_NAMESPACES" in env:
    allowed = env["ALLOWED_NAMESPACES"].split(",")
    bound = {b["metadata"].get("namespace") for b in by_kind.get("RoleBinding", [])}
    check(set(allowed) == bound, f"ALLOWED_NAMESPACES {allowed} = the namespaces with a RoleBinding {sorted(bound, key=str)}")
    check(allowed[0] == home, "ALLOWED_NAMESPACES starts with the home namespace")

# The log archive. Credentials only ever from a Secret, never a literal in a manifest.
from_secret = {e["name"] for e in c.get("env", [])
               if "secretKeyRef" in (e.get("valueFrom") or {})}
for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    check(k not in env or k in from_secret, f"{k} comes from a Secret (secretKeyRef), not a value")
archive = env.get("LOG_ARCHIVE")
mounts = {m["mountPath"].rstrip("/") or "/": m for m in c.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
def writable(path):
    # The mount holding `path`, writable: the root filesystem is read-only.
    best = max((p for p in mounts if path == p or path.startswith(p.rstrip("/") + "/")),
               key=len, default=None)
    return best is not None and not mounts[best].get("readOnly", False) \
        and not any(k in volumes.get(mounts[best]["name"], {}) for k in ("secret", "configMap"))
if archive and archive != "off":
    # Runs are collected into spill files in the temporary directory first.
    check(writable(env.get("TMPDIR") or "/tmp"), "LOG_ARCHIVE is on: the temporary directory (spill files) is a writable volume")
    if archive.startswith("s3://"):
        check({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= from_secret,
              "LOG_ARCHIVE=s3://: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from a Secret")
        check(any(o["metadata"]["name"] != "sparktest-k8s" for o in by_kind.get("NetworkPolicy", [])),
              "LOG_ARCHIVE=s3://: a NetworkPolicy lets the pods reach the store")
    else:
        check(archive.startswith("/") and writable(archive), f"LOG_ARCHIVE={archive} is on a writable volume")
        claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes.values() if "persistentVolumeClaim" in v}
        check(claims <= {o["metadata"]["name"] for o in by_kind.get("PersistentVolumeClaim", [])},
              f"every claim the pods mount is rendered: {sorted(claims)}")
# The TestRun resource (components/testruns): the CRD is structural as 1.24 and later
# require (the schemas above check the CRD object, not the schema inside it), matches
# what the controller reads and writes, and the controller can do its work.
def grants(rules, group, resource, verb, name=None):
    return any(group in r.get("apiGroups", []) and resource in r.get("resources", [])
               and verb in r.get("verbs", [])
               and (not r.get("resourceNames") or name in r["resourceNames"]) for r in rules)

FORBIDDEN = ("$ref", "$schema", "definitions", "dependencies", "id", "additionalItems",
             "patternProperties", "x-kubernetes-validations")  # the last: CEL, not in 1.24
TYPES = ("object", "array", "string", "integer", "number", "boolean")
def structural(node, where):
    check(isinstance(node, dict), f"{where}: a schema")
    if not isinstance(node, dict):
        return
    for k in FORBIDDEN:
        check(k not in node, f"{where}: {k} is not allowed (structural schema for 1.24 and later)")
    check(not node.get("uniqueItems"), f"{where}: uniqueItems is not allowed")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    if int_or_string:
        check("type" not in node, f"{where}: x-kubernetes-int-or-string has no type")
        check(node.get("anyOf", [{"type": "integer"}, {"type": "string"}]) == [{"type": "integer"}, {"type": "string"}],
              f"{where}: x-kubernetes-int-or-string allows only anyOf [integer, string]")
    elif node.get("x-kubernetes-preserve-unknown-fields") is not True:
        check(node.get("type") in TYPES, f"{where}: every node has a type")
    for junctor in ("allOf", "anyOf", "oneOf", "not"):
        subs = node.get(junctor)
        subs = [subs] if junctor == "not" and subs else (subs or [])
        for sub in subs:
            for k in sub:
                check(k not in ("description", "default", "additionalProperties", "nullable", "title")
                      and not k.startswith("x-kubernetes") and (k != "type" or int_or_string),
                      f"{where}.{junctor}: {k} is not allowed inside a junctor")
    check(not ("properties" in node and "additionalProperties" in node),
          f"{where}: properties and additionalProperties exclude each other")
    for name, sub in (node.get("properties") or {}).items():
        structural(sub, f"{where}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        structural(node["additionalProperties"], f"{where}.*")
    if node.get("type") == "array":
        check(isinstance(node.get("items"), dict), f"{where}: an array has one items schema")
        if isinstance(node.get("items"), dict):
            structural(node["items"], f"{where}[]")
            if node.get("x-kubernetes-list-type") == "map":
                keys = node.get("x-kubernetes-list-map-keys") or []
                check(keys and set(keys) <= set(node["items"].get("required", [])),
                      f"{where}: a map list's keys are required fields of its items")

def schema_at(schema, json_path):
    node = schema
    for part in json_path.strip(".").split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node

crds = by_kind.get("CustomResourceDefinition", [])
watching = env.get("WATCH_TESTRUNS") == "true"
check(watching == bool(crds), "WATCH_TESTRUNS=true exactly when the TestRun CRD is rendered (components/testruns)")
for crd in crds:
    spec = crd["spec"]
    names = spec["names"]
    check(crd["metadata"]["name"] == f"{names['plural']}.{spec['group']}", "a CRD's name is plural.group")
    check((spec["group"], names["kind"], names["plural"], spec["scope"]) == ("sparktest.dev", "TestRun", "testruns", "Namespaced"),
          "the TestRun CRD: sparktest.dev, TestRun, testruns, namespaced")
    check("strun" in names.get("shortNames", []), "short name strun")
    check(not spec.get("preserveUnknownFields"), "unknown fields are pruned")
    check([v["name"] for v in spec["versions"] if v.get("storage")] == ["v1alpha1"], "v1alpha1 is the one storage version")
    for v in spec["versions"]:
        schema = v["schema"]["openAPIV3Schema"]
        where = f"{v['name']}.openAPIV3Schema"
        structural(schema, where)
        check(schema.get("type") == "object", f"{where}: the root is an object")
        check(schema.get("properties", {}).get("metadata") == {"type": "object"},
              f"{where}: metadata is only `type: object` (the apiserver owns its schema)")
        check(v.get("subresources", {}).get("status") == {} and "status" in schema["properties"],
              f"{v['name']}: the status subresource, and a status schema")
        status = schema["properties"]["status"]["properties"]
        check(status.get("phase", {}).get("enum") == ["Pending", "Running", "Succeeded", "Failed", "TimedOut"],
              f"{v['name']}: the phases")
        check(set(status) == {"phase", "runId", "jobName", "startedAt", "finishedAt", "observedGeneration", "conditions"},
              f"{v['name']}: every status field the controller writes, and no other (a pruned field would be written again and again)")
        columns = {c["name"]: c["jsonPath"] for c in v.get("additionalPrinterColumns", [])}
        check(columns == {"Phase": ".status.phase", "Job": ".status.jobName", "Age": ".metadata.creationTimestamp"},
              f"{v['name']}: printer columns phase, job, age")
        for name_, path in columns.items():
            check(path.startswith(".metadata.") or schema_at(schema, path) is not None,
                  f"{v['name']}: printer column {name_} ({path}) is in the schema")
if crds:
    base = base_roles[0]["rules"] if base_roles else []
    for resource, verbs in (("testruns", ("get", "list", "watch")), ("testruns/status", ("update",))):
        for verb in verbs:
            check(grants(base, "sparktest.dev", resource, verb), f"the Role grants {verb} sparktest.dev/{resource}")
    for verb in ("create", "get", "list", "watch"):
        check(grants(base, "batch", "jobs", verb), f"the Role grants {verb} jobs (the controller's Jobs and their watch)")
    leader = [r for r in by_kind.get("Role", []) if r["metadata"]["name"] == LEADER_ROLE]
    check(len(leader) == 1 and leader[0]["metadata"].get("namespace") == home,
          f"one Role {LEADER_ROLE}, in the home namespace")
    for verb in ("create", "get", "update"):
        check(bool(leader) and grants(leader[0]["rules"], "coordination.k8s.io", "leases", verb, "sparktest-k8s-testruns"),
              f"{LEADER_ROLE} grants {verb} of the Lease sparktest-k8s-testruns")
    check(any(b["roleRef"]["name"] == LEADER_ROLE and b["metadata"].get("namespace") == home
              for b in by_kind.get("RoleBinding", [])), f"{LEADER_ROLE} is bound in the home namespace")

# No Secret with a value is ever rendered: secrets are created with kubectl.
for o in by_kind.get("Secret", []):
    check(not o.get("data") and not o.get("stringData"), f"Secret {o['metadata']['name']} carries no value")

for e in errors:
    print(f"FAIL {name}: {e}", file=sys.stderr)
if not errors:
    print(f"ok   {name}: probes, drain, hardening, selectors, RBAC, archive and TestRun resource consistent")
sys.exit(1 if errors else 0)
PY
        status=1
    fi
done
exit "$status"
