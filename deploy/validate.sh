#!/usr/bin/env bash
# Validates the deploy/ artefacts on a machine without a container engine or a cluster:
#   - compose.yaml: PostgreSQL 16 with a pg_isready healthcheck, two agentauth replicas wired
#     to it (one issuer, keys in the database, the KEK as a secret), a proxy on port 8080;
#   - kubernetes/: every manifest parses, the kinds and the wiring between them (Deployment ->
#     ConfigMap, Secret, Service, PodDisruptionBudget), the ConfigMap's agentauth.toml parses
#     as TOML; `kubectl kustomize` renders it when kubectl is installed;
#   - Containerfile: multi-stage, a non-root USER, a HEALTHCHECK on /readyz; .dockerignore;
#   - systemd/agentauth.service: `systemd-analyze verify` (any warning fails) and its offline
#     security score when systemd-analyze is installed, and the hardening settings always.
# YAML is parsed with PyYAML: from .venv (installed there if missing) or from .venv-deploy.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n==> %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
fail() {
  printf '  FAIL %s\n' "$*" >&2
  failures=$((failures + 1))
}
failures=0

# --- Python with PyYAML and a TOML parser --------------------------------------------------
section "Python with PyYAML"
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  if [ ! -x .venv-deploy/bin/python ]; then
    python3 -m venv .venv-deploy
  fi
  PY=.venv-deploy/bin/python
fi
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  "$PY" -m pip install -q pyyaml
fi
if ! "$PY" -c 'import tomllib' 2>/dev/null && ! "$PY" -c 'import tomli' 2>/dev/null; then
  "$PY" -m pip install -q tomli
fi
ok "$PY ($("$PY" -c 'import sys, yaml; print(f"Python {sys.version.split()[0]}, PyYAML {yaml.__version__}")'))"

# --- compose, Kubernetes, Containerfile (Python) -------------------------------------------
PYTHONUNBUFFERED=1 "$PY" - <<'PY' || failures=$((failures + 1))
import json
import os
import re
import sys

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

errors = []


def check(cond, what):
    print(f"  {'ok  ' if cond else 'FAIL'} {what}", flush=True)
    if not cond:
        errors.append(what)
    return bool(cond)


def section(title):
    print(f"\n==> {title}")


def words(value):
    """A healthcheck/command as one string, whether a list or a string."""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value or "")


def env_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# Containerfile first: the Kubernetes checks compare against its USER.
section("Containerfile and .dockerignore")
image_uid = None
with open("deploy/Containerfile", encoding="utf-8") as f:
    raw = f.read()
# Logical instructions: comments and parser directives dropped, continuations joined.
lines, current = [], ""
for line in raw.splitlines():
    stripped = line.strip()
    if not current and (not stripped or stripped.startswith("#")):
        continue
    if current and stripped.startswith("#"):
        continue
    if stripped.endswith("\\"):
        current += stripped[:-1] + " "
        continue
    current += stripped
    lines.append(current)
    current = ""
instructions = []
for line in lines:
    keyword, _, rest = line.partition(" ")
    instructions.append((keyword.upper(), rest.strip()))
stages = []
for keyword, rest in instructions:
    if keyword == "FROM":
        stages.append({"from": rest, "body": []})
    elif stages:
        stages[-1]["body"].append((keyword, rest))
check(len(stages) >= 2, f"multi-stage build ({len(stages)} stages)")
if stages:
    builder, final = stages[0], stages[-1]
    check(
        re.fullmatch(r"(docker\.io/(library/)?)?rust:1-bookworm\s+AS\s+builder", builder["from"], re.I),
        f"builder stage is rust:1-bookworm AS builder ({builder['from']})",
    )
    check(
        any(k == "RUN" and "cargo build --release --locked" in r for k, r in builder["body"]),
        "builder runs cargo build --release --locked",
    )
    check("rust:" not in final["from"], f"runtime stage is not the toolchain image ({final['from']})")
    body = final["body"]
    check(any(k == "COPY" and "--from=builder" in r for k, r in body), "runtime copies the binary from the builder")
    users = [r for k, r in body if k == "USER"]
    user = users[-1].split(":")[0] if users else ""
    check(user not in ("", "root", "0"), f"runtime runs as a non-root USER ({users[-1] if users else 'none'})")
    if user.isdigit():
        image_uid = int(user)
    health = [r for k, r in body if k == "HEALTHCHECK"]
    check(health and "CMD" in health[-1] and "/readyz" in health[-1], "HEALTHCHECK probes /readyz")
    if health:
        m = re.search(r"CMD\s+(\[.*\])", health[-1])
        probe = json.loads(m.group(1)) if m else []
        tool = probe[0] if probe else ""
        installed = any(k == "RUN" and re.search(rf"\binstall\b.*\b{re.escape(tool)}\b", r) for k, r in body)
        check(
            tool.startswith("/usr/local/bin/agentauth") or installed,
            f"the HEALTHCHECK's program ({tool or 'none'}) is installed in the runtime stage",
        )
    check(any(k == "EXPOSE" and "8080" in r.split() for k, r in body), "EXPOSE 8080")
    check(any(k == "VOLUME" and "/var/lib/agentauth" in r for k, r in body), "VOLUME /var/lib/agentauth")

    def exec_form(keyword):
        found = [r for k, r in body if k == keyword]
        try:
            return json.loads(found[-1]) if found else None
        except json.JSONDecodeError:
            return None

    check(exec_form("ENTRYPOINT") == ["agentauth"], 'ENTRYPOINT ["agentauth"]')
    cmd = " ".join(exec_form("CMD") or [])
    check(
        cmd.startswith("serve") and "--bind 0.0.0.0:8080" in cmd and "--data-dir /var/lib/agentauth" in cmd,
        f"CMD serves on 0.0.0.0:8080 with the data dir /var/lib/agentauth ({cmd})",
    )
with open(".dockerignore", encoding="utf-8") as f:
    ignored = {l.strip().rstrip("/") for l in f if l.strip() and not l.startswith("#")}
for pattern in ["target", ".venv", "*.db", "admin-credentials.json", "keys/*.pem", "tls"]:
    check(pattern in ignored, f".dockerignore excludes {pattern}")

# ----------------------------------------------------------------------------------------
section("compose.yaml")
with open("deploy/compose.yaml", encoding="utf-8") as f:
    compose_text = f.read()
try:
    compose = yaml.safe_load(compose_text)
except yaml.YAMLError as e:
    compose = {}
    check(False, f"compose.yaml parses as YAML ({e})")
services = compose.get("services") or {}
check(isinstance(services, dict) and services, f"parses; services: {', '.join(services)}")
check("head -c 32 /dev/urandom | base64 > kek.b64" in compose_text, "says how to make the KEK")

pg = services.get("postgres") or {}
check(re.search(r"(^|/)postgres:16", str(pg.get("image", ""))), f"postgres runs PostgreSQL 16 ({pg.get('image')})")
check("pg_isready" in words((pg.get("healthcheck") or {}).get("test")), "postgres has a pg_isready healthcheck")

replicas = {n: s for n, s in services.items() if "AGENTAUTH_DATABASE_URL" in env_of(s)}
check(len(replicas) == 2, f"two agentauth replicas ({', '.join(replicas)})")
top_secrets = compose.get("secrets") or {}
issuers = set()
for name, svc in replicas.items():
    env = env_of(svc)
    build = svc.get("build") or {}
    context = os.path.normpath(os.path.join("deploy", build.get("context", ".")))
    dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
    check(
        context == "." and os.path.normpath(dockerfile) == "deploy/Containerfile",
        f"{name}: built from the repository root with deploy/Containerfile",
    )
    check(
        re.fullmatch(r"postgres(ql)?://agentauth:[^@]+@postgres:5432/agentauth", env["AGENTAUTH_DATABASE_URL"]),
        f"{name}: AGENTAUTH_DATABASE_URL points at the postgres service",
    )
    issuers.add(env.get("AGENTAUTH_BASE_URL"))
    check(env.get("AGENTAUTH_KEYS__STORE") == "database", f"{name}: AGENTAUTH_KEYS__STORE=database")
    kek_file = env.get("AGENTAUTH_KEYS__KEK_FILE", "")
    mounted = {s if isinstance(s, str) else s.get("target", s.get("source")) for s in svc.get("secrets") or []}
    check(
        kek_file.startswith("/run/secrets/") and kek_file.rsplit("/", 1)[-1] in mounted,
        f"{name}: AGENTAUTH_KEYS__KEK_FILE={kek_file} is a mounted secret",
    )
    for secret in mounted:
        check((top_secrets.get(secret) or {}).get("file"), f"{name}: secret {secret} comes from a file")
    cond = ((svc.get("depends_on") or {}).get("postgres") or {}).get("condition")
    check(cond == "service_healthy", f"{name}: depends on postgres being healthy")
    check("/readyz" in words((svc.get("healthcheck") or {}).get("test")), f"{name}: healthcheck on /readyz")
check(issuers == {"http://localhost:8080"}, f"both replicas have the same AGENTAUTH_BASE_URL ({issuers})")

proxies = {n: s for n, s in services.items() if n != "postgres" and n not in replicas}
check(len(proxies) == 1, f"one proxy ({', '.join(proxies)})")
for name, svc in proxies.items():
    check(re.search(r"(^|/)(caddy|nginx)(:|$)", str(svc.get("image", ""))), f"{name}: caddy or nginx ({svc.get('image')})")
    ports = [str(p) for p in svc.get("ports") or []]
    check(any(re.fullmatch(r"(.*:)?8080:\d+(/tcp)?", p) for p in ports), f"{name}: published on host port 8080 ({ports})")
    configs = [v.split(":")[0] for v in svc.get("volumes") or [] if isinstance(v, str) and v.startswith("./")]
    for path in configs:
        path = os.path.normpath(os.path.join("deploy", path))
        exists = os.path.isfile(path)
        check(exists, f"{name}: its configuration {path} exists")
        if exists:
            text = open(path, encoding="utf-8").read()
            for replica in replicas:
                check(f"{replica}:8080" in text, f"{name}: {path} balances onto {replica}:8080")
    check(configs, f"{name}: mounts its configuration")

# ----------------------------------------------------------------------------------------
section("kubernetes/")
kdir = "deploy/kubernetes"
with open(os.path.join(kdir, "kustomization.yaml"), encoding="utf-8") as f:
    kustomization = yaml.safe_load(f)
manifests = sorted(f for f in os.listdir(kdir) if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml")
listed = kustomization.get("resources") or []
check(sorted(listed) == manifests, f"kustomization.yaml lists every manifest ({', '.join(listed)})")
objects = {}
for name in manifests:
    with open(os.path.join(kdir, name), encoding="utf-8") as f:
        try:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            check(False, f"{name}: parses as YAML ({e})")
            continue
    for doc in docs:
        well_formed = isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind") and (doc.get("metadata") or {}).get("name")
        check(well_formed, f"{name}: {doc.get('kind')} {(doc.get('metadata') or {}).get('name')} has apiVersion, kind and name")
        if well_formed:
            objects.setdefault(doc["kind"], []).append(doc)
for kind in ["Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"]:
    check(len(objects.get(kind, [])) == 1, f"one {kind}")


def one(kind):
    return (objects.get(kind) or [{}])[0]


def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


deployment, service, configmap, secret, pdb = (
    one(k) for k in ["Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"]
)
spec = deployment.get("spec") or {}
pod = (spec.get("template") or {}).get("spec") or {}
pod_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
containers = pod.get("containers") or [{}]
c = containers[0]
check(spec.get("replicas") == 2, f"Deployment: replicas {spec.get('replicas')}")
check(subset((spec.get("selector") or {}).get("matchLabels"), pod_labels), "Deployment: selector matches the pod labels")
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}


def probe_port(probe):
    port = ((probe or {}).get("httpGet") or {}).get("port")
    return ports.get(port) if isinstance(port, str) else port


for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
    p = c.get(probe)
    check(
        ((p or {}).get("httpGet") or {}).get("path") == path and probe_port(p) == 8080,
        f"Deployment: {probe} GET {path} on 8080",
    )
resources = c.get("resources") or {}
for bound in ["requests", "limits"]:
    got = resources.get(bound) or {}
    check(got.get("cpu") and got.get("memory"), f"Deployment: resources.{bound} cpu {got.get('cpu')}, memory {got.get('memory')}")
psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
check(csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "Deployment: runAsNonRoot")
uid = csc.get("runAsUser", psc.get("runAsUser"))
check(uid not in (None, 0) and (image_uid is None or uid == image_uid), f"Deployment: runAsUser {uid} (the image's USER: {image_uid})")
check(csc.get("readOnlyRootFilesystem") is True, "Deployment: readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "Deployment: allowPrivilegeEscalation false")
check("ALL" in ((csc.get("capabilities") or {}).get("drop") or []), "Deployment: drops all capabilities")
volumes = {v.get("name"): v for v in pod.get("volumes") or []}
mounts = {m.get("mountPath"): volumes.get(m.get("name"), {}) for m in c.get("volumeMounts") or []}
check("emptyDir" in mounts.get("/var/lib/agentauth", {}), "Deployment: an emptyDir at /var/lib/agentauth")
args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
joined = " ".join(args)
check(joined.startswith("serve") and "--bind 0.0.0.0:8080" in joined and "--data-dir /var/lib/agentauth" in joined,
      f"Deployment: args {joined}")
config_path = args[args.index("--config") + 1] if "--config" in args[:-1] else ""
config_dir, config_key = os.path.split(config_path)
config_volume = (mounts.get(config_dir) or {}).get("configMap") or {}
cm_name = (configmap.get("metadata") or {}).get("name")
check(
    config_path == "/etc/agentauth/agentauth.toml"
    and config_volume.get("name") == cm_name
    and config_key in (configmap.get("data") or {}),
    f"Deployment: --config {config_path or '(missing)'} is the ConfigMap {cm_name}'s {config_key}",
)
secret_name = (secret.get("metadata") or {}).get("name")
secret_keys = set((secret.get("stringData") or {}) | (secret.get("data") or {}))
envs = {e.get("name"): e for e in c.get("env") or []}
for e in envs.values():
    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
    if ref:
        check(ref.get("name") == secret_name and ref.get("key") in secret_keys,
              f"Deployment: {e['name']} from Secret {ref.get('name')} key {ref.get('key')}")
check("secretKeyRef" in ((envs.get("AGENTAUTH_DATABASE_URL") or {}).get("valueFrom") or {}),
      "Deployment: AGENTAUTH_DATABASE_URL comes from the Secret")
kek_path = (envs.get("AGENTAUTH_KEYS__KEK_FILE") or {}).get("value", "")
kek_dir, kek_item = os.path.split(kek_path)
kek_volume = (mounts.get(kek_dir) or {}).get("secret") or {}
items = {i.get("path"): i.get("key") for i in kek_volume.get("items") or []}
check(
    kek_volume.get("secretName") == secret_name and items.get(kek_item) in secret_keys,
    f"Deployment: AGENTAUTH_KEYS__KEK_FILE={kek_path or '(unset)'} is mounted from the Secret",
)
check(all("REPLACE-ME" in str(v) for v in (secret.get("stringData") or {}).values()) and not secret.get("data"),
      "Secret: stringData placeholders only (no real secret in git)")

toml_text = (configmap.get("data") or {}).get("agentauth.toml", "")
try:
    settings = tomllib.loads(toml_text)
    check(True, "ConfigMap: agentauth.toml parses as TOML")
except tomllib.TOMLDecodeError as e:
    settings = {}
    check(False, f"ConfigMap: agentauth.toml parses as TOML ({e})")
check((settings.get("keys") or {}).get("store") == "database", "ConfigMap: keys.store = database")
check(settings.get("log_format") == "json", "ConfigMap: log_format = json")
check(re.match(r"https?://[^/?#]+", str(settings.get("base_url", ""))), f"ConfigMap: base_url {settings.get('base_url')}")

sspec = service.get("spec") or {}
sports = sspec.get("ports") or [{}]
target = sports[0].get("targetPort")
check(sspec.get("type", "ClusterIP") == "ClusterIP", "Service: ClusterIP")
check(sports[0].get("port") == 80 and (ports.get(target) if isinstance(target, str) else target) == 8080,
      f"Service: port 80 -> {target}")
check(subset(sspec.get("selector"), pod_labels), "Service: selector matches the pods")
pspec = pdb.get("spec") or {}
check(pspec.get("minAvailable") == 1 and 1 < (spec.get("replicas") or 0), "PodDisruptionBudget: minAvailable 1 (< replicas)")
check(subset((pspec.get("selector") or {}).get("matchLabels"), pod_labels), "PodDisruptionBudget: selector matches the pods")

if errors:
    print(f"\n{len(errors)} check(s) failed", file=sys.stderr)
    sys.exit(1)
PY

if command -v kubectl >/dev/null 2>&1; then
  if rendered=$(kubectl kustomize deploy/kubernetes 2>&1); then
    kinds=$(printf '%s\n' "$rendered" | "$PY" -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
namespaced = [d for d in docs if d["kind"] != "Namespace"]
assert all(d["metadata"].get("namespace") == "agentauth" for d in namespaced), "objects outside the namespace"
print(" ".join(sorted(d["kind"] for d in docs)))') &&
      ok "kubectl kustomize renders: $kinds" ||
      fail "kubectl kustomize output: $kinds"
  else
    fail "kubectl kustomize deploy/kubernetes: $rendered"
  fi
else
  printf '  skip kubectl kustomize (kubectl is not installed)\n'
fi

# --- systemd -------------------------------------------------------------------------------
section "systemd/agentauth.service"
unit=deploy/systemd/agentauth.service
expected_exec='ExecStart=/usr/local/bin/agentauth serve --data-dir /var/lib/agentauth --bind 127.0.0.1:8080 --log-format json'
if grep -qxF "$expected_exec" "$unit"; then ok "$expected_exec"; else fail "ExecStart is not: $expected_exec"; fi
for setting in \
  'DynamicUser=yes' 'StateDirectory=agentauth' 'UMask=0077' 'NoNewPrivileges=yes' \
  'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' \
  'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' 'ProtectKernelLogs=yes' \
  'ProtectControlGroups=yes' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
  'RestrictNamespaces=yes' 'LockPersonality=yes' 'MemoryDenyWriteExecute=yes' \
  'SystemCallFilter=@system-service' 'SystemCallArchitectures=native' 'CapabilityBoundingSet=' \
  'Restart=on-failure' 'KillSignal=SIGTERM' 'TimeoutStopSec=30'; do
  if grep -qxF "$setting" "$unit"; then ok "$setting"; else fail "missing: $setting"; fi
done

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify needs ExecStart's program to exist: check a copy of the unit whose ExecStart points
  # at a stand-in executable. Any message at all (an unknown key, a bad value) fails.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  cp "$(type -P true)" "$scratch/agentauth"
  sed "s#/usr/local/bin/agentauth#$scratch/agentauth#g" "$unit" >"$scratch/agentauth.service"
  if messages=$(systemd-analyze verify --man=no "$scratch/agentauth.service" 2>&1) && [ -z "$messages" ]; then
    ok "systemd-analyze verify: no messages"
  else
    fail "systemd-analyze verify: ${messages:-exit status $?}"
  fi
  if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    # Exposure on systemd's 0-10 scale; fail above 2.0 ("OK" and better).
    score=$(systemd-analyze security --offline=yes "$scratch/agentauth.service" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if systemd-analyze security --offline=yes --threshold=20 "$scratch/agentauth.service" >/dev/null 2>&1; then
      ok "systemd-analyze security: exposure ${score:-?} (at most 2.0)"
    else
      fail "systemd-analyze security: exposure ${score:-?} is above 2.0"
    fi
  fi
else
  printf '  skip systemd-analyze (not installed): the settings above were checked with grep\n'
fi

# --- secrets stay out of git ---------------------------------------------------------------
section "secrets stay out of git"
if git rev-parse --git-dir >/dev/null 2>&1; then
  for path in deploy/compose/kek.b64 .venv-deploy/bin/python; do
    if git check-ignore -q "$path"; then ok "git ignores $path"; else fail "git does not ignore $path"; fi
  done
else
  printf '  skip (not a git checkout)\n'
fi

if [ "$failures" -gt 0 ]; then
  printf '\ndeploy/validate.sh: %d failure(s)\n' "$failures" >&2
  exit 1
fi
printf '\ndeploy/validate.sh: all checks passed\n'
