"""Sparse inputs: scipy.sparse CSR / CSC matrices and arrays, handed to the Rust core as their
three arrays (``indptr``, ``indices``, ``data``) without ever making X dense.

The core reads the arrays in place when they already have the types it takes (int64 row
pointers, int32 column indices, values in the network's dtype): scipy's own int32 indices and
float64 values are not copied; the row pointers (one per row) are widened to int64. A CSC
matrix is converted to CSR once (a copy of its nonzeros); a CSR matrix whose column indices are
not sorted is sorted in a copy. Everything else is checked by the core (``CsrRef``): duplicate
or out-of-range indices, a malformed ``indptr``, non-finite values all raise ValueError naming
the row and column. scipy is only imported by the caller: a matrix that is sparse means scipy
is loaded already.
"""

from __future__ import annotations

import sys
from typing import Any, Tuple

import numpy as np

_INT32_MAX = 2**31 - 1


def is_sparse(X: Any) -> bool:
    """True for any scipy.sparse matrix or array (without importing scipy)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def csr_parts(X: Any, dtype: str, what: str = "X") -> Tuple[Any, Any, Any, Tuple[int, int]]:
    """(indptr int64, indices int32, data in ``dtype``, (rows, cols)) of a CSR / CSC matrix."""
    fmt = getattr(X, "format", None)
    if fmt not in ("csr", "csc"):
        raise TypeError(
            f"{what}: sparse format {fmt!r} is not supported; give a CSR or CSC matrix "
            f"({what}.tocsr())"
        )
    if len(X.shape) != 2:
        raise ValueError(f"{what} must be a 2-D sparse matrix, got shape {X.shape}")
    kind = X.dtype.kind
    if kind not in "biuf":
        raise TypeError(
            f"{what} must hold real numbers (bool, int or float dtype), got sparse dtype {X.dtype}"
        )
    rows, cols = (int(s) for s in X.shape)
    if cols > _INT32_MAX:
        raise ValueError(f"{what} has {cols} columns; at most {_INT32_MAX} are supported")
    _check_pointers(X, fmt, what)
    if fmt == "csc":
        X = X.tocsr()
    if not X.has_sorted_indices:
        X = X.copy()
        X.sort_indices()
    indices = X.indices
    if indices.dtype != np.int32:
        indices = indices.astype(np.int32)  # in range: checked by _check_pointers
    indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
    data = np.ascontiguousarray(X.data, dtype=dtype)
    return indptr, np.ascontiguousarray(indices), data, (rows, cols)


def _check_pointers(X: Any, fmt: str, what: str) -> None:
    """The structure scipy's own C++ routines (sorting, CSC -> CSR) trust without checking, so
    it is checked before any of them runs: a malformed ``indptr`` there reads out of bounds."""
    indptr, indices, data = X.indptr, X.indices, X.data
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise TypeError(
            f"sparse indptr and indices of {what} must be integers, got {indptr.dtype} and "
            f"{indices.dtype}"
        )
    if indptr.dtype.kind == "u" and indptr.size and indptr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"sparse indptr of {what} overflows int64 (max {indptr.max()})")
    major = X.shape[0] if fmt == "csr" else X.shape[1]
    if indptr.ndim != 1 or indptr.shape[0] != major + 1:
        raise ValueError(
            f"a sparse matrix of {major} {'rows' if fmt == 'csr' else 'columns'} needs indptr "
            f"of {major + 1} entries, got {indptr.shape}"
        )
    if indices.ndim != 1 or data.ndim != 1 or indices.shape[0] != data.shape[0]:
        raise ValueError(
            f"sparse indices and data must have one entry per nonzero: got {indices.shape[0]} "
            f"indices and {data.shape[0]} values"
        )
    p = indptr.astype(np.int64)
    if p[0] != 0:
        raise ValueError(f"sparse indptr must start at 0, got {p[0]}")
    if p[-1] != data.shape[0]:
        raise ValueError(
            f"sparse indptr must end at the number of nonzeros ({data.shape[0]}), got {p[-1]}"
        )
    down = np.flatnonzero(np.diff(p) < 0)
    if down.size:
        k = int(down[0])
        raise ValueError(
            f"sparse indptr must not decrease: indptr[{k}] = {p[k]}, indptr[{k + 1}] = {p[k + 1]}"
        )
    minor = X.shape[1] if fmt == "csr" else X.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= minor):
        bad = int(indices.min()) if indices.min() < 0 else int(indices.max())
        raise ValueError(f"sparse index {bad} of {what} is out of range for {minor} columns")
