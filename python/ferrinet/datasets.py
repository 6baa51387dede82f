"""Small data sets and data-handling helpers for ferrinet.

Everything here returns plain NumPy arrays and depends only on the Python
standard library and NumPy (from the rest of ferrinet it imports only the
argument checks of ``ferrinet._validate``, which are pure Python, so it can be
used without the Rust extension). Nothing is ever downloaded: the two real data
sets are files shipped inside the package, in ``ferrinet/data/`` (see the
README there for sources, licence and attribution).

Synthetic data (generated, reproducible from ``seed``)
    xor       the four XOR points, regression-style targets (4, 1)
    sine      y = sin(x) + noise on [-pi, pi], for 1-D regression
    moons     two interleaving half circles, 2 classes
    circles   two concentric circles, 2 classes
    spirals   interleaved spiral arms, ``classes`` classes
    blobs     isotropic Gaussian clusters

Real data (read from the bundled files)
    digits    UCI optical handwritten digits, 1,797 8x8 images, 10 classes
    iris      Fisher's iris, 150 flowers, 4 measurements, 3 classes

Helpers
    train_test_split   shuffled (optionally stratified) train/test split
    Standardizer       z-scoring with statistics fitted on training data
    standardize        one-call wrapper around Standardizer
    one_hot            integer labels -> one-hot float matrix
    batches            mini-batch iterator over (X, Y)

All randomness comes from ``numpy.random.default_rng(seed)``, so the same
seed gives the same arrays in every process and on every platform. A
``seed`` may be a non-negative int or an existing ``numpy.random.Generator``
(which is then used, and advanced, directly).

Feature matrices are float64 of shape (n_samples, n_features); class labels
are int64 of shape (n_samples,).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import numbers
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple, Union

import numpy as np

from . import _validate

__all__ = [
    "xor",
    "sine",
    "moons",
    "circles",
    "spirals",
    "blobs",
    "digits",
    "iris",
    "train_test_split",
    "Standardizer",
    "standardize",
    "one_hot",
    "batches",
    "IRIS_FEATURE_NAMES",
    "IRIS_CLASS_NAMES",
    "DIGITS_CLASS_NAMES",
]

#: Column names of the iris feature matrix, in order (all in centimetres).
IRIS_FEATURE_NAMES: Tuple[str, ...] = (
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
)
#: Iris species for labels 0, 1, 2.
IRIS_CLASS_NAMES: Tuple[str, ...] = ("setosa", "versicolor", "virginica")
#: Digit classes for labels 0..9.
DIGITS_CLASS_NAMES: Tuple[str, ...] = tuple(str(d) for d in range(10))

_DATA_DIR = Path(__file__).resolve().parent / "data"
_DIGITS_FILE = "digits.csv.gz"
_IRIS_FILE = "iris.csv"
_DIGITS_N, _DIGITS_SIDE = 1797, 8

SeedLike = Union[int, np.random.Generator]
#: Anything ``numpy.asarray`` turns into an array of numbers (an ndarray, nested lists).
ArrayLike = Any


# ---------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------


def _rng(seed: SeedLike) -> np.random.Generator:
    """``default_rng(seed)`` for a non-negative int seed, or the Generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            "seed must be a non-negative integer or a numpy.random.Generator, "
            f"got {_validate.describe(seed)}"
        )
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {int(seed)}")
    return np.random.default_rng(int(seed))


def _as_samples(name: str, value) -> np.ndarray:
    """``np.asarray(value)``, which must have at least one axis (samples first)."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        raise ValueError(
            f"{name} must be an array with samples along the first axis, "
            f"got a scalar {_validate.describe(value)}"
        )
    return arr


def _split_evenly(n: int, parts: int) -> np.ndarray:
    """Sizes of ``parts`` groups summing to ``n``; the first ``n % parts`` get one extra."""
    sizes = np.full(parts, n // parts, dtype=np.int64)
    sizes[: n % parts] += 1
    return sizes


def _shuffled(rng: np.random.Generator, X: np.ndarray, y: np.ndarray):
    """Apply one random permutation to the rows of X and y."""
    order = rng.permutation(len(X))
    return X[order], y[order]


# ---------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------


def xor() -> Tuple[np.ndarray, np.ndarray]:
    """The XOR problem: the four corners of the unit square.

    Returns
    -------
    X : float64 array, shape (4, 2)
        Rows [0, 0], [0, 1], [1, 0], [1, 1].
    y : float64 array, shape (4, 1)
        ``y = x0 XOR x1``, i.e. [[0], [1], [1], [0]].

    ``y`` is a column (not a label vector) so it can be used directly as the
    target of a network with one sigmoid output.
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return X, y


def sine(n: int = 200, noise: float = 0.0, seed: SeedLike = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Noisy samples of the sine function, for 1-D regression.

    ``x ~ Uniform[-pi, pi]`` (``n`` independent draws, not sorted) and
    ``y = sin(x) + noise * e`` with ``e ~ N(0, 1)``. The x values are drawn
    before the noise, so for one seed the x values do not depend on ``noise``.

    Returns
    -------
    X : float64 array, shape (n, 1), values in [-pi, pi]
    y : float64 array, shape (n, 1)
    """
    n = _validate.integer(n, "n", 1)
    noise = _validate.real(noise, "noise", 0.0)
    rng = _rng(seed)
    X = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y = np.sin(X)
    if noise > 0:
        y = y + noise * rng.standard_normal((n, 1))
    return X, y


def moons(n: int = 200, noise: float = 0.1, seed: SeedLike = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles ("moons"), a 2-class problem.

    Class 0 (``n // 2`` points) lies on the upper half of the unit circle,
    ``(cos t, sin t)``; class 1 (the other ``n - n // 2`` points) on a
    flipped, shifted copy, ``(1 - cos t, 1 - sin t - 0.5)``. In each class
    ``t`` takes evenly spaced values from 0 to pi inclusive. The points are
    shuffled, then Gaussian noise with standard deviation ``noise`` is added
    to both coordinates. This is the geometry of scikit-learn's
    ``make_moons`` (the random numbers differ).

    Returns
    -------
    X : float64 array, shape (n, 2)
    y : int64 array, shape (n,), values in {0, 1}
    """
    n = _validate.integer(n, "n", 2)
    noise = _validate.real(noise, "noise", 0.0)
    rng = _rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    t_outer = np.linspace(0.0, np.pi, n_outer)
    t_inner = np.linspace(0.0, np.pi, n_inner)
    outer = np.column_stack([np.cos(t_outer), np.sin(t_outer)])
    inner = np.column_stack([1.0 - np.cos(t_inner), 1.0 - np.sin(t_inner) - 0.5])
    X = np.vstack([outer, inner])
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n_inner, np.int64)])
    X, y = _shuffled(rng, X, y)
    if noise > 0:
        X = X + noise * rng.standard_normal(X.shape)
    return X, y


def circles(
    n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: SeedLike = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Two concentric circles, a 2-class problem.

    Class 0 (``n // 2`` points) lies on the unit circle and class 1 (the
    other ``n - n // 2`` points) on the circle of radius ``factor``. In each
    class the angles are evenly spaced over [0, 2*pi) (the end point is
    left out, so no point is repeated). The points are shuffled, then
    Gaussian noise with standard deviation ``noise`` is added to both
    coordinates.

    Parameters
    ----------
    factor : float, 0 < factor < 1
        Radius of the inner circle relative to the outer one.

    Returns
    -------
    X : float64 array, shape (n, 2)
    y : int64 array, shape (n,), values in {0, 1} (1 = inner circle)
    """
    n = _validate.integer(n, "n", 2)
    noise = _validate.real(noise, "noise", 0.0)
    factor = _validate.real(factor, "factor")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"factor must be strictly between 0 and 1, got {factor}")
    rng = _rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    a_outer = np.linspace(0.0, 2.0 * np.pi, n_outer, endpoint=False)
    a_inner = np.linspace(0.0, 2.0 * np.pi, n_inner, endpoint=False)
    outer = np.column_stack([np.cos(a_outer), np.sin(a_outer)])
    inner = factor * np.column_stack([np.cos(a_inner), np.sin(a_inner)])
    X = np.vstack([outer, inner])
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n_inner, np.int64)])
    X, y = _shuffled(rng, X, y)
    if noise > 0:
        X = X + noise * rng.standard_normal(X.shape)
    return X, y


def spirals(
    n: int = 300, classes: int = 3, noise: float = 0.2, seed: SeedLike = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (the CS231n "spiral" data).

    The ``n`` points are split as evenly as possible over the classes (the
    first ``n % classes`` classes get one extra point). For class ``k`` with
    ``m`` points, the radius ``r`` takes ``m`` evenly spaced values in
    [0, 1] and the angle is

        theta = 4 * k + 4 * r + noise * e,   e ~ N(0, 1)

    and the point is ``(r * sin(theta), r * cos(theta))``. Noise perturbs the
    angle only, so every point keeps its radius and ``|x| <= 1``. The points
    are shuffled at the end.

    Returns
    -------
    X : float64 array, shape (n, 2), every row of Euclidean norm <= 1
    y : int64 array, shape (n,), values in {0, ..., classes - 1}
    """
    classes = _validate.integer(classes, "classes", 2)
    n = _validate.integer(n, "n", classes)
    noise = _validate.real(noise, "noise", 0.0)
    rng = _rng(seed)
    parts_X, parts_y = [], []
    for k, m in enumerate(_split_evenly(n, classes)):
        r = np.linspace(0.0, 1.0, m)
        theta = 4.0 * k + 4.0 * r + noise * rng.standard_normal(m)
        parts_X.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        parts_y.append(np.full(m, k, dtype=np.int64))
    return _shuffled(rng, np.vstack(parts_X), np.concatenate(parts_y))


def blobs(
    n: int = 200,
    centers: Union[int, ArrayLike] = 3,
    n_features: Optional[int] = None,
    cluster_std: Union[float, ArrayLike] = 1.0,
    center_box: Tuple[float, float] = (-10.0, 10.0),
    seed: SeedLike = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clusters ("blobs").

    Parameters
    ----------
    n : int
        Number of points, split as evenly as possible over the clusters (the
        first ``n % k`` clusters get one extra). Must be >= the number of
        clusters.
    centers : int or array of shape (k, n_features)
        Either the number of clusters ``k`` -- the centres are then drawn
        uniformly from ``center_box`` in every coordinate -- or the centres
        themselves.
    n_features : int or None
        Dimension of the points. ``None`` means 2, or the width of
        ``centers`` when it is an array (if both are given they must agree).
    cluster_std : float or sequence of k floats, >= 0
        Standard deviation of every coordinate in each cluster.
    center_box : (low, high)
        Range for random centres (only used when ``centers`` is an int).

    Point ``i`` of cluster ``c`` is ``centers[c] + cluster_std[c] * e`` with
    ``e ~ N(0, I)``. Points are shuffled.

    Returns
    -------
    X : float64 array, shape (n, n_features)
    y : int64 array, shape (n,), the cluster index of each point
    """
    if isinstance(centers, (bool, np.bool_)):
        raise TypeError(f"centers must be an int or an array, got {_validate.describe(centers)}")
    if isinstance(centers, numbers.Integral):
        k = _validate.integer(centers, "centers", 1)
        d = 2 if n_features is None else _validate.integer(n_features, "n_features", 1)
        center_array = None
    else:
        try:
            center_array = np.asarray(centers, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                "centers must be an int or an array of shape (k, n_features), "
                f"got {_validate.describe(centers)}"
            ) from None
        if center_array.ndim != 2 or center_array.shape[0] < 1 or center_array.shape[1] < 1:
            raise ValueError(
                "centers given as an array must have shape (k, n_features) with "
                f"k >= 1 and n_features >= 1, got shape {center_array.shape}"
            )
        if not np.all(np.isfinite(center_array)):
            raise ValueError("centers must contain only finite values")
        k, d = center_array.shape
        if n_features is not None and _validate.integer(n_features, "n_features", 1) != d:
            raise ValueError(
                f"n_features={n_features} does not match centers of shape "
                f"{center_array.shape} (expected n_features={d})"
            )
    n = _validate.integer(n, "n", k)

    if isinstance(cluster_std, numbers.Real) and not isinstance(cluster_std, (bool, np.bool_)):
        stds = np.full(k, _validate.real(cluster_std, "cluster_std", 0.0))
    else:
        try:
            stds = np.asarray(cluster_std, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"cluster_std must be a number or a sequence of {k} numbers, "
                f"got {_validate.describe(cluster_std)}"
            ) from None
        if stds.shape != (k,):
            raise ValueError(
                f"cluster_std must be a number or have shape ({k},) (one per "
                f"cluster), got shape {stds.shape}"
            )
        if not np.all(np.isfinite(stds)) or np.any(stds < 0):
            raise ValueError(f"cluster_std values must be finite and >= 0, got {stds}")

    try:
        low, high = center_box
    except (TypeError, ValueError):
        raise TypeError(
            f"center_box must be a pair (low, high), got {_validate.describe(center_box)}"
        ) from None
    low = _validate.real(low, "center_box[0]")
    high = _validate.real(high, "center_box[1]")
    if not low < high:
        raise ValueError(f"center_box must satisfy low < high, got ({low}, {high})")

    rng = _rng(seed)
    if center_array is None:
        center_array = rng.uniform(low, high, size=(k, d))
    sizes = _split_evenly(n, k)
    X = np.vstack(
        [center_array[c] + stds[c] * rng.standard_normal((m, d)) for c, m in enumerate(sizes)]
    )
    y = np.repeat(np.arange(k, dtype=np.int64), sizes)
    return _shuffled(rng, X, y)


# ---------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------


def _data_path(name: str) -> Path:
    path = _DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {name!r} not found at {path}; the ferrinet "
            "installation is incomplete (the files in ferrinet/data/ are "
            "shipped with the package, nothing is downloaded)"
        )
    return path


@functools.lru_cache(maxsize=None)
def _load_digits_raw() -> np.ndarray:
    """Parse digits.csv.gz once: int64 array (1797, 65), read-only."""
    with gzip.open(_data_path(_DIGITS_FILE), "rt", newline="") as handle:
        rows = [[int(v) for v in row] for row in csv.reader(handle) if row]
    table = np.array(rows, dtype=np.int64)
    expected = (_DIGITS_N, _DIGITS_SIDE * _DIGITS_SIDE + 1)
    if table.shape != expected:
        raise ValueError(
            f"{_DIGITS_FILE}: expected a table of shape {expected}, read {table.shape}"
        )
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=None)
def _load_iris_raw() -> Tuple[np.ndarray, np.ndarray]:
    """Parse iris.csv once: (features (150, 4) float64, labels (150,) int64), read-only."""
    text = _data_path(_IRIS_FILE).read_text(encoding="ascii")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    n_samples, n_features = int(header[0]), int(header[1])
    class_names = tuple(name.strip() for name in header[2:])
    if class_names != IRIS_CLASS_NAMES or n_features != len(IRIS_FEATURE_NAMES):
        raise ValueError(f"{_IRIS_FILE}: unexpected header {header}")
    rows = [row for row in reader if row]
    if len(rows) != n_samples:
        raise ValueError(f"{_IRIS_FILE}: header announces {n_samples} rows, found {len(rows)}")
    X = np.array([[float(v) for v in row[:n_features]] for row in rows])
    y = np.array([int(row[n_features]) for row in rows], dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def digits(return_images: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """The UCI optical handwritten digits (test part, as scikit-learn ships it).

    1,797 images of handwritten digits written by 13 people. Each image is
    8x8 pixels; a pixel is the number of "on" pixels in a 4x4 block of the
    original 32x32 bitmap, so it is an integer from 0 to 16. Every class has
    between 174 and 183 samples. Read from the bundled file
    ``ferrinet/data/digits.csv.gz``; nothing is downloaded. Scale the pixels
    yourself (e.g. ``X / 16`` or :func:`standardize`) before training.

    Parameters
    ----------
    return_images : bool
        If False (default) the pixels come as flat rows; if True as 8x8
        images.

    Returns
    -------
    X : float64 array, shape (1797, 64) -- or (1797, 8, 8) with return_images
        Pixel values 0..16, rows of the image in row-major order.
    y : int64 array, shape (1797,), the digit 0..9
    """
    if not isinstance(return_images, (bool, np.bool_)):
        raise TypeError(f"return_images must be a bool, got {_validate.describe(return_images)}")
    table = _load_digits_raw()
    X = table[:, :-1].astype(np.float64)
    y = table[:, -1].copy()
    if return_images:
        X = X.reshape(-1, _DIGITS_SIDE, _DIGITS_SIDE)
    return X, y


def iris() -> Tuple[np.ndarray, np.ndarray]:
    """Fisher's iris data: 150 flowers, 50 of each of three species.

    Features (columns, in cm) are listed in :data:`IRIS_FEATURE_NAMES`:
    sepal length, sepal width, petal length, petal width. Labels 0, 1, 2 are
    the species in :data:`IRIS_CLASS_NAMES` (setosa, versicolor, virginica);
    the rows are ordered by class. Read from the bundled file
    ``ferrinet/data/iris.csv``; nothing is downloaded.

    Returns
    -------
    X : float64 array, shape (150, 4)
    y : int64 array, shape (150,), values in {0, 1, 2}
    """
    X, y = _load_iris_raw()
    return X.copy(), y.copy()


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------


def _n_test_from(test_size, n: int) -> int:
    """Number of test samples for a fractional or absolute ``test_size``."""
    if isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real):
        raise TypeError(
            f"test_size must be a float in (0, 1) or an int count, got {_validate.describe(test_size)}"
        )
    if isinstance(test_size, numbers.Integral):
        count = int(test_size)
        if not 1 <= count <= n - 1:
            raise ValueError(
                f"test_size as an int count must be between 1 and n - 1 = {n - 1} "
                f"so that train and test are both non-empty, got {count} "
                f"(for {n} samples)"
            )
        return count
    fraction = float(test_size)
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"test_size as a float must be in the open interval (0, 1), got {fraction}"
        )
    # Round up, but do not let a representation error (0.07 * 100 =
    # 7.000000000000001) add a whole sample.
    exact = fraction * n
    count = math.ceil(exact - 1e-9 * max(1.0, exact))
    if count < 1 or count > n - 1:
        raise ValueError(
            f"test_size={fraction} with {n} samples gives {count} test and "
            f"{n - count} train samples; both sets must be non-empty"
        )
    return count


def _stratified_test_indices(
    labels: np.ndarray, n_test: int, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``n_test`` indices so that each class keeps its share.

    Class ``c`` with ``n_c`` members gets ``floor(n_test * n_c / n)`` test
    samples; the samples still missing go to the classes with the largest
    fractional parts (ties: smaller class index first).
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n = len(labels)
    n_train = n - n_test
    if np.any(counts < 2):
        rare = classes[counts < 2]
        raise ValueError(
            "stratified splitting needs at least 2 samples of every class, "
            f"got a single sample for class(es) {rare.tolist()}"
        )
    if n_test < len(classes) or n_train < len(classes):
        raise ValueError(
            f"stratified splitting needs at least one train and one test sample "
            f"per class: expected train and test sizes >= {len(classes)} "
            f"(the number of classes), got train={n_train}, test={n_test}"
        )
    ideal = n_test * counts / n
    take = np.floor(ideal).astype(np.int64)
    missing = n_test - int(take.sum())
    if missing > 0:
        by_remainder = np.argsort(-(ideal - take), kind="stable")
        take[by_remainder[:missing]] += 1
    chosen = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        chosen.append(rng.permutation(members)[: take[c]])
    return np.concatenate(chosen)


def train_test_split(
    X: ArrayLike,
    y: ArrayLike,
    test_size: Union[float, int] = 0.25,
    seed: SeedLike = 0,
    stratify: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``(X, y)`` into shuffled train and test parts.

    Parameters
    ----------
    X : array, shape (n, ...)
    y : array, shape (n, ...)
        Targets; any shape with ``n`` rows (labels, one-hot, regression).
    test_size : float in (0, 1) or int
        A fraction: ``n_test = ceil(test_size * n)`` (as in scikit-learn).
        An int: the number of test samples, 1 <= test_size <= n - 1.
        Both parts must end up non-empty.
    seed : int or numpy.random.Generator
    stratify : bool or array of shape (n,)
        ``True`` keeps the class proportions of ``y`` (which must then be a
        1-D label vector) in both parts; an array gives the labels to
        stratify on instead. With stratification every class needs at least
        2 samples and both parts at least one sample per class.

    Returns
    -------
    X_train, X_test, y_train, y_test : arrays
        Rows of the inputs (copies), in shuffled order. Every row of X lands
        in exactly one of X_train / X_test.
    """
    X = _as_samples("X", X)
    y = _as_samples("y", y)
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same number of samples (rows), got "
            f"len(X)={len(X)} and len(y)={len(y)}"
        )
    n = len(X)
    if n < 2:
        raise ValueError(f"need at least 2 samples to split into train and test, got {n}")
    n_test = _n_test_from(test_size, n)

    if isinstance(stratify, (bool, np.bool_)):
        labels = None
        if stratify:
            if y.ndim != 1:
                raise ValueError(
                    "stratify=True needs y to be a 1-D vector of class labels, "
                    f"got y with shape {y.shape}; pass the labels as stratify=..."
                )
            labels = y
    elif stratify is None:
        labels = None
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(
                f"stratify given as labels must have shape ({n},) to match X, "
                f"got shape {labels.shape}"
            )

    rng = _rng(seed)
    if labels is None:
        order = rng.permutation(n)
        test_idx, train_idx = order[:n_test], order[n_test:]
    else:
        test_idx = _stratified_test_indices(labels, n_test, rng)
        is_test = np.zeros(n, dtype=bool)
        is_test[test_idx] = True
        train_idx = rng.permutation(np.flatnonzero(~is_test))
        test_idx = rng.permutation(test_idx)
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


# ---------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------


def _as_matrix(name: str, value) -> np.ndarray:
    """A finite float64 matrix of shape (n_samples, n_features)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a numeric array, got {_validate.describe(value)}"
        ) from None
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, n_features), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN or inf)")
    return arr


class Standardizer:
    """Per-feature z-scoring: ``(X - mean_) / scale_``.

    ``fit`` learns, for each column ``j`` of the training matrix,

        mean_[j]  = mean of column j
        scale_[j] = population standard deviation of column j (ddof=0)

    A column whose values are all identical gets ``scale_ = 1`` and
    ``mean_`` = that value, so it is mapped to exactly 0 instead of NaN.
    ``transform`` applies the stored training statistics to any matrix
    with the same number of columns.

    Attributes
    ----------
    mean_ : float64 array, shape (n_features,)
    scale_ : float64 array, shape (n_features,), all > 0
    """

    def __init__(self) -> None:
        self.mean_: Optional[np.ndarray] = None
        self.scale_: Optional[np.ndarray] = None

    def fit(self, X: ArrayLike) -> "Standardizer":
        """Learn mean_ and scale_ from X (shape (n_samples, n_features), n_samples >= 1)."""
        X = _as_matrix("X", X)
        if X.shape[0] < 1:
            raise ValueError("X must have at least one sample (row) to fit, got 0")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        constant = np.all(X == X[0], axis=0)
        mean[constant] = X[0, constant]
        scale[constant] = 1.0
        # Guard against a non-constant column whose spread underflows to 0.
        scale[scale == 0.0] = 1.0
        self.mean_, self.scale_ = mean, scale
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Return ``(X - mean_) / scale_`` as a new float64 array of X's shape."""
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("this Standardizer is not fitted yet; call fit(X_train) first")
        X = _as_matrix("X", X)
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features (columns) but the Standardizer was "
                f"fitted on {self.mean_.shape[0]}"
            )
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X: ArrayLike) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X)

    def inverse_transform(self, Z: ArrayLike) -> np.ndarray:
        """Undo transform: ``Z * scale_ + mean_``."""
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("this Standardizer is not fitted yet; call fit(X_train) first")
        Z = _as_matrix("Z", Z)
        if Z.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"Z has {Z.shape[1]} features (columns) but the Standardizer was "
                f"fitted on {self.mean_.shape[0]}"
            )
        return Z * self.scale_ + self.mean_

    def __repr__(self) -> str:
        state = "unfitted" if self.mean_ is None else f"n_features={self.mean_.shape[0]}"
        return f"Standardizer({state})"


def standardize(
    X_train: ArrayLike, X_test: Optional[ArrayLike] = None
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Standardize features with statistics of the training set only.

    Fits a :class:`Standardizer` on ``X_train`` (column means and population
    standard deviations, constant columns -> scale 1) and applies it.

    Returns
    -------
    ``X_train_std`` if ``X_test`` is None, else ``(X_train_std, X_test_std)``;
    float64 arrays of the input shapes. The train part has column mean 0 and
    standard deviation 1 (0 for constant columns); the test part is scaled
    with the *training* mean and standard deviation.
    """
    scaler = Standardizer().fit(X_train)
    X_train_std = scaler.transform(X_train)
    if X_test is None:
        return X_train_std
    return X_train_std, scaler.transform(X_test)


def one_hot(y: ArrayLike, n_classes: Optional[int] = None) -> np.ndarray:
    """One-hot encode integer class labels.

    Parameters
    ----------
    y : array of shape (n,)
        Non-negative integer labels (floats with integral values such as 2.0
        are accepted).
    n_classes : int or None
        Number of columns; ``None`` means ``max(y) + 1``. Every label must be
        < n_classes.

    Returns
    -------
    float64 array, shape (n, n_classes), with ``out[i, y[i]] = 1`` and 0
    elsewhere, so ``out.argmax(axis=1) == y``.
    """
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"y must be a 1-D array of class labels, got shape {arr.shape}")
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(f"y must contain integer class labels, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            bad = arr[~np.isfinite(arr) | (arr != np.round(arr))][:5]
            raise ValueError(
                f"y must contain integer class labels, got non-integer "
                f"values such as {bad.tolist()}"
            )
    if arr.size and arr.min() < 0:
        raise ValueError(f"class labels must be non-negative, got {arr.min()}")
    labels = arr.astype(np.int64)
    if n_classes is None:
        if labels.size == 0:
            raise ValueError("cannot infer n_classes from an empty y; pass n_classes")
        n_classes = int(labels.max()) + 1
    else:
        n_classes = _validate.integer(n_classes, "n_classes", 1)
        if labels.size and labels.max() >= n_classes:
            raise ValueError(
                f"labels must be < n_classes={n_classes}, got label {int(labels.max())}"
            )
    out = np.zeros((labels.size, n_classes), dtype=np.float64)
    out[np.arange(labels.size), labels] = 1.0
    return out


def batches(
    X: ArrayLike, Y: ArrayLike, batch_size: int, shuffle: bool = False, seed: SeedLike = 0
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Iterate over mini-batches ``(X_batch, Y_batch)``.

    One pass covers every sample exactly once, in batches of ``batch_size``
    rows; the last batch holds the ``n % batch_size`` remaining rows if that
    is not 0. With ``shuffle=True`` the rows are visited in the order of
    ``default_rng(seed).permutation(n)``, so the same seed gives the same
    batches; use a different seed per epoch (e.g. ``seed=epoch``) to get a
    new order each epoch. Without shuffling the batches are consecutive
    slices (views of X and Y).

    Arguments are checked when ``batches`` is called, not on the first
    ``next()``.

    Returns
    -------
    iterator of (X_batch, Y_batch), ``X_batch.shape[0] == Y_batch.shape[0]``
    """
    X = _as_samples("X", X)
    Y = _as_samples("Y", Y)
    if len(X) != len(Y):
        raise ValueError(
            f"X and Y must have the same number of samples (rows), got "
            f"len(X)={len(X)} and len(Y)={len(Y)}"
        )
    batch_size = _validate.integer(batch_size, "batch_size", 1)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be a bool, got {_validate.describe(shuffle)}")
    order = _rng(seed).permutation(len(X)) if shuffle else None
    return _iterate_batches(X, Y, batch_size, order)


def _iterate_batches(X: np.ndarray, Y: np.ndarray, batch_size: int, order: Optional[np.ndarray]):
    for start in range(0, len(X), batch_size):
        if order is None:
            yield X[start : start + batch_size], Y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield X[idx], Y[idx]
