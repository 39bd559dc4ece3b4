"""The container engine for the image and stack tests: podman as ../shared/tools/container-smoke.sh
sets it up (installed from Debian, the Dockerfile's FROM image stood in locally, a private
containers.conf), plus helpers to build the Dockerfile's targets and run them.

Everything here runs real containers; where that cannot happen (not root, no smoke script, no
model) the tests skip with the reason, and fail instead under REQUIRE_TOOLS=1 (tests/require.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.require import need
from tests.support import ROOT

SMOKE = ROOT.parent / "shared" / "tools" / "container-smoke.sh"
CACHE = Path(os.environ.get("CACHE", "/var/cache/container-smoke"))
MODEL = ROOT / "models" / "model.skops"
SERVE = "localhost/movie-success:test-serve"
PIPELINE = "localhost/movie-success-pipeline:test"
HOST_CA = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")


def podman_env() -> dict[str, str]:
    # The smoke script's containers.conf: ulimits this VM allows, runc (see its header).
    env = dict(os.environ, CONTAINERS_CONF=str(CACHE / "containers.conf"))
    env.pop("PYTHONPATH", None)
    return env


def podman(
    *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["podman", *args],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def require_engine() -> None:
    """Skip (fail under REQUIRE_TOOLS=1) where containers cannot be built and run here."""
    need(SMOKE.is_file(), f"{SMOKE} is absent (CI copies shared/ beside the repository)")
    need(os.geteuid() == 0, "building and running containers here needs root (podman as root)")
    need(
        shutil.which("podman") is not None or shutil.which("apt-get") is not None,
        "no podman and no apt-get to install it",
    )
    need(MODEL.is_file(), f"{MODEL} is absent: run 'make repro' first (the image carries it)")


@dataclass
class SmokeRun:
    """One run of container-smoke.sh: its exit code, output and wall time."""

    returncode: int
    output: str
    seconds: float

    @classmethod
    def run(cls, *args: str) -> SmokeRun:
        t0 = time.monotonic()
        proc = subprocess.run(
            ["bash", str(SMOKE), str(ROOT), *args],
            env=podman_env(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        return cls(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)

    def results(self, label: str) -> list[bool]:
        """PASS (True) / FAIL (False) of each check line "  PASS LABEL  output" for LABEL."""
        out = []
        for line in self.output.splitlines():
            verdict, _, rest = line.strip().partition(" ")
            if verdict in ("PASS", "FAIL") and (rest == label or rest.startswith(label + " ")):
                out.append(verdict == "PASS")
        return out

    def failed(self) -> list[str]:
        return [line.strip()[5:] for line in self.output.splitlines() if line.startswith("  FAIL ")]


def build(target: str, tag: str, context: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`podman build --target TARGET` with container-smoke.sh's build options (host network,
    this machine's CA bundle and pip.conf mounted for pip), so that its cached layers serve
    these builds too. (The Dockerfile's own hooks, `--secret id=pip_cert,src=CA` and
    `--build-arg PIP_INDEX_URL=...`, reach the index the same way; they make different layers.)"""
    git_sha = subprocess.run(
        ["git", "-c", "safe.directory=*", "rev-parse", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    args = ["build", "--quiet", "--format", "docker", "--pull=never", "--network", "host"]
    args += ["-v", f"{HOST_CA}:/etc/ssl/certs/ca-certificates.crt:ro"]
    args += ["-v", f"{CACHE / 'build-pip.conf'}:/etc/pip.conf:ro"]
    args += ["--build-arg", f"GIT_SHA={git_sha or 'unknown'}", "--target", target, "-t", tag]
    return podman(*args, str(context), check=False, timeout=1800)


def image_size(tag: str) -> int:
    return int(podman("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip())


def context_copy(dest: Path) -> Path:
    """The build context as .dockerignore lets it through (what the Dockerfile may copy)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for rel in ["Dockerfile", ".dockerignore"] + [x[1:] for x in lines if x.startswith("!")]:
        src = ROOT / rel.rstrip("/")
        target = dest / rel.rstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, target)
    return dest


def get(url: str, data: bytes | None = None, timeout: float = 5) -> tuple[int, str]:
    headers = {"content-type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(url: str, seconds: float, interval: float = 0.1) -> float | None:
    """Seconds until `url` answers 200, or None after `seconds`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if get(url, timeout=1)[0] == 200:
            return time.monotonic() - t0
        time.sleep(interval)
    return None


def run_detached(name: str, image: str, port: int, extra: Sequence[str] = ()) -> None:
    podman("rm", "-f", name, check=False)
    podman(
        "run", "-d", "--name", name, "--no-healthcheck",
        "-p", f"127.0.0.1:{port}:8000", *extra, image,
    )  # fmt: skip
