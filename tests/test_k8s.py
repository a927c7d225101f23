"""deploy/k8s/ agrees with settings.py and docker-compose.yml, and is valid Kubernetes.

Each overlay is rendered here in Python (``_render``: resources and secretGenerator files,
all the kustomization uses, and it refuses anything else), with the credentials written by
the same generator ``make compose-secrets`` runs. Where ``kubectl`` is installed the render
is compared with ``kubectl kustomize``; every object is validated against the Kubernetes
JSON schemas of ``kubernetes-validate`` (shipped with the package, no network) for the
oldest and newest Kubernetes the manifests claim. No cluster runs here.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from spoton_facade.routes.health import HEALTH_PATH
from spoton_facade.settings import FacadeSettings
from spoton_facade.settings import env_names as facade_env_names
from spoton_inference.compose_secrets import generate
from spoton_inference.settings import FILE_SUFFIX, Settings, env_names

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("demo", "external")
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
# gRPC probes are GA since 1.27; the newest is the newest schema set kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.27", "1.37")
# What the renderer implements; a kustomization using more must be rendered some other way.
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "secretGenerator", "generatorOptions"}
SECRETS_MOUNT = Path("/run/secrets")
# A pod name the downward API would give (SPOTON_REPLICA_ID is the pod's metadata.name).
POD_NAME = "inference-5d8f7c9b6-x2x7q"
# The only settings whose value here differs from compose's, and why.
DIFFERS_FROM_COMPOSE = {
    # Compose runs one inference container; here each replica needs its own name ...
    "SPOTON_REPLICA_ID": "each inference pod's own name, from the downward API",
    # ... and its own journal, generated keys and media cache (media itself is shared).
    "SPOTON_DATA_DIR": "each inference pod's own directory on the shared volume",
    "SPOTON_SINKS_PATH": "deploy/sinks.json targets compose's mosquitto, which the manifests do not run",
    # ... but uploads and job directories are every replica's (compose's "" is <data dir>/jobs, the same /data/jobs).
    "SPOTON_JOBS_DIR": "shared by every replica, outside the per-pod data directories",
    # Compose runs MinIO; here recordings are in the site's own object store (or none).
    "SPOTON_S3_ENDPOINT_URL": "the site's own S3-compatible store, which the manifests do not run",
    "SPOTON_S3_ACCESS_KEY_ID": "the site's own key, where compose uses MinIO's root user",
}
BUILT_IMAGE = re.compile(r"docker build -f (\S+) -t (\S+) \.")
# Names the code reads that are no service setting (as in tests/test_compose.py).
CLIENT_ONLY = {"SPOTON_API_KEY", "SPOTON_STACK_FILE", "SPOTON_TRACKEVAL_VENV"}


def _render(directory: Path) -> list[dict]:
    """The objects ``kubectl kustomize directory`` prints, for the fields this repo uses."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if unknown := set(spec) - KUSTOMIZATION_FIELDS:
        raise ValueError(f"{directory}: the test's renderer does not implement {sorted(unknown)}")
    objects: list[dict] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        objects += _render(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    generators = spec.get("secretGenerator", [])
    if generators and spec.get("generatorOptions") != {"disableNameSuffixHash": True}:
        raise ValueError(f"{directory}: hashed Secret names are not implemented by the test's renderer")
    for generator in generators:
        if set(generator) != {"name", "files"}:
            raise ValueError(f"{directory}: only a secretGenerator's name and files are implemented")
        data = {Path(f).name: base64.b64encode((directory / f).read_bytes()).decode() for f in generator["files"]}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": generator["name"]}}
        objects.append(secret | {"type": "Opaque", "data": data})
    return objects


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each overlay's directory in a copy of deploy/k8s, with the secret files a user creates."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, root)
    for overlay in OVERLAYS:
        generate(root / "overlays" / overlay / "secrets")
    return {overlay: root / "overlays" / overlay for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def rendered(trees: dict[str, Path]) -> dict[str, list[dict]]:
    return {overlay: _render(path) for overlay, path in trees.items()}


def _one(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _container(objects: list[dict], workload: str, kind: str = "Deployment") -> dict:
    [container] = _one(objects, kind, workload)["spec"]["template"]["spec"]["containers"]
    return container


def _ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def _env(objects: list[dict], container: dict) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env (with
    ``$(VAR)`` references expanded and the downward API's pod name)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= _one(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
    for var in container.get("env", []):
        if "valueFrom" in var:
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, var
            env[var["name"]] = POD_NAME
        else:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], var["value"])
    return env


def _declared_env(objects: list[dict], container: dict) -> dict[str, str]:
    """The names and literal values the manifests give, references unexpanded."""
    env = {}
    for source in container.get("envFrom", []):
        env |= _one(objects, "ConfigMap", source["configMapRef"]["name"])["data"]
    return env | {v["name"]: v.get("value", "<from the downward API>") for v in container.get("env", [])}


def _compose_env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service]["environment"].items()}


def _published(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def _secret_files(objects: list[dict], container: dict, pod: dict, into: Path) -> Path:
    """The Secret mounted at /run/secrets in ``container``, written out as the kubelet would."""
    [mount] = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == SECRETS_MOUNT]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = _one(objects, "Secret", volume["secret"]["secretName"])
    into.mkdir(parents=True, exist_ok=True)
    for key, value in secret["data"].items():
        (into / key).write_bytes(base64.b64decode(value))
    return into


def _inference_settings(objects: list[dict], into: Path) -> Settings:
    pod = _one(objects, "Deployment", "inference")["spec"]["template"]["spec"]
    container = _container(objects, "inference")
    secrets_dir = _secret_files(objects, container, pod, into)
    env = {
        k: str(secrets_dir / Path(v).relative_to(SECRETS_MOUNT)) if k.endswith(FILE_SUFFIX) else v
        for k, v in _env(objects, container).items()
    }
    return Settings.from_env(env)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed; the Python render stands")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_render_is_what_kubectl_kustomize_prints(trees, rendered, overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", str(trees[overlay])], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(_decoded, yaml.safe_load_all(out)), key=key) == sorted(map(_decoded, rendered[overlay]), key=key)


def _decoded(obj: dict) -> dict:
    """A Secret's data decoded (kubectl wraps its base64 in lines), anything else as it is."""
    if obj["kind"] != "Secret":
        return obj
    return obj | {"data": {k: base64.b64decode(v) for k, v in obj["data"].items()}}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(rendered, overlay, version):
    invalid = []
    for obj in rendered[overlay]:
        try:
            # strict: a misspelt or misplaced field is an error, not silently ignored.
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            invalid.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}")
    assert invalid == []


def test_the_demo_adds_the_stores_and_external_only_the_credentials(rendered):
    names = {overlay: {(o["kind"], o["metadata"]["name"]) for o in objs} for overlay, objs in rendered.items()}
    stores = {(kind, name) for kind in ("StatefulSet", "Service") for name in ("timescaledb", "redis")}
    assert names["demo"] - names["external"] == stores | {("Secret", "spoton-store-passwords")}
    assert names["external"] <= names["demo"]
    for name in ("timescaledb", "redis"):
        [claim] = _one(rendered["demo"], "StatefulSet", name)["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] in {
            m["name"] for m in _container(rendered["demo"], name, "StatefulSet")["volumeMounts"]
        }
    expected = {(k, n) for k in ("Deployment", "Service") for n in ("inference", "facade", "triton")}
    expected |= {("PodDisruptionBudget", "inference"), ("PodDisruptionBudget", "facade")}
    expected |= {("HorizontalPodAutoscaler", "facade"), ("ConfigMap", "spoton-env"), ("Secret", "spoton-secrets")}
    assert names["external"] == expected | {("PersistentVolumeClaim", "spoton-data")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_spoton_variable_set_here_is_a_setting(rendered, overlay):
    settings = set(env_names()) | set(facade_env_names())
    for workload in ("inference", "facade"):
        given = _declared_env(rendered[overlay], _container(rendered[overlay], workload))
        spoton = {name.removesuffix(FILE_SUFFIX) for name in given if name.startswith("SPOTON_")}
        assert sorted(spoton - settings) == [], workload


@pytest.mark.parametrize("workload", ["inference", "facade"])
def test_the_environment_is_composes_but_for_named_reasons(rendered, workload):
    objects = rendered["external"]
    ours = _declared_env(objects, _container(objects, workload))
    theirs = _compose_env(workload)
    assert set(ours) == set(theirs)
    differing = {name for name in theirs if ours[name] != theirs[name]}
    assert differing <= set(DIFFERS_FROM_COMPOSE), sorted(differing - set(DIFFERS_FROM_COMPOSE))
    if workload == "inference":  # every named reason is needed: the list cannot go stale
        assert differing == set(DIFFERS_FROM_COMPOSE)


def test_every_variable_the_code_reads_reaches_the_inference_pods(rendered):
    names = set()
    for package in ("inference", "facade", "clients"):
        for path in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r"[\"']\$?\{?(SPOTON_[A-Z0-9_]+)", path.read_text()))
    assert names, "the scan found no settings at all"
    objects = rendered["external"]
    given = {n.removesuffix(FILE_SUFFIX) for n in _declared_env(objects, _container(objects, "inference"))}
    assert names <= given | {"SPOTON_"} | CLIENT_ONLY, sorted(names - given)
    assert set(env_names()) <= given


def test_settings_parse_the_pod_environment_and_the_addresses_line_up(rendered, tmp_path):
    objects = rendered["demo"]
    s = _inference_settings(objects, tmp_path / "secrets")
    assert s.admin_api_key.startswith("spk_") and s.jwt_secret and s.secret_keys
    assert s.replica_id == POD_NAME and s.data_dir == Path("/data/replicas") / POD_NAME
    f = FacadeSettings.from_env(_env(objects, _container(objects, "facade")))
    # Shared: the media the inference replicas publish is what the facades serve.
    assert f.media_root == s.media_root and s.media_root.is_relative_to(f.data_dir)
    assert s.bind_host == s.grpc_host == f.facade_host == "0.0.0.0"
    assert f.inference_target == s.inference_target

    def service_port(service: str, port_name: str) -> int:
        [port] = [p for p in _one(objects, "Service", service)["spec"]["ports"] if p["name"] == port_name]
        return port["port"]

    assert s.inference_target == f"inference:{service_port('inference', 'grpc')}"
    assert s.triton_grpc_url == f"triton:{service_port('triton', 'grpc')}"
    assert urlsplit(s.triton_http_url).netloc == f"triton:{service_port('triton', 'http')}"
    assert urlsplit(s.postgres_dsn).hostname == "timescaledb"
    assert urlsplit(s.postgres_dsn).port == service_port("timescaledb", "postgres")
    assert urlsplit(s.redis_url).hostname == "redis" and urlsplit(s.redis_url).port == service_port("redis", "redis")
    password = (tmp_path / "secrets" / "spoton_postgres_dsn").read_text()
    assert urlsplit(password).password == _store_password(objects, "postgres_password")
    assert urlsplit(s.redis_url).password == _store_password(objects, "redis_password")

    assert _ports(_container(objects, "inference")) == {"grpc": s.grpc_port, "metrics": s.metrics_port}
    assert _ports(_container(objects, "facade")) == {"http": f.facade_port}
    expected = {
        ("inference", "Deployment"): _published("inference"),
        ("facade", "Deployment"): _published("facade"),
        ("triton", "Deployment"): _published("triton"),
        ("timescaledb", "StatefulSet"): _published("timescaledb"),
        ("redis", "StatefulSet"): _published("redis"),
    }
    for (workload, kind), published in expected.items():
        container = _container(objects, workload, kind)
        assert set(_ports(container).values()) == published, workload
        service = _one(objects, "Service", workload)["spec"]
        assert {p["port"] for p in service["ports"]} == published, workload
        assert {p["targetPort"] for p in service["ports"]} <= set(_ports(container)), workload


def _store_password(objects: list[dict], key: str) -> str:
    return base64.b64decode(_one(objects, "Secret", "spoton-store-passwords")["data"][key]).decode().strip()


def _probe_port(container: dict, probe: dict) -> int:
    port = probe["port"]
    return _ports(container)[port] if isinstance(port, str) else port


def test_probes_ask_the_health_endpoints_on_the_right_ports(rendered, tmp_path):
    objects = rendered["external"]
    s = _inference_settings(objects, tmp_path)
    inference = _container(objects, "inference")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        # grpc.health.v1 on the gRPC port, the overall service "" (no service named).
        assert inference[kind]["grpc"] == {"port": s.grpc_port}, kind
    facade = _container(objects, "facade")
    f = FacadeSettings.from_env(_env(objects, facade))
    assert facade["readinessProbe"]["httpGet"]["path"] == HEALTH_PATH
    assert _probe_port(facade, facade["readinessProbe"]["httpGet"]) == f.facade_port
    assert _probe_port(facade, facade["livenessProbe"]["tcpSocket"]) == f.facade_port
    triton = _container(objects, "triton")
    assert "/v2/health/ready" in " ".join(SERVICES["triton"]["healthcheck"]["test"])
    for kind in ("startupProbe", "readinessProbe"):
        assert triton[kind]["httpGet"]["path"] == "/v2/health/ready", kind
        assert _probe_port(triton, triton[kind]["httpGet"]) == urlsplit(s.triton_http_url).port, kind
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_images_and_store_settings_are_composes(rendered):
    objects = rendered["demo"]
    for name in ("timescaledb", "redis"):
        assert _container(objects, name, "StatefulSet")["image"] == SERVICES[name]["image"]
    for name in ("inference", "facade", "triton"):
        # Compose builds these; the name is the one the Dockerfile's own build line tags.
        dockerfile = SERVICES[name]["build"]["dockerfile"]
        [(path, tag)] = BUILT_IMAGE.findall((REPO / dockerfile).read_text())
        assert path == dockerfile and _container(objects, name)["image"] == tag
    postgres = {v["name"]: v["value"] for v in _container(objects, "timescaledb", "StatefulSet")["env"]}
    assert postgres == SERVICES["timescaledb"]["environment"]
    redis_command = " ".join(_container(objects, "redis", "StatefulSet")["command"])
    assert redis_command == " ".join(SERVICES["redis"]["command"])  # both escape $ as $$


def test_resources_scaling_and_disruption_budgets(rendered):
    objects = rendered["demo"]
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    for workload in workloads:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), workload["metadata"]["name"]
            assert "memory" in container["resources"]["limits"], workload["metadata"]["name"]
    gpu = _container(objects, "triton")["resources"]
    assert gpu["requests"]["nvidia.com/gpu"] == gpu["limits"]["nvidia.com/gpu"] == 1
    assert SERVICES["triton"]["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 1
    assert _one(objects, "Deployment", "inference")["spec"]["replicas"] == 2
    hpa = _one(objects, "HorizontalPodAutoscaler", "facade")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "facade"}
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and "cpu" in _container(objects, "facade")["resources"]["requests"]
    pods = {w["metadata"]["name"]: w["spec"]["template"]["metadata"]["labels"] for w in workloads}

    def selects(selector: dict[str, str]) -> set[str]:
        return {name for name, labels in pods.items() if selector.items() <= labels.items()}

    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    assert {b["metadata"]["name"] for b in budgets} == {"inference", "facade"}
    for budget in budgets:
        assert selects(budget["spec"]["selector"]["matchLabels"]) == {budget["metadata"]["name"]}
        assert (
            budget["spec"]["minAvailable"] < _one(objects, "Deployment", budget["metadata"]["name"])["spec"]["replicas"]
        )
    for service in (o for o in objects if o["kind"] == "Service"):
        assert selects(service["spec"]["selector"]) == {service["metadata"]["name"]}


def test_secrets_are_files_the_user_creates_and_none_is_committed(rendered, tmp_path):
    generate(tmp_path)
    written = {path.name for path in tmp_path.iterdir()}
    # mqtt_password belongs to compose's mosquitto, which the manifests do not run.
    compose_only = {"mqtt_password"}
    secrets = {o["metadata"]["name"]: set(o["data"]) for o in rendered["demo"] if o["kind"] == "Secret"}
    assert set().union(*secrets.values()) == written - compose_only
    assert set(COMPOSE["secrets"]) == written | compose_only
    objects = rendered["external"]
    inference = _container(objects, "inference")
    files = {v for k, v in _declared_env(objects, inference).items() if k.endswith(FILE_SUFFIX)}
    keys = set(_one(objects, "Secret", "spoton-secrets")["data"])
    assert files and all(Path(f).parent == SECRETS_MOUNT and Path(f).name in keys for f in files)
    for manifest in K8S.rglob("*.yaml"):
        assert all(d.get("kind") != "Secret" for d in yaml.safe_load_all(manifest.read_text()) if d), manifest
    for overlay in OVERLAYS:
        secret_file = K8S / "overlays" / overlay / "secrets" / "spoton_jwt_secret"
        ignored = subprocess.run(["git", "check-ignore", "-q", str(secret_file)], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{secret_file} would be committed"
