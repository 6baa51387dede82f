"""The yardstick both benchmark scripts measure arithmetic rates against: NumPy's 1024x1024
matmul, on however many BLAS threads the caller has set."""

from __future__ import annotations

import time

import numpy as np

N = 1024


def matmul_gflops(dtype: str, repeats: int = 7) -> float:
    """GFLOP/s of a 1024x1024 @ 1024x1024 NumPy matmul in `dtype`: 2 N^3 flops over the best of
    `repeats` timed calls (the least disturbed by other processes), after one untimed call."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((N, N)).astype(dtype)
    b = rng.standard_normal((N, N)).astype(dtype)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * N**3 / best / 1e9
