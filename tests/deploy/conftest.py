"""The `container` marker: tests that build and run images with podman (deselect them with
`-m "not container"`; they are slow on a machine's first run)."""

from __future__ import annotations

import time

import pytest

from tests.deploy import containers as c


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "container: builds and runs the images with podman (tests/deploy/containers.py)"
    )


@pytest.fixture(scope="session")
def smoke() -> c.SmokeRun:
    """container-smoke.sh --compose once per session: installs podman, stands in the FROM image,
    builds and checks the default image, and builds the compose stand-ins test_stack.py uses."""
    c.require_engine()
    return c.SmokeRun.run("--compose")


@pytest.fixture(scope="session")
def images(smoke: c.SmokeRun) -> dict[str, float]:
    """Both targets built with the documented build hooks; their build times (s)."""
    times = {}
    for target, tag in (("serve", c.SERVE), ("pipeline", c.PIPELINE)):
        t0 = time.monotonic()
        proc = c.build(target, tag)
        assert proc.returncode == 0, proc.stderr[-3000:]
        times[target] = time.monotonic() - t0
    return times
