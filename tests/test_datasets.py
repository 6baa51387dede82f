"""Tests for ferrinet.datasets (synthetic generators, bundled data, helpers)."""

import ast
import math
import pathlib

import numpy as np
import pytest
from conftest import load_modules

_DATASETS_PY = pathlib.Path(__file__).resolve().parents[1] / "python" / "ferrinet" / "datasets.py"


(ds,) = load_modules("datasets")


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------
# Module hygiene
# ---------------------------------------------------------------------------


def _imports(path):
    """(top-level modules imported, relative imports as names) of a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported, relative = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                relative.update(
                    [node.module] if node.module else [alias.name for alias in node.names]
                )
            else:
                imported.add(node.module.split(".")[0])
    return imported, relative


def test_module_imports_only_stdlib_and_numpy():
    # from the rest of ferrinet, datasets.py takes only the argument checks of _validate.py,
    # which import nothing but the standard library: no Rust extension, no network
    imported, relative = _imports(_DATASETS_PY)
    assert relative <= {"_validate"}, "datasets.py must not import from the rest of ferrinet"
    validate_imported, validate_relative = _imports(_DATASETS_PY.parent / "_validate.py")
    assert not validate_relative, "_validate.py must not import from the rest of ferrinet"
    assert validate_imported <= {"__future__", "math", "numbers", "typing"}
    allowed = {
        "__future__",
        "csv",
        "functools",
        "gzip",
        "io",
        "math",
        "numbers",
        "pathlib",
        "typing",
        "importlib",
        "numpy",
    }
    assert imported <= allowed, f"unexpected imports: {sorted(imported - allowed)}"
    assert "sklearn" not in imported and "ferrinet" not in imported
    assert not {"urllib", "http", "socket", "requests"} & imported


def test_data_files_and_attribution_are_shipped():
    data = _DATASETS_PY.parent / "data"
    assert (data / "digits.csv.gz").is_file()
    assert (data / "iris.csv").is_file()
    readme = (data / "README.md").read_text(encoding="utf-8")
    for needle in ("Alpaydin", "Kaynak", "Fisher", "CC BY 4.0", "scikit-learn", "BSD"):
        assert needle in readme


# ---------------------------------------------------------------------------
# xor / sine
# ---------------------------------------------------------------------------


def test_xor_points_and_targets():
    X, y = ds.xor()
    assert X.shape == (4, 2) and y.shape == (4, 1)
    assert X.dtype == np.float64 and y.dtype == np.float64
    expected = np.logical_xor(X[:, 0] > 0.5, X[:, 1] > 0.5).astype(float)
    np.testing.assert_array_equal(y[:, 0], expected)
    assert {tuple(row) for row in X} == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_sine_shapes_range_and_exact_without_noise():
    X, y = ds.sine(n=300, noise=0.0, seed=3)
    assert X.shape == (300, 1) and y.shape == (300, 1)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert X.min() >= -np.pi and X.max() <= np.pi
    assert X.min() < -2.5 and X.max() > 2.5  # actually spread over the interval
    np.testing.assert_array_equal(y, np.sin(X))


def test_sine_noise_has_requested_scale_and_keeps_x():
    X0, _ = ds.sine(n=5000, noise=0.0, seed=1)
    X, y = ds.sine(n=5000, noise=0.2, seed=1)
    np.testing.assert_array_equal(X, X0)
    residual = y - np.sin(X)
    assert abs(residual.mean()) < 0.02
    assert 0.18 < residual.std() < 0.22


def test_sine_seeding():
    assert _same(ds.sine(50, 0.1, seed=7), ds.sine(50, 0.1, seed=7))
    assert not np.array_equal(ds.sine(50, 0.1, seed=7)[0], ds.sine(50, 0.1, seed=8)[0])


# ---------------------------------------------------------------------------
# moons / circles / spirals / blobs
# ---------------------------------------------------------------------------


def test_moons_shapes_dtypes_and_balance():
    X, y = ds.moons(n=201, noise=0.1, seed=0)
    assert X.shape == (201, 2) and X.dtype == np.float64
    assert y.shape == (201,) and y.dtype == np.int64
    assert sorted(np.bincount(y).tolist()) == [100, 101]
    assert set(np.unique(y)) == {0, 1}
    # shuffled: labels are not in two sorted blocks
    assert np.any(np.diff(y) < 0)


def test_moons_geometry_without_noise():
    X, y = ds.moons(n=200, noise=0.0, seed=0)
    outer, inner = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-12)
    assert np.all(outer[:, 1] >= -1e-12)  # upper half circle
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0, atol=1e-12)
    assert np.all(inner[:, 1] <= 0.5 + 1e-12)  # lower half of the shifted circle
    # t runs over the whole of [0, pi]: the end points are present
    assert np.isclose(outer[:, 0].max(), 1.0) and np.isclose(outer[:, 0].min(), -1.0)
    assert np.isclose(inner[:, 0].min(), 0.0) and np.isclose(inner[:, 0].max(), 2.0)


def test_moons_noise_moves_points_off_the_circles():
    X, y = ds.moons(n=400, noise=0.1, seed=0)
    r = np.hypot(X[y == 0, 0], X[y == 0, 1])
    assert 0.05 < np.abs(r - 1.0).mean() < 0.2


def test_moons_seeding():
    assert _same(ds.moons(seed=5), ds.moons(seed=5))
    assert not np.array_equal(ds.moons(seed=5)[0], ds.moons(seed=6)[0])


def test_circles_geometry_and_balance():
    X, y = ds.circles(n=101, noise=0.0, factor=0.3, seed=2)
    assert X.shape == (101, 2) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 51]
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(r[y == 1], 0.3, atol=1e-12)
    # no duplicated points (angles exclude 2*pi)
    assert len(np.unique(np.round(X, 12), axis=0)) == 101


def test_circles_seeding_and_noise():
    assert _same(ds.circles(seed=1), ds.circles(seed=1))
    assert not np.array_equal(ds.circles(seed=1)[0], ds.circles(seed=2)[0])
    X, y = ds.circles(n=400, noise=0.05, factor=0.5, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert abs(r[y == 1].mean() - 0.5) < 0.02 and abs(r[y == 0].mean() - 1.0) < 0.02
    assert r[y == 1].std() > 0.01


@pytest.mark.parametrize("factor", [0.0, 1.0, -0.5, 1.5])
def test_circles_rejects_bad_factor(factor):
    with pytest.raises(ValueError, match="factor must be strictly between 0 and 1"):
        ds.circles(factor=factor)


def test_spirals_balanced_and_bounded():
    X, y = ds.spirals(n=301, classes=3, noise=0.2, seed=0)
    assert X.shape == (301, 2) and X.dtype == np.float64
    assert y.shape == (301,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [101, 100, 100]
    assert np.all(np.hypot(X[:, 0], X[:, 1]) <= 1.0 + 1e-12)
    X5, y5 = ds.spirals(n=500, classes=5, seed=0)
    assert np.bincount(y5).tolist() == [100] * 5


def test_spirals_geometry_without_noise():
    X, y = ds.spirals(n=300, classes=3, noise=0.0, seed=0)
    r = np.hypot(X[:, 0], X[:, 1])
    for k in range(3):
        rk = np.sort(r[y == k])
        np.testing.assert_allclose(rk, np.linspace(0.0, 1.0, 100), atol=1e-12)
    # (x, y) = (r sin theta, r cos theta) with theta = 4k + 4r
    mask = r > 1e-9
    theta = 4.0 * y[mask] + 4.0 * r[mask]
    np.testing.assert_allclose(X[mask, 0], r[mask] * np.sin(theta), atol=1e-12)
    np.testing.assert_allclose(X[mask, 1], r[mask] * np.cos(theta), atol=1e-12)


def test_spirals_seeding():
    assert _same(ds.spirals(seed=4), ds.spirals(seed=4))
    assert not np.array_equal(ds.spirals(seed=4)[0], ds.spirals(seed=5)[0])


def test_blobs_random_centers_inside_box():
    X, y = ds.blobs(n=100, centers=4, n_features=3, cluster_std=0.0, center_box=(-2.0, 5.0), seed=0)
    assert X.shape == (100, 3) and y.shape == (100,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [25, 25, 25, 25]
    # std 0: every point of a cluster is its centre, which lies in the box
    for c in range(4):
        pts = X[y == c]
        assert np.all(pts == pts[0])
    assert X.min() >= -2.0 and X.max() <= 5.0
    assert len(np.unique(X, axis=0)) == 4


def test_blobs_given_centers_and_stds():
    centers = np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0]])
    X, y = ds.blobs(n=3001, centers=centers, cluster_std=[0.5, 1.0, 2.0], seed=0)
    assert X.shape == (3001, 2)
    assert np.bincount(y).tolist() == [1001, 1000, 1000]
    for c, std in enumerate([0.5, 1.0, 2.0]):
        pts = X[y == c]
        np.testing.assert_allclose(pts.mean(axis=0), centers[c], atol=0.2)
        np.testing.assert_allclose(pts.std(axis=0), std, rtol=0.1)


def test_blobs_width_taken_from_centers():
    X, _ = ds.blobs(n=10, centers=np.zeros((2, 5)), seed=0)
    assert X.shape == (10, 5)
    with pytest.raises(ValueError, match="does not match centers"):
        ds.blobs(n=10, centers=np.zeros((2, 5)), n_features=3)


def test_blobs_seeding_and_default():
    X, y = ds.blobs()
    assert X.shape == (200, 2) and set(np.unique(y)) == {0, 1, 2}
    assert _same(ds.blobs(seed=9), ds.blobs(seed=9))
    assert not np.array_equal(ds.blobs(seed=9)[0], ds.blobs(seed=10)[0])


def test_blobs_validation():
    with pytest.raises(ValueError, match=r"cluster_std must be a number or have shape \(3,\)"):
        ds.blobs(centers=3, cluster_std=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"cluster_std must be a finite number in \[0, inf\)"):
        ds.blobs(cluster_std=-1.0)
    with pytest.raises(ValueError, match="center_box must satisfy low < high"):
        ds.blobs(center_box=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"shape \(k, n_features\)"):
        ds.blobs(centers=np.zeros(3))
    with pytest.raises(ValueError, match="n must be an integer >= 5"):
        ds.blobs(n=4, centers=5)


@pytest.mark.parametrize("make", [ds.moons, ds.circles, ds.spirals, ds.blobs, ds.sine])
def test_generators_validate_common_arguments(make):
    with pytest.raises(TypeError, match="n must be an integer"):
        make(n=10.0)
    with pytest.raises(ValueError, match="n must be an integer >= "):
        make(n=0)
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        make(seed=1.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        make(seed=-1)


@pytest.mark.parametrize("make", [ds.moons, ds.circles, ds.spirals, ds.sine])
def test_generators_reject_negative_noise(make):
    with pytest.raises(ValueError, match=r"noise must be a finite number in \[0, inf\)"):
        make(noise=-0.1)


def test_spirals_rejects_single_class():
    with pytest.raises(ValueError, match="classes must be an integer >= 2, got 1"):
        ds.spirals(classes=1)


def test_generator_accepts_numpy_generator_seed():
    a = ds.moons(seed=np.random.default_rng(3))
    b = ds.moons(seed=np.random.default_rng(3))
    assert _same(a, b)


# ---------------------------------------------------------------------------
# Bundled real data
# ---------------------------------------------------------------------------


def test_digits_shape_dtype_values():
    X, y = ds.digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 16.0
    np.testing.assert_array_equal(X, np.round(X))
    assert set(np.unique(y)) == set(range(10))


def test_digits_class_counts_match_uci_test_set():
    _, y = ds.digits()
    counts = np.bincount(y, minlength=10)
    # counts of optdigits.tes, read from the data file
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert counts.sum() == 1797
    assert counts.min() >= 174 and counts.max() <= 183


def test_digits_known_first_image_and_images_view():
    X, y = ds.digits()
    assert y[0] == 0
    assert X[0, :8].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    images, y2 = ds.digits(return_images=True)
    assert images.shape == (1797, 8, 8) and images.dtype == np.float64
    np.testing.assert_array_equal(images.reshape(1797, 64), X)
    np.testing.assert_array_equal(y2, y)
    # a zero has an empty middle: centre pixels darker than the ring around them
    zeros = images[y == 0].mean(axis=0)
    assert zeros[3:5, 3:5].mean() < zeros[1:7, 1:7].mean()


def test_digits_returns_fresh_copies():
    X, y = ds.digits()
    X[:] = -1
    y[:] = -1
    X2, y2 = ds.digits()
    assert X2.min() == 0 and y2.min() == 0


def test_iris_shape_classes_and_known_rows():
    X, y = ds.iris()
    assert X.shape == (150, 4) and X.dtype == np.float64
    assert y.shape == (150,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 50, 50]
    np.testing.assert_array_equal(X[0], [5.1, 3.5, 1.4, 0.2])
    np.testing.assert_array_equal(X[-1], [5.9, 3.0, 5.1, 1.8])
    # samples 35 and 38 as printed in Fisher (1936)
    np.testing.assert_array_equal(X[34], [4.9, 3.1, 1.5, 0.2])
    np.testing.assert_array_equal(X[37], [4.9, 3.6, 1.4, 0.1])
    assert np.all(X > 0) and X.max() < 8.0
    # setosa is separable by petal length
    assert X[y == 0, 2].max() < X[y != 0, 2].min()


def test_iris_names_and_copies():
    assert ds.IRIS_CLASS_NAMES == ("setosa", "versicolor", "virginica")
    assert len(ds.IRIS_FEATURE_NAMES) == 4 and "petal width (cm)" in ds.IRIS_FEATURE_NAMES
    assert ds.DIGITS_CLASS_NAMES == tuple("0123456789")
    X, _ = ds.iris()
    X[0, 0] = 100.0
    assert ds.iris()[0][0, 0] == 5.1


# ---------------------------------------------------------------------------
# train_test_split
# ---------------------------------------------------------------------------


def _ids(n, width=3):
    """Rows carrying their own index, so we can track where they went."""
    X = np.repeat(np.arange(n, dtype=float)[:, None], width, axis=1)
    y = np.arange(n)
    return X, y


@pytest.mark.parametrize(
    "n, test_size, n_test",
    [
        (100, 0.25, 25),
        (10, 0.25, 3),
        (7, 0.5, 4),
        (100, 0.07, 7),
        (100, 0.28, 28),
        (10, 0.01, 1),
        (50, 10, 10),
        (50, 49, 49),
    ],
)
def test_split_sizes(n, test_size, n_test):
    X, y = _ids(n)
    X_tr, X_te, y_tr, y_te = ds.train_test_split(X, y, test_size=test_size, seed=0)
    assert len(X_te) == len(y_te) == n_test
    assert len(X_tr) == len(y_tr) == n - n_test


def test_split_is_disjoint_covering_and_aligned():
    X, y = _ids(101)
    X_tr, X_te, y_tr, y_te = ds.train_test_split(X, y, test_size=0.3, seed=1)
    np.testing.assert_array_equal(X_tr[:, 0], y_tr)
    np.testing.assert_array_equal(X_te[:, 0], y_te)
    together = np.concatenate([y_tr, y_te])
    assert np.array_equal(np.sort(together), np.arange(101))  # every row exactly once
    assert not set(y_tr.tolist()) & set(y_te.tolist())
    assert not np.array_equal(y_te, np.sort(y_te))  # shuffled


def test_split_seeding():
    X, y = _ids(60)
    a = ds.train_test_split(X, y, seed=3)
    b = ds.train_test_split(X, y, seed=3)
    c = ds.train_test_split(X, y, seed=4)
    assert _same(a, b)
    assert not np.array_equal(a[3], c[3])


def test_split_keeps_2d_targets():
    X, y = _ids(20)
    Y = np.eye(20)
    _, _, Y_tr, Y_te = ds.train_test_split(X, Y, test_size=5)
    assert Y_tr.shape == (15, 20) and Y_te.shape == (5, 20)


def test_split_stratified_keeps_proportions():
    X, y = ds.iris()
    for seed in range(5):
        X_tr, X_te, y_tr, y_te = ds.train_test_split(X, y, test_size=0.2, seed=seed, stratify=True)
        assert np.bincount(y_te).tolist() == [10, 10, 10]
        assert np.bincount(y_tr).tolist() == [40, 40, 40]


def test_split_stratified_unbalanced_classes():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    X = np.arange(100, dtype=float)[:, None]
    _, X_te, _, y_te = ds.train_test_split(X, y, test_size=0.3, seed=0, stratify=True)
    assert np.bincount(y_te).tolist() == [18, 9, 3]
    assert np.array_equal(y[X_te[:, 0].astype(int)], y_te)
    # 25 test samples of 60/30/10 -> ideal shares 15, 7.5, 2.5
    _, _, _, y_te = ds.train_test_split(X, y, test_size=25, seed=0, stratify=True)
    assert y_te.size == 25
    # floors 15 + 7 + 2 = 24; the tie for the last one goes to the smaller class index
    assert np.bincount(y_te, minlength=3).tolist() == [15, 8, 2]


def test_split_stratify_with_label_array():
    X, y = ds.digits()
    Y = np.eye(10)[y]  # one-hot targets, stratify on the labels
    X_tr, X_te, Y_tr, Y_te = ds.train_test_split(X, Y, test_size=0.25, seed=0, stratify=y)
    assert len(X_te) == math.ceil(0.25 * 1797)
    share_all = np.bincount(y) / len(y)
    share_test = Y_te.sum(axis=0) / len(Y_te)
    assert np.max(np.abs(share_all - share_test)) < 0.005


def test_split_plain_shuffle_is_not_stratified_by_accident():
    # sanity check of the previous test: unstratified splits vary more
    X, y = ds.iris()
    spreads = []
    for seed in range(10):
        y_te = ds.train_test_split(X, y, test_size=0.2, seed=seed)[3]
        spreads.append(np.ptp(np.bincount(y_te, minlength=3)))
    assert max(spreads) > 0


def test_split_validation():
    X, y = _ids(10)
    with pytest.raises(ValueError, match=r"same number of samples.*len\(X\)=10 and len\(y\)=9"):
        ds.train_test_split(X, y[:9])
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match=r"open interval \(0, 1\), got"):
            ds.train_test_split(X, y, test_size=bad)
    for bad in (0, 10, 11, -1):
        with pytest.raises(ValueError, match="between 1 and n - 1 = 9"):
            ds.train_test_split(X, y, test_size=bad)
    with pytest.raises(TypeError, match="test_size must be a float in"):
        ds.train_test_split(X, y, test_size="0.2")
    with pytest.raises(TypeError, match="test_size must be a float in"):
        ds.train_test_split(X, y, test_size=True)
    # fraction that leaves nothing for training
    with pytest.raises(ValueError, match="both sets must be non-empty"):
        ds.train_test_split(X[:2], y[:2], test_size=0.9)
    with pytest.raises(ValueError, match="at least 2 samples"):
        ds.train_test_split(X[:1], y[:1])


def test_split_stratify_validation():
    X, y = _ids(10)
    with pytest.raises(ValueError, match="stratify=True needs y to be a 1-D"):
        ds.train_test_split(X, np.eye(10), stratify=True)
    with pytest.raises(ValueError, match=r"stratify given as labels must have shape \(10,\)"):
        ds.train_test_split(X, y, stratify=np.zeros(9))
    labels = np.array([0] * 9 + [1])
    with pytest.raises(ValueError, match="at least 2 samples of every class"):
        ds.train_test_split(X, labels, stratify=True)
    labels = np.arange(10) % 5
    with pytest.raises(ValueError, match="expected train and test sizes >= 5"):
        ds.train_test_split(X, labels, test_size=0.2, stratify=True)


# ---------------------------------------------------------------------------
# Standardizer / standardize
# ---------------------------------------------------------------------------


def test_standardize_train_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal([3.0, -7.0, 100.0], [0.1, 5.0, 30.0], size=(500, 3))
    X_test = rng.normal(0.0, 1.0, size=(50, 3))
    Z_train, Z_test = ds.standardize(X_train, X_test)
    np.testing.assert_allclose(Z_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1.0, atol=1e-12)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    np.testing.assert_allclose(Z_test, (X_test - mean) / std, rtol=1e-12)
    # the test set is NOT re-centred on its own statistics
    assert np.abs(Z_test.mean(axis=0)).max() > 1.0


def test_standardize_single_argument_returns_array():
    X = np.arange(12.0).reshape(4, 3)
    Z = ds.standardize(X)
    assert isinstance(Z, np.ndarray) and Z.shape == (4, 3)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=1e-12)


def test_standardize_constant_column_becomes_zero():
    # 7 copies of 0.1 have a float mean != 0.1 and a float std of ~1e-17, so a
    # naive "std == 0" test would not catch this column
    X = np.column_stack([np.arange(7.0), np.full(7, 0.1), np.full(7, -3.0)])
    Z_train, Z_test = ds.standardize(X, np.array([[1.0, 0.1, -3.0], [1.0, 1.1, -2.0]]))
    assert np.all(np.isfinite(Z_train)) and np.all(np.isfinite(Z_test))
    np.testing.assert_array_equal(Z_train[:, 1:], 0.0)
    np.testing.assert_array_equal(Z_test[0, 1:], 0.0)
    np.testing.assert_allclose(Z_test[1, 1:], [1.0, 1.0])  # scale 1 on constant columns


def test_standardizer_class():
    X = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    scaler = ds.Standardizer()
    Z = scaler.fit_transform(X)
    np.testing.assert_allclose(scaler.mean_, [3.0, 2.0])
    np.testing.assert_allclose(scaler.scale_, [np.sqrt(8.0 / 3.0), 1.0])  # ddof=0
    np.testing.assert_allclose(scaler.transform(X), Z)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, atol=1e-12)
    assert scaler.fit(X) is scaler


def test_standardizer_validation():
    with pytest.raises(RuntimeError, match="not fitted"):
        ds.Standardizer().transform(np.zeros((2, 2)))
    scaler = ds.Standardizer().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="X has 3 features .* fitted on 2"):
        scaler.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"must be 2-D .* got shape \(5,\)"):
        ds.standardize(np.arange(5.0))
    with pytest.raises(ValueError, match="at least one sample"):
        ds.standardize(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="finite"):
        ds.standardize(np.array([[1.0, np.nan]]))


# ---------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------


def test_one_hot_round_trip():
    y = np.array([2, 0, 1, 2, 4])
    Y = ds.one_hot(y)
    assert Y.shape == (5, 5) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    assert set(np.unique(Y)) == {0.0, 1.0}


def test_one_hot_n_classes_and_float_labels():
    Y = ds.one_hot([1.0, 0.0, 1.0], n_classes=4)
    assert Y.shape == (3, 4)
    np.testing.assert_array_equal(Y, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    _, y = ds.digits()
    np.testing.assert_array_equal(ds.one_hot(y).argmax(axis=1), y)
    assert ds.one_hot(np.array([], dtype=int), n_classes=3).shape == (0, 3)


def test_one_hot_validation():
    with pytest.raises(ValueError, match="non-negative, got -1"):
        ds.one_hot([0, -1, 2])
    with pytest.raises(ValueError, match="non-integer values such as \\[0.5\\]"):
        ds.one_hot([0.0, 0.5])
    with pytest.raises(ValueError, match="labels must be < n_classes=3, got label 3"):
        ds.one_hot([0, 3], n_classes=3)
    with pytest.raises(ValueError, match=r"1-D array of class labels, got shape \(2, 2\)"):
        ds.one_hot(np.eye(2))
    with pytest.raises(TypeError, match="integer class labels, got dtype"):
        ds.one_hot(np.array([True, False]))
    with pytest.raises(TypeError, match="integer class labels, got dtype"):
        ds.one_hot(["a", "b"])
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1"):
        ds.one_hot([0], n_classes=0)
    with pytest.raises(ValueError, match="empty y"):
        ds.one_hot([])


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------


def test_batches_cover_every_sample_once():
    X, y = _ids(100)
    got = list(ds.batches(X, y, batch_size=32))
    assert [len(xb) for xb, _ in got] == [32, 32, 32, 4]
    for xb, yb in got:
        assert len(xb) == len(yb)
        np.testing.assert_array_equal(xb[:, 0], yb)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in got]), np.arange(100))


def test_batches_exact_multiple_and_large_batch():
    X, y = _ids(12)
    assert [len(b) for b, _ in ds.batches(X, y, 4)] == [4, 4, 4]
    assert [len(b) for b, _ in ds.batches(X, y, 50)] == [12]


def test_batches_shuffle_reproducible():
    X, y = _ids(50)
    first = [yb for _, yb in ds.batches(X, y, 8, shuffle=True, seed=3)]
    again = [yb for _, yb in ds.batches(X, y, 8, shuffle=True, seed=3)]
    other = [yb for _, yb in ds.batches(X, y, 8, shuffle=True, seed=4)]
    assert _same(first, again)
    order = np.concatenate(first)
    assert np.array_equal(np.sort(order), np.arange(50))  # still each sample once
    assert not np.array_equal(order, np.arange(50))
    assert not np.array_equal(order, np.concatenate(other))
    for xb, yb in ds.batches(X, y, 8, shuffle=True, seed=3):
        np.testing.assert_array_equal(xb[:, 0], yb)


def test_batches_validation_is_eager():
    X, y = _ids(10)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        ds.batches(X, y, 0)
    with pytest.raises(TypeError, match="batch_size must be an integer >= 1, got 2.5"):
        ds.batches(X, y, 2.5)
    with pytest.raises(ValueError, match=r"len\(X\)=10 and len\(Y\)=8"):
        ds.batches(X, y[:8], 2)
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        ds.batches(X, y, 2, shuffle="yes")
