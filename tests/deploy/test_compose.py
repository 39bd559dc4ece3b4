"""deploy/docker-compose.yml and Grafana provisioning: structure checked here (no Docker engine
in CI, so `docker compose config` cannot run), and every metric the dashboards and alerts
query is one the service or the pipeline really exports."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from stages.api.metrics import ServiceMetrics
from stages.core import pushgateway
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "movie-success.json"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_pinned_images() -> None:
    services = compose()["services"]
    assert set(services) == {"api", "prometheus", "pushgateway", "grafana", "pipeline"}
    for name, svc in services.items():
        if name in ("api", "pipeline"):
            continue
        image = svc["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: pin {image}"


def test_api_is_built_from_the_repository_dockerfile() -> None:
    api = compose()["services"]["api"]
    context = (DEPLOY / api["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / api["build"]["dockerfile"]).is_file()
    assert api["read_only"] is True
    assert api["user"].split(":")[0] not in ("0", "root")
    assert api["build"]["target"] == "serve"
    pipeline = compose()["services"]["pipeline"]
    assert pipeline["build"]["target"] == "pipeline"
    assert pipeline["profiles"] == ["pipeline"]  # runs only when asked for
    assert pipeline["environment"]["PUSHGATEWAY_URL"] == "http://pushgateway:9091"


def test_published_ports_bind_to_loopback_and_the_pushgateway_is_internal() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host = port.rsplit(":", 2)[0]
            assert re.fullmatch(r"\$\{[A-Z_]+_BIND:-127\.0\.0\.1\}", host), f"{name}: {port}"
    assert "ports" not in services["pushgateway"]  # unauthenticated writes: never published
    assert services["pushgateway"]["expose"] == ["9091"]


def test_every_service_has_a_healthcheck_and_dependencies_wait_for_it() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        if name == "pipeline":  # a one-off run, not a service
            continue
        test = svc["healthcheck"]["test"]
        # CMD-SHELL + one string: podman-compose 1.0 (Debian) mangles the CMD list form
        assert test[0] == "CMD-SHELL", name
        assert len(test) == 2, name
        assert "http://127.0.0.1:" in test[1], name
    assert "/healthz" in services["api"]["healthcheck"]["test"][1]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            # service_healthy is skipped by podman-compose on podman < 4.6 (bookworm: 4.3)
            assert cond["condition"] == "service_started"


def test_volumes_exist_and_named_volumes_are_declared() -> None:
    doc = compose()
    declared = set(doc.get("volumes", {}))
    for name, svc in doc["services"].items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"


def test_prometheus_mounts_its_config_and_scrapes_the_services() -> None:
    services = compose()["services"]
    prom = services["prometheus"]
    mount = next(v for v in prom["volumes"] if v.endswith(":/etc/prometheus:ro"))
    config_dir = DEPLOY / mount.split(":")[0]
    cfg = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    assert cfg["global"]["scrape_interval"] == "30s"
    for rule_file in cfg["rule_files"]:
        assert (config_dir / rule_file).is_file()
    targets = {
        t for job in cfg["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    for svc, port in (("api", 8000), ("pushgateway", 9091)):
        assert f"{svc}:{port}" in targets
        published = services[svc].get("ports", []) + services[svc].get("expose", [])
        assert any(p.split(":")[-1] == str(port) for p in published)
    push_job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "pushgateway")
    assert push_job["honor_labels"] is True


def test_grafana_is_provisioned_without_a_committed_password() -> None:
    grafana = compose()["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${")
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((prov / "dashboards" / "movie-success.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    mounts = dict(v.split(":")[:2][::-1] for v in grafana["volumes"] if v.startswith("."))
    assert (DEPLOY / mounts[path] / DASHBOARD.name).is_file()


def dashboard_exprs() -> dict[str, list[str]]:
    dash = json.loads(DASHBOARD.read_text())
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dash["panels"]}


def test_dashboard_has_the_requested_panels() -> None:
    exprs = dashboard_exprs()
    joined = {title.lower(): " ".join(e) for title, e in exprs.items()}
    assert "http_requests_total" in joined["request rate"]
    assert "histogram_quantile(0.95" in joined["p95 latency"]
    assert 'status=~"5.."' in joined["error rate (5xx share)"]
    assert 'stage="train"' in joined["last successful retrain"]
    assert 'metric="roc_auc"' in joined["model roc auc over time"]


def exported_names() -> set[str]:
    """Sample names the service's registry and a pipeline push really produce."""
    names = {s.name for fam in ServiceMetrics().registry.collect() for s in fam.samples}
    names |= {"http_requests_total", "http_request_duration_seconds_bucket"}  # labelled, lazy
    for ok in (True, False):
        reg = pushgateway.build_registry(1.0, ok, 0.0, {"rows": 1, "metrics": {"roc_auc": 0.6}})
        names |= {s.name for fam in reg.collect() for s in fam.samples}
    return names


def test_queried_metrics_are_exported() -> None:
    queries = [e for es in dashboard_exprs().values() for e in es]
    rules = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yml").read_text())
    queries += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    ours = {
        m
        for q in queries
        for m in re.findall(r"\b((?:http|pipeline|prediction|model|process)_[a-z_]+)", q)
    }
    assert ours
    assert ours <= exported_names()
