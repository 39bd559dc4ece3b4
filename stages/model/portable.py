"""Transcendental functions whose float64 results are the same on every CPU.

Why not numpy's: `np.log1p`, `np.exp` and friends dispatch at run time to SIMD kernels
(SVML on AVX-512, others elsewhere) that round differently in the last bit, and the C library
behind their scalar paths differs between systems. Any such bit that reaches a fitted model
(a bin threshold, a gradient) changes the model's bytes from one machine to the next.

How: only the operations IEEE 754 rounds exactly (+, -, *, /, and frexp/ldexp/rint, which are
exact) applied element-wise by numpy, each as its own ufunc call, so no kernel can fuse or
reorder them. The algorithms are fdlibm's `__ieee754_log` and `__ieee754_exp` (Sun, freely
distributable), vectorized; both are accurate to within one unit in the last place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_SQRT_HALF = 0.70710678118654752440
_LG = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)
_P = (
    1.66666666666666019037e-01,
    -2.77777777770155933842e-03,
    6.61375632143793436117e-05,
    -1.65339022054652515390e-06,
    4.13813679705723846039e-08,
)
# exp overflows above this and underflows to 0 below the other.
_EXP_MAX = 709.782712893383973096
_EXP_MIN = -745.13321910194110842


def log(x: Any) -> Floats:
    """Natural log; NaN for x < 0 or NaN, -inf for 0, inf for inf."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x) & (x > 0)
    m, e = np.frexp(np.where(finite, x, 1.0))  # x = m * 2**e, m in [0.5, 1)
    low = m < _SQRT_HALF
    m = np.where(low, m * 2.0, m)  # m in [sqrt(1/2), sqrt(2))
    k = (e - low).astype(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG[1] + w * (_LG[3] + w * _LG[5]))
    t2 = z * (_LG[0] + w * (_LG[2] + w * (_LG[4] + w * _LG[6])))
    r = t2 + t1
    hfsq = 0.5 * f * f
    out = k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)
    with np.errstate(divide="ignore", invalid="ignore"):
        special = np.where(x == 0, -np.inf, np.where(x == np.inf, np.inf, np.nan))
    return np.where(finite, out, special)


def log1p(x: Any) -> Floats:
    """log(1 + x), accurate for small x too: log(u) corrected by the rounding of u = 1 + x."""
    x = np.asarray(x, dtype=np.float64)
    u = 1.0 + x
    with np.errstate(divide="ignore", invalid="ignore"):
        correction = np.where((u == 1.0) | (u == 0.0), 0.0, ((u - 1.0) - x) / u)
    out = np.where(u == 1.0, x, log(u) - correction)
    return np.where(np.isinf(x) & (x > 0), np.inf, out)


def exp(x: Any) -> Floats:
    """e**x, with exp(x) = 2**k * exp(r), |r| <= ln(2)/2, and fdlibm's rational fit of exp(r)."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x) & (x <= _EXP_MAX) & (x >= _EXP_MIN)
    xs = np.where(finite, x, 0.0)
    k = np.rint(xs * _INV_LN2)
    hi = xs - k * _LN2_HI
    lo = k * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P[0] + t * (_P[1] + t * (_P[2] + t * (_P[3] + t * _P[4]))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    out = np.ldexp(y, k.astype(np.int64))
    special = np.where(np.isnan(x), np.nan, np.where(x > 0, np.inf, 0.0))
    return np.where(finite, out, special)


def expm1(x: Any) -> Floats:
    """exp(x) - 1 (revenues from predicted log1p revenues: x is large, cancellation is moot)."""
    return exp(x) - 1.0


def expit(x: Any) -> Floats:
    """The logistic function 1 / (1 + e**-x), without overflow for large |x|."""
    x = np.asarray(x, dtype=np.float64)
    e = exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
