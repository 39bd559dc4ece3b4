"""deploy/monitoring: Prometheus config and alert rules checked and unit-tested with promtool."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, sh
from tests.require import need

MON = ROOT / "deploy" / "monitoring"
TEST_FILES = ("alerts_test.yml", "alerts_stale_test.yml")
# what the issue asks for -> the alert that covers it
REQUIRED = {
    "pipeline error rate": "PipelineErrorRateHigh",
    "model performance below a floor": "ModelPerformanceBelowFloor",
    "model performance dropping against the last run": "ModelPerformanceDropped",
    "S3 push failures": "DvcPushToS3Failed",
    "API p95 latency": "ApiLatencyP95High",
    "API scoring without its fast tree evaluator": "ApiFastPathOff",
    "container memory near its limit": "ContainerMemoryNearLimit",
    "pipeline not succeeding within its interval": "PipelineStale",
}


def promtool() -> str:
    exe = shutil.which("promtool")
    need(exe is not None, "promtool not installed (Debian package 'prometheus'); CI installs it")
    assert exe is not None
    return exe


def alert_names() -> set[str]:
    rules = yaml.safe_load((MON / "alerts.yml").read_text())
    return {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}


def rule_tests() -> list[dict[str, Any]]:
    out = []
    for name in TEST_FILES:
        for group in yaml.safe_load((MON / name).read_text())["tests"]:
            out += group.get("alert_rule_test", [])
    return out


def test_every_required_alert_exists() -> None:
    assert set(REQUIRED.values()) <= alert_names()


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    for alert in alert_names():
        cases = [t for t in rule_tests() if t["alertname"] == alert]
        assert any(t["exp_alerts"] for t in cases), f"{alert}: no case where it fires"
        assert any(not t["exp_alerts"] for t in cases), f"{alert}: no case where it is silent"


def test_prometheus_config_and_rules_are_valid() -> None:
    exe = promtool()
    sh(exe, "check", "config", "prometheus.yml", cwd=MON)
    sh(exe, "check", "rules", "alerts.yml", cwd=MON)
    cfg = yaml.safe_load((MON / "prometheus.yml").read_text())
    assert cfg["global"]["scrape_interval"] == "30s"
    assert cfg["rule_files"] == ["alerts.yml"]


def test_alert_unit_tests_pass() -> None:
    proc = sh(promtool(), "test", "rules", *TEST_FILES, cwd=MON, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(TEST_FILES)


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: expecting a failure alert on a successful run is refused."""
    shutil.copy(MON / "alerts.yml", tmp_path / "alerts.yml")
    wrong = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'pipeline_stage_success{stage="train"}', "values": "1 1 1"}
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "2m",
                        "alertname": "PipelineStageFailed",
                        "exp_alerts": [{"exp_labels": {"severity": "warning", "stage": "train"}}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "wrong_test.yml").write_text(yaml.safe_dump(wrong))
    proc = sh(promtool(), "test", "rules", "wrong_test.yml", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "FAILED" in proc.stdout + proc.stderr
