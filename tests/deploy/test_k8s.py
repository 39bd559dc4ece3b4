"""deploy/k8s: valid against the Kubernetes schemas (strict), and the operational rules hold."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, sh

K8S = ROOT / "deploy" / "k8s"


def manifests() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def validate(*paths: Path) -> tuple[int, str]:
    exe = shutil.which("kubernetes-validate", path=str(BIN))
    if exe is None:
        pytest.fail("kubernetes-validate not found: it is pinned in requirements.lock")
    proc = sh(exe, "--strict", *paths, cwd=ROOT, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_every_manifest_is_valid_in_strict_mode() -> None:
    paths = sorted(K8S.glob("*.yaml"))
    code, out = validate(*paths)
    assert code == 0, out
    assert out.count("passed for resource") == len(manifests())


def test_strict_validation_catches_an_unknown_field(tmp_path: Path) -> None:
    bad = yaml.safe_load((K8S / "deployment.yaml").read_text())
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    code, _ = validate(path)
    assert code != 0


def test_the_expected_objects_exist() -> None:
    kinds = {k.split("/")[0] for k in manifests()}
    assert {
        "Deployment",
        "Service",
        "CronJob",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PersistentVolumeClaim",
        "ConfigMap",
    } <= kinds
    assert "Secret" not in kinds  # secret values are never committed, only referenced


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec["containers"]


def test_deployment_rolls_safely_and_runs_locked_down() -> None:
    dep = manifests()["Deployment/movie-success-api"]["spec"]
    assert dep["replicas"] == 2
    assert dep["strategy"]["type"] == "RollingUpdate"
    assert dep["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = dep["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in containers(pod):
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]


def test_cronjob_never_overlaps_and_is_bounded() -> None:
    m = manifests()
    cron = m["CronJob/movie-success-pipeline"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    job = cron["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0
    assert job["backoffLimit"] <= 2
    pod = job["template"]["spec"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"movie-success-dvc-cache"}
    assert "PersistentVolumeClaim/movie-success-dvc-cache" in m
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = containers(pod)
    assert container["image"].split(":")[0].endswith("/movie-success-pipeline")
    assert container["command"][:3] == ["tini", "-g", "--"]  # the image's ENTRYPOINT, kept
    script = container["args"][0]
    assert "dvc repro" in script
    assert "python -m stages.publish" in script


def test_secrets_are_references_and_the_role_is_minimal() -> None:
    m = manifests()
    pod = m["CronJob/movie-success-pipeline"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = containers(pod)[0]["env"]
    secret_vars = {e["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= secret_vars
    assert all("value" not in e for e in env if e["name"] in secret_vars)
    config = m["ConfigMap/movie-success-config"]["data"]
    assert not any(k.endswith(("KEY", "TOKEN", "SECRET", "PASSWORD")) for k in config)
    rules = m["Role/movie-success"]["rules"]
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in rules)
    binding = m["RoleBinding/movie-success"]
    assert binding["roleRef"]["name"] == "movie-success"
    assert binding["subjects"][0]["name"] == "movie-success"
    for name in ("Deployment/movie-success-api",):
        assert m[name]["spec"]["template"]["spec"]["serviceAccountName"] == "movie-success"
    assert m["Service/movie-success-api"]["spec"]["ports"][0]["targetPort"] == "http"
