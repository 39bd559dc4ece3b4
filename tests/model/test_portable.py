"""The CPU-independent transcendental functions: accurate, total, and the same bits under any
SIMD dispatch."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

from stages.model import portable
from tests.conftest import baseline_cpu_env

RNG = np.random.default_rng(20261201)
POSITIVE = np.concatenate(
    [
        10 ** RNG.uniform(-300, 300, 20_000),
        RNG.uniform(0.5, 2.0, 20_000),
        np.arange(1.0, 20_001.0),
        RNG.integers(10_000, 3_000_000_000, 20_000).astype(float),
    ]
)


def ulps(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want) / np.spacing(np.abs(want))))


def test_log_is_within_one_ulp_of_the_c_library() -> None:
    want = np.array([math.log(v) for v in POSITIVE])
    ok = want != 0
    assert ulps(portable.log(POSITIVE)[ok], want[ok]) <= 1.0


def test_log1p_is_within_one_ulp_for_small_and_large_arguments() -> None:
    x = np.concatenate([10 ** RNG.uniform(-300, 0, 20_000), RNG.uniform(-0.99, 0, 2_000), POSITIVE])
    want = np.array([math.log1p(v) for v in x])
    assert ulps(portable.log1p(x), want) <= 1.0


def test_exp_is_within_one_ulp_over_its_range() -> None:
    x = np.concatenate([RNG.uniform(-708, 709, 40_000), RNG.uniform(-1e-6, 1e-6, 2_000)])
    want = np.array([math.exp(v) for v in x])
    assert ulps(portable.exp(x), want) <= 1.0


@pytest.mark.parametrize(
    ("fn", "x", "want"),
    [
        (portable.log, [0.0, -1.0, np.inf, np.nan, 1.0], [-np.inf, np.nan, np.inf, np.nan, 0.0]),
        (portable.log1p, [-1.0, -2.0, np.inf, 0.0, 1e-300], [-np.inf, np.nan, np.inf, 0.0, 1e-300]),
        (
            portable.exp,
            [np.inf, -np.inf, np.nan, 710.0, -746.0, 0.0],
            [np.inf, 0, np.nan, np.inf, 0, 1],
        ),
        (portable.expit, [-1e4, 0.0, 1e4, np.nan], [0.0, 0.5, 1.0, np.nan]),
    ],
)
def test_special_values_follow_ieee(
    fn: Callable[[np.ndarray], np.ndarray], x: list[float], want: list[float]
) -> None:
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(fn(np.array(x)), np.array(want))


def test_results_are_the_same_bits_without_simd_dispatch() -> None:
    """The point of the module: a child with numpy's SIMD extensions disabled (and generic
    BLAS and libm kernels) computes the very same bytes."""
    code = (
        "import sys, numpy as np; from stages.model import portable as p; "
        "x = np.frombuffer(sys.stdin.buffer.read()); "
        "y = np.concatenate([p.log1p(x), p.exp(p.log(x) / 64), p.expit(x / 1e9)]); "
        "sys.stdout.buffer.write(y.tobytes())"
    )
    payload = POSITIVE.tobytes()
    child = subprocess.run(
        [sys.executable, "-c", code], input=payload, env=baseline_cpu_env(), capture_output=True
    )
    assert child.returncode == 0, child.stderr.decode()
    here = np.concatenate(
        [
            portable.log1p(POSITIVE),
            portable.exp(portable.log(POSITIVE) / 64),
            portable.expit(POSITIVE / 1e9),
        ]
    )
    assert child.stdout == here.tobytes()
