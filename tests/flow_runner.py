"""Runs a GitHub workflow job's `run:` steps locally, in order, with the env GitHub would give.

What the runner does, as GitHub does it: workflow env, then job env, then step env, each value's
`${{ }}` expressions evaluated (secrets, inputs, github, env, steps outputs, job status); `if:`
conditions (`&&`, `||`, `!`, `==`, `!=`, `always()`, `success()`, `failure()`, `contains()`);
each step in `bash --noprofile --norc -eo pipefail`, in `working-directory`; GITHUB_OUTPUT,
GITHUB_ENV and GITHUB_STEP_SUMMARY files; after a failed step only `always()`/`failure()` steps
run. What it does not: `uses:` steps (actions) are skipped and recorded, the caller prepares what
they would have (the checkout, credentials, a Python with the lock installed). Steps that only
`pip install` are skipped too (the test's venv already has the lock), and recorded.
`cml` and `gh` are stand-ins on PATH (tests/flow_bin) that log their arguments as JSON lines.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT, tool_env

WORKFLOWS = ROOT / ".github" / "workflows"
STUBS = Path(__file__).parent / "flow_bin"

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)"
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w.\-*]*))"
)


class Context:
    """The expression contexts of one job run."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def lookup(self, name: str) -> Any:
        if name in ("true", "false"):
            return name == "true"
        if name == "null":
            return None
        value: Any = self.data
        for part in name.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                return ""
        return value


def evaluate(expr: str, ctx: Context) -> Any:
    """A GitHub Actions expression (the subset the workflows use)."""
    tokens = []
    pos = 0
    expr = expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse {expr!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
    tokens.append(("end", ""))
    i = 0

    def peek() -> tuple[str | None, str]:
        return tokens[i]

    def take() -> tuple[str | None, str]:
        nonlocal i
        i += 1
        return tokens[i - 1]

    def truthy(v: Any) -> bool:
        return v not in ("", None, False, 0)

    def primary() -> Any:
        kind, text = take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind == "op" and text == "(":
            v = or_()
            take()
            return v
        if kind == "op" and text == "!":
            return not truthy(primary())
        if kind == "name":
            if peek() == ("op", "("):
                take()
                args = []
                while peek() != ("op", ")"):
                    args.append(or_())
                    if peek() == ("op", ","):
                        take()
                take()
                return call(text, args)
            return ctx.lookup(text)
        raise ValueError(f"unexpected {text!r} in {expr!r}")

    def call(name: str, args: list[Any]) -> Any:
        status = ctx.lookup("job.status")
        if name == "always":
            return True
        if name == "success":
            return status == "success"
        if name == "failure":
            return status == "failure"
        if name == "cancelled":
            return False
        if name == "contains":
            return str(args[1]).lower() in str(args[0]).lower()
        if name == "hashFiles":
            root = Path(ctx.lookup("github.workspace"))
            return "h" if any((root / a).exists() for a in args) else ""
        raise ValueError(f"function {name}() is not supported")

    def cmp() -> Any:
        left = primary()
        while peek() in (("op", "=="), ("op", "!=")):
            op = take()[1]
            right = primary()
            same = str(left).lower() == str(right).lower()
            left = same if op == "==" else not same
        return left

    def and_() -> Any:
        left = cmp()
        while peek() == ("op", "&&"):
            take()
            right = cmp()
            left = right if truthy(left) else left
        return left

    def or_() -> Any:
        left = and_()
        while peek() == ("op", "||"):
            take()
            right = and_()
            left = left if truthy(left) else right
        return left

    value = or_()
    if peek()[0] != "end":
        raise ValueError(f"trailing tokens in {expr!r}")
    return value


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def substitute(text: str, ctx: Context) -> str:
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: as_text(evaluate(m.group(1), ctx)), text)


def condition(expr: str | bool | None, ctx: Context) -> bool:
    if expr is None:
        return ctx.lookup("job.status") == "success"
    text = str(expr).strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    functions = ("always()", "failure()", "success()", "cancelled()")
    if not any(f in text for f in functions):
        text = f"success() && ({text})"
    return evaluate(text, ctx) not in ("", None, False, 0)


@dataclass
class StepResult:
    name: str
    status: str  # ran, failed, skipped-if, skipped-uses, skipped-install, not-reached
    seconds: float = 0.0
    output: str = ""


@dataclass
class JobRun:
    steps: list[StepResult] = field(default_factory=list)
    status: str = "success"
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: str = ""
    seconds: float = 0.0

    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.status in ("ran", "failed")]

    def skipped(self, kind: str) -> list[str]:
        return [s.name for s in self.steps if s.status == kind]

    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.status}]\n{s.output}" for s in self.steps)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    return data


def step_name(step: Mapping[str, Any]) -> str:
    return str(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0])


def _read_outputs(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, delim = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            out[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out


def run_job(
    workflow: str,
    job: str,
    workspace: Path,
    *,
    env: Mapping[str, str],
    secrets: Mapping[str, str] | None = None,
    github: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str] | None = None,
    stop_before: str | None = None,
    timeout: float = 600,
) -> JobRun:
    """Run `job` of `workflow` in `workspace`; `env` is the runner's environment (PATH, AWS
    credentials the skipped actions would have set ...). Stops before the step named
    `stop_before` (the docker build, say)."""
    wf = load(workflow)
    spec = wf["jobs"][job]
    runner_temp = workspace.parent / f"runner-{workflow}-{job}"
    runner_temp.mkdir(parents=True, exist_ok=True)
    summary = runner_temp / "summary.md"
    summary.write_text("")
    gh_ctx = {"workspace": str(workspace), "repository": "owner/movie-success", "run_id": "1"}
    gh_ctx.update(github or {})
    data: dict[str, Any] = {
        "github": gh_ctx,
        "secrets": {"GITHUB_TOKEN": "ghs_local", **(secrets or {})},
        "inputs": dict(inputs or {}),
        "vars": {},
        "steps": {},
        "job": {"status": "success"},
        "runner": {"temp": str(runner_temp), "os": "Linux"},
        "env": {},
    }
    ctx = Context(data)
    result = JobRun()
    start = time.perf_counter()
    if not condition(spec.get("if"), ctx):
        result.status = "skipped"
        return result
    job_env: dict[str, str] = {}
    for source in (wf.get("env") or {}, spec.get("env") or {}):
        for key, value in source.items():
            data["env"] = {**job_env}
            job_env[key] = substitute(as_text(value), ctx)
    data["env"] = dict(job_env)
    extra_env: dict[str, str] = {}
    reached_stop = False
    for step in spec.get("steps", []):
        name = step_name(step)
        if stop_before is not None and name == stop_before:
            reached_stop = True
        if reached_stop:
            result.steps.append(StepResult(name, "not-reached"))
            continue
        data["env"] = {**job_env, **extra_env}
        step_env = dict(data["env"])
        for key, value in (step.get("env") or {}).items():
            step_env[key] = substitute(as_text(value), ctx)
        data["env"] = step_env
        if not condition(step.get("if"), ctx):
            result.steps.append(StepResult(name, "skipped-if"))
            continue
        if "uses" in step:
            result.steps.append(StepResult(name, "skipped-uses"))
            if "id" in step:
                data["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped"}
            continue
        script = substitute(step["run"], ctx)
        if re.fullmatch(r"(\s*pip install [^\n]*\n?)+", script):
            result.steps.append(StepResult(name, "skipped-install"))
            continue
        out_file = runner_temp / f"output-{len(result.steps)}"
        env_file = runner_temp / f"env-{len(result.steps)}"
        out_file.write_text("")
        env_file.write_text("")
        proc_env = dict(env)
        proc_env.update(step_env)
        proc_env.update(
            GITHUB_OUTPUT=str(out_file),
            GITHUB_ENV=str(env_file),
            GITHUB_STEP_SUMMARY=str(summary),
            GITHUB_WORKSPACE=str(workspace),
            GITHUB_ACTIONS="true",
            RUNNER_TEMP=str(runner_temp),
            CI="true",
        )
        for key in ("repository", "sha", "ref", "base_ref", "head_ref", "event_name"):
            if key in gh_ctx:
                proc_env[f"GITHUB_{key.upper()}"] = str(gh_ctx[key])
        cwd = workspace / step.get("working-directory", ".")
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=proc_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.perf_counter() - t0
        failed = proc.returncode != 0
        result.steps.append(
            StepResult(name, "failed" if failed else "ran", seconds, proc.stdout + proc.stderr)
        )
        outputs = _read_outputs(out_file)
        extra_env.update(_read_outputs(env_file))
        if "id" in step:
            data["steps"][step["id"]] = {
                "outputs": outputs,
                "outcome": "failure" if failed else "success",
            }
            result.outputs[step["id"]] = outputs
        if failed:
            data["job"]["status"] = result.status = "failure"
    result.summary = summary.read_text()
    result.seconds = time.perf_counter() - start
    return result


def stub_env(base: Mapping[str, str], log: Path, state: Path) -> dict[str, str]:
    """`base` with the cml and gh stand-ins first on PATH, logging to `log`."""
    env = dict(base)
    env["PATH"] = f"{STUBS}{os.pathsep}{env.get('PATH', '')}"
    env["FLOW_STUB_LOG"] = str(log)
    env["FLOW_STUB_STATE"] = str(state)
    return env


def stub_calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def runner_env(**extra: str) -> dict[str, str]:
    """The runner's environment: the test venv first on PATH, no analytics, a git identity."""
    env = tool_env()
    env.pop("PUSHGATEWAY_URL", None)
    env.update(extra)
    return env
