"""The Kubernetes example: schema-valid manifests that fit together, and the IAM policy."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "examples" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
# EKS standard-support versions shipped by kubernetes-validate (schemas are bundled: no network).
K8S_VERSIONS = ["1.30.0", "1.33.0"]


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def by_kind(path: Path, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents(path) if doc["kind"] == kind]


def one(path: Path, kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in by_kind(path, kind) if d["metadata"]["name"] == name]
    return doc


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Schemas must come from the package, never from the network."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("kubernetes-validate tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


def test_the_expected_manifests_exist() -> None:
    assert {p.name for p in MANIFESTS} == {
        "xray-daemon.yaml",
        "otel-xray-collector.yaml",
        "otel-xray-shared-store.yaml",
        "app.yaml",
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_in_strict_mode(path: Path, version: str, no_network: None) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_really_rejects_unknown_fields(no_network: None) -> None:
    bad = one(K8S / "xray-daemon.yaml", "DaemonSet", "xray-daemon")
    bad["spec"]["template"]["spec"]["containers"][0]["hostPorts"] = [2000]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize(
    "path,daemonset",
    [
        ("xray-daemon.yaml", "xray-daemon"),
        ("otel-xray-collector.yaml", "otel-xray-collector"),
        ("otel-xray-shared-store.yaml", "otel-xray-ingest"),
    ],
)
def test_each_daemon_is_reachable_as_xray_service_on_udp_and_tcp_2000(
    path: str, daemonset: str
) -> None:
    manifest = K8S / path
    service = one(manifest, "Service", "xray-service")
    ds = one(manifest, "DaemonSet", daemonset)
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"  # headless, as in AWS's reference manifest
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        (2000, "UDP"),
        (2000, "TCP"),
    }
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    ports = {(p["containerPort"], p["hostPort"], p["protocol"]) for p in container["ports"]}
    assert ports == {(2000, 2000, "UDP"), (2000, 2000, "TCP")}
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] in {
        sa["metadata"]["name"] for sa in by_kind(manifest, "ServiceAccount")
    }


def test_daemon_config_has_only_keys_the_daemon_accepts() -> None:
    config_map = one(K8S / "xray-daemon.yaml", "ConfigMap", "xray-config")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    # The daemon exits on unknown keys and on a missing Version (spec/daemon-and-api.md §3.2).
    assert config["Version"] == 2
    assert set(config) <= {
        "TotalBufferSizeMB",
        "Concurrency",
        "Region",
        "Endpoint",
        "Socket",
        "Logging",
        "LocalMode",
        "ResourceARN",
        "RoleARN",
        "NoVerifySSL",
        "ProxyAddress",
        "Version",
    }
    assert config["Socket"] == {"UDPAddress": "0.0.0.0:2000", "TCPAddress": "0.0.0.0:2000"}
    ds = one(K8S / "xray-daemon.yaml", "DaemonSet", "xray-daemon")
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    mount = container["volumeMounts"][0]["mountPath"]
    assert container["command"] == ["/xray", "-c", f"{mount}/config.yaml"]


def test_collector_runs_in_forwarding_mode_with_the_documented_flags() -> None:
    ds = one(K8S / "otel-xray-collector.yaml", "DaemonSet", "otel-xray-collector")
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    flags = dict(zip(args[::2], args[1::2], strict=False))
    assert set(flags) <= {
        "--udp",
        "--tcp",
        "--otlp",
        "--allow-host",
        "--db",
        "--forward-endpoint",
        "--region",
        "--sampling-rules",
    }
    assert flags["--udp"] == flags["--tcp"] == "0.0.0.0:2000"
    assert flags["--forward-endpoint"] == "https://xray.$(AWS_REGION).amazonaws.com"
    assert flags["--region"] == "$(AWS_REGION)"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AWS_REGION"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(flags["--db"]).parent) in mounts  # the db lives on a writable volume


SHARED = K8S / "otel-xray-shared-store.yaml"


def expanded_args(container: dict[str, Any], secret: dict[str, Any]) -> list[str]:
    """The container's args as Kubernetes expands $(VAR) from env taken from ``secret``."""
    values = {}
    for env in container["env"]:
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        values[env["name"]] = secret["stringData"][ref["key"]]
    out = []
    for arg in container["args"]:
        for name, value in values.items():
            arg = arg.replace(f"$({name})", value)
        out.append(arg)
    return out


def test_shared_store_layout_every_collector_on_one_postgresql_url_from_the_secret() -> None:
    from otel_xray_collector.cli import build_parser, config_from_args
    from otel_xray_collector.store.postgres import is_postgres_url

    secret = one(SHARED, "Secret", "otel-xray-store")
    url = secret["stringData"]["url"]
    assert is_postgres_url(url) and "change-me" not in url  # password only via PGPASSWORD
    configs = {}
    for kind, name in (("DaemonSet", "otel-xray-ingest"), ("Deployment", "otel-xray-console")):
        (container,) = one(SHARED, kind, name)["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]}
        assert env == {"OTEL_XRAY_DB_URL": "url", "PGPASSWORD": "password"}
        # the collector's own parser accepts the args, as Kubernetes expands them
        configs[kind] = config_from_args(
            build_parser().parse_args(expanded_args(container, secret))
        )
    assert configs["DaemonSet"].db == configs["Deployment"].db == url
    ingest, replica = configs["DaemonSet"], configs["Deployment"]
    assert ingest.udp == "0.0.0.0:2000"
    assert (replica.udp, replica.otlp, replica.otlp_http) == (None, None, None)  # --ingest off


def test_shared_store_console_service_reaches_the_replicas() -> None:
    deployment = one(SHARED, "Deployment", "otel-xray-console")
    service = one(SHARED, "Service", "otel-xray-console")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    ingest_pod = one(SHARED, "DaemonSet", "otel-xray-ingest")["spec"]["template"]
    assert not service["spec"]["selector"].items() <= ingest_pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    args = container["args"]
    hosts = {args[i + 1] for i, arg in enumerate(args) if arg == "--allow-host"}
    assert "otel-xray-console.default.svc.cluster.local" in hosts


def test_app_deployments_are_configured_for_otel_xray() -> None:
    app = K8S / "app.yaml"
    settings = one(app, "ConfigMap", "otel-xray-app")["data"]
    assert settings["OTEL_PYTHON_DISTRO"] == "awsxray"
    assert settings["OTEL_TRACES_EXPORTER"] == "awsxray"
    assert settings["OTEL_TRACES_SAMPLER"] == "awsxray_remote"
    assert settings["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] == "awsxray_eks"
    assert "awsxray" in settings["OTEL_PROPAGATORS"].split(",")
    assert settings["EKS_CLUSTER_NAME"]
    host, port = settings["AWS_XRAY_DAEMON_ADDRESS"].rsplit(":", 1)
    assert host.split(".")[0] == "xray-service" and port == "2000"
    service_accounts = {sa["metadata"]["name"] for sa in by_kind(app, "ServiceAccount")}
    names = set()
    for deployment in by_kind(app, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] in service_accounts
        (container,) = pod["containers"]
        assert {"configMapRef": {"name": "otel-xray-app"}} in container["envFrom"]
        env = {e["name"]: e for e in container["env"]}
        names.add(env["OTEL_SERVICE_NAME"]["value"])
        assert env["K8S_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert container["args"][:3] == ["flask", "--app", env["OTEL_SERVICE_NAME"]["value"]]
    assert names == {"front", "back"}


def test_app_may_read_only_the_cluster_info_config_map() -> None:
    app = K8S / "app.yaml"
    role = one(app, "Role", "otel-xray-read-cluster-info")
    assert role["metadata"]["namespace"] == "amazon-cloudwatch"
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["cluster-info"],
            "verbs": ["get"],
        }
    ]
    binding = one(app, "RoleBinding", "otel-xray-app-read-cluster-info")
    assert binding["metadata"]["namespace"] == "amazon-cloudwatch"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "otel-xray-app", "namespace": "default"}
    ]
    assert not by_kind(app, "ClusterRole") and not by_kind(app, "ClusterRoleBinding")


def test_iam_policy_grants_exactly_the_four_xray_actions() -> None:
    policy = json.loads((K8S / "iam-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    actions = [
        a
        for s in policy["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert sorted(actions) == sorted(
        [
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
        ]
    )
    assert all(s["Effect"] == "Allow" and s["Resource"] == "*" for s in policy["Statement"])


JSON_FILES = sorted(
    [*(ROOT / "examples").rglob("*.json"), *(ROOT / "collector" / "otelcol").rglob("*.json")]
)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_json_file_parses(path: Path) -> None:
    json.loads(path.read_text())


def test_json_files_were_found() -> None:
    assert K8S / "iam-policy.json" in JSON_FILES
