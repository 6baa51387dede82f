"""ferrinet.plot: the pictures are written, are PNGs of the size the figure says, show what the
model predicts (checked pixel by pixel), and bad input is refused with a clear error.

matplotlib is an optional extra: `import ferrinet` must not import it, and `ferrinet.plot`
without it must say how to install it (both checked in subprocesses)."""

import os
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import ferrinet  # noqa: E402
from ferrinet import (
    datasets,  # noqa: E402
    plot,  # noqa: E402
)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import imread  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_python(code, timeout=120):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return result


def read_png(path):
    """The image as floats (height, width, channels), after checking the PNG signature."""
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE, f"{path} is not a PNG file"
    return imread(path)


def expected_pixels(fig, dpi=None):
    width, height = fig.get_size_inches()
    dpi = fig.dpi if dpi is None else dpi
    return int(round(height * dpi)), int(round(width * dpi))


# --------------------------------------------------------------------------------------------
# Fixtures: small trained models (milliseconds in Rust)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs_net():
    X, y = datasets.blobs(150, centers=3, cluster_std=1.5, seed=1)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = ferrinet.NeuralNetwork([2, 16, 3], loss="cross_entropy", seed=0)
    net.fit(X, y, epochs=40, learning_rate=0.02, verbose=0)
    return net, X, y


@pytest.fixture(scope="module")
def moons_net():
    X, y = datasets.moons(200, noise=0.15, seed=0)
    net = ferrinet.NeuralNetwork([2, 16, 16, 1], loss="binary_cross_entropy", seed=0)
    net.fit(X, y, epochs=80, learning_rate=0.01, verbose=0)
    return net, X, y


@pytest.fixture(scope="module")
def history():
    X, y = datasets.moons(200, noise=0.2, seed=0)
    net = ferrinet.NeuralNetwork([2, 16, 2], loss="cross_entropy", seed=0)
    return net.fit(
        X,
        y,
        epochs=25,
        learning_rate=0.01,
        validation_split=0.2,
        verbose=0,
        early_stopping={"patience": 3},
    )


# --------------------------------------------------------------------------------------------
# matplotlib is optional
# --------------------------------------------------------------------------------------------
def test_import_ferrinet_does_not_import_matplotlib():
    result = run_python(
        """
        import sys
        import ferrinet, ferrinet.demo
        net = ferrinet.NeuralNetwork([2, 3, 1])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib")
        assert not loaded, loaded
        print("clean")
        """
    )
    assert result.returncode == 0 and "clean" in result.stdout, result.stderr


def test_without_matplotlib_the_error_says_how_to_install_it():
    result = run_python(
        """
        import sys
        sys.modules["matplotlib"] = None  # what an absent package looks like to import
        import ferrinet
        try:
            import ferrinet.plot
        except ImportError as error:
            print("ImportError:", error)
        else:
            raise SystemExit("ferrinet.plot imported without matplotlib")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install ferrinet[plot]" in result.stdout


def test_the_demo_skips_its_pictures_without_matplotlib(tmp_path):
    result = run_python(
        f"""
        import sys
        sys.modules["matplotlib"] = None
        from ferrinet import demo
        demo.write_pictures({str(tmp_path)!r})
        """
    )
    assert result.returncode == 0, result.stderr
    assert "matplotlib is not installed: skipped the pictures" in result.stdout
    assert "pip install ferrinet[plot]" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_the_backend_the_user_chose_is_left_alone_and_pyplot_is_not_imported(tmp_path):
    result = run_python(
        f"""
        import sys
        import matplotlib
        matplotlib.use("svg")
        import ferrinet.plot
        from ferrinet import datasets
        X, y = datasets.moons(50)
        ferrinet.plot.plot_decision_boundary(lambda P: (P[:, 0] > 0).astype(int), X, y,
                                             path={str(tmp_path / "a.png")!r})
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        assert "matplotlib.pyplot" not in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
    assert read_png(tmp_path / "a.png").ndim == 3


# --------------------------------------------------------------------------------------------
# PNG files
# --------------------------------------------------------------------------------------------
def test_each_function_writes_a_png_of_the_figure_size(tmp_path, history, blobs_net):
    net, X, y = blobs_net
    images, labels = datasets.digits()
    cases = {
        "history.png": lambda p: plot.plot_history(history, path=p),
        "boundary.png": lambda p: plot.plot_decision_boundary(net, X, y, path=p, resolution=50),
        "digits.png": lambda p: plot.plot_digits(
            images[:23], labels[:23], labels[:23], ncols=6, path=p
        ),
    }
    for name, draw in cases.items():
        target = tmp_path / name
        fig = draw(target)
        assert isinstance(fig, Figure)
        pixels = read_png(target)
        assert pixels.shape[:2] == expected_pixels(fig), name
        assert pixels.shape[2] in (3, 4)
        assert pixels[..., :3].std() > 0.05, f"{name} is blank"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(cases), "temporary files left"


def test_dpi_and_pathlike_and_str_paths(tmp_path, history):
    fig = plot.plot_history(history, path=str(tmp_path / "small.png"), dpi=50)
    small = read_png(tmp_path / "small.png").shape[:2]
    assert small == expected_pixels(fig, dpi=50)
    fig = plot.plot_history(history, path=tmp_path / "UPPER.PNG")
    assert read_png(tmp_path / "UPPER.PNG").shape[:2] == expected_pixels(fig, dpi=100)
    assert small == expected_pixels(fig, dpi=50)  # the same figure at half the resolution


def test_writing_is_atomic_a_failed_save_leaves_the_old_file_and_no_debris(
    tmp_path, history, monkeypatch
):
    target = tmp_path / "history.png"
    plot.plot_history(history, path=target)
    before = target.read_bytes()

    def broken_savefig(self, fname, **kwargs):
        fname.write(PNG_SIGNATURE + b"half a picture")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot.plot_history(history, path=target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["history.png"]


def test_the_file_gets_an_ordinary_mode_not_the_temporary_files_0600(tmp_path, history):
    target = tmp_path / "h.png"
    plot.plot_history(history, path=target)
    umask = os.umask(0)
    os.umask(umask)
    # What open(path, "w") would give: 0o666 less the umask (0o644 under the usual 022).
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------------------------
# plot_history: what is drawn
# --------------------------------------------------------------------------------------------
def line_data(fig):
    return {
        line.get_label(): np.asarray(line.get_ydata(), dtype=float)
        for ax in fig.axes
        for line in ax.get_lines()
    }


def test_history_draws_every_curve_with_its_values(history):
    assert history.val_loss and "accuracy" in history.metrics
    fig = plot.plot_history(history)
    lines = line_data(fig)
    np.testing.assert_array_equal(lines["training loss"], history.loss)
    np.testing.assert_array_equal(lines["validation loss"], history.val_loss)
    np.testing.assert_array_equal(lines["training accuracy"], history.metrics["accuracy"])
    np.testing.assert_array_equal(lines["validation accuracy"], history.metrics["val_accuracy"])
    assert len(fig.axes) == 2
    best = [label for label in lines if label.startswith("best epoch")]
    assert best == [f"best epoch ({history.epoch[history.best_epoch] + 1})"]
    assert history.stopped_reason.replace("_", " ") in fig.texts[0].get_text()


def test_history_into_a_given_axes_puts_metrics_on_a_twin_axis(history):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.plot_history(history, ax=ax) is fig
    assert len(fig.axes) == 2  # ax and its twin
    lines = line_data(fig)
    np.testing.assert_array_equal(lines["training loss"], history.loss)
    assert set(lines) >= {"validation loss", "training accuracy", "validation accuracy"}


def test_history_from_a_dict_and_from_a_regression_fit():
    X, Y = datasets.sine(60, seed=0)
    net = ferrinet.NeuralNetwork([1, 8, 1], activation="tanh", seed=0)
    h = net.fit(X, Y, epochs=5, verbose=0)
    fig = plot.plot_history(h)
    assert len(fig.axes) == 1  # no metrics for a regression
    np.testing.assert_array_equal(line_data(fig)["training loss"], h.loss)
    fig = plot.plot_history(h.as_dict())
    np.testing.assert_array_equal(line_data(fig)["training loss"], h.loss)


def test_history_of_a_scikit_learn_estimator():
    neural_network = pytest.importorskip("sklearn.neural_network")
    X, y = datasets.moons(120, seed=0)
    clf = neural_network.MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=15, early_stopping=True, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 15 iterations are few, on purpose
        clf.fit(X, y)
    fig = plot.plot_history(clf)
    lines = line_data(fig)
    np.testing.assert_array_equal(lines["training loss"], clf.loss_curve_)
    np.testing.assert_array_equal(lines["validation score"], clf.validation_scores_)


def test_history_with_a_validation_loss_curve_attribute():
    class Fitted:  # the shape of ferrinet.sklearn's estimators
        loss_curve_ = [1.0, 0.5, 0.25]
        validation_loss_curve_ = [1.1, 0.7, 0.6]

        def fit(self, X, y):
            return self

    lines = line_data(plot.plot_history(Fitted()))
    np.testing.assert_array_equal(lines["validation loss"], [1.1, 0.7, 0.6])


def test_history_uses_a_log_axis_when_the_loss_spans_decades():
    fig = plot.plot_history({"loss": [10.0, 1.0, 0.01, 1e-4]})
    assert fig.axes[0].get_yscale() == "log"
    fig = plot.plot_history({"loss": [1.0, 0.5]})
    assert fig.axes[0].get_yscale() == "linear"


# --------------------------------------------------------------------------------------------
# plot_decision_boundary: the colours are the model's predictions
# --------------------------------------------------------------------------------------------
def boundary_mismatches(fig, png, true_class, n_classes, resolution, step=5):
    """Compare the PNG with the model, pixel by pixel: for sampled pixels of the plot area
    (away from the points, the legend and the frame, and where the model predicts the same
    class one and a half grid cells around, so the grid's resolution cannot matter), the
    pixel's colour must be the region colour of the class the model predicts there.
    Returns (mismatches, checked, classes seen)."""
    image = read_png(png)[..., :3]
    height, width = image.shape[:2]
    ax = fig.axes[0]
    to_data = ax.transData.inverted()
    box = ax.get_window_extent()
    legend = ax.get_legend().get_window_extent()
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    points_px = ax.transData.transform(points)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    cell = np.array([(x1 - x0) / resolution, (y1 - y0) / resolution]) * 1.5
    palette = np.asarray(plot.region_colors(n_classes))

    rows, cols = np.mgrid[0:height:step, 0:width:step].reshape(2, -1)
    x, y = cols + 0.5, height - rows - 0.5  # display coordinates: origin bottom-left
    keep = (box.x0 + 4 < x) & (x < box.x1 - 4) & (box.y0 + 4 < y) & (y < box.y1 - 4)
    keep &= ~((legend.x0 - 2 < x) & (x < legend.x1 + 2) & (legend.y0 - 2 < y) & (y < legend.y1 + 2))
    distance = np.hypot(x[:, None] - points_px[None, :, 0], y[:, None] - points_px[None, :, 1])
    keep &= distance.min(axis=1) >= 12
    rows, cols = rows[keep], cols[keep]
    data = to_data.transform(np.column_stack([x[keep], y[keep]]))
    around = [data + np.array(shift) * cell for shift in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]
    predicted = np.stack([true_class(p) for p in around])
    stable = np.all(predicted == predicted[0], axis=0)
    classes = predicted[0][stable]
    observed = image[rows[stable], cols[stable]]
    expected = palette[classes]
    wrong = np.any(np.abs(observed - expected) > 1.5 / 255, axis=1)
    return int(wrong.sum()), int(stable.sum()), set(classes.tolist())


def test_boundary_colours_match_a_multiclass_network(tmp_path, blobs_net):
    net, X, y = blobs_net
    fig = plot.plot_decision_boundary(net, X, y, path=tmp_path / "b.png", resolution=120)

    def true_class(P):
        return net.predict(P).argmax(axis=1)

    wrong, checked, seen = boundary_mismatches(fig, tmp_path / "b.png", true_class, 3, 120)
    assert checked > 1000 and seen == {0, 1, 2}
    assert wrong == 0, f"{wrong} of {checked} pixels do not show the model's prediction"

    # negative control: the same check with the picture mirrored left-right fails
    mirrored = read_png(tmp_path / "b.png")[:, ::-1]
    from matplotlib.image import imsave

    imsave(tmp_path / "mirrored.png", mirrored)
    wrong, checked, _ = boundary_mismatches(fig, tmp_path / "mirrored.png", true_class, 3, 120)
    assert wrong > checked // 10


def test_boundary_colours_match_a_binary_network_with_one_sigmoid_output(tmp_path, moons_net):
    net, X, y = moons_net
    fig = plot.plot_decision_boundary(net, X, y, path=tmp_path / "m.png")

    def true_class(P):
        return (net.predict(P)[:, 0] >= 0.5).astype(int)

    wrong, checked, seen = boundary_mismatches(fig, tmp_path / "m.png", true_class, 2, 300)
    assert checked > 1000 and seen == {0, 1}
    assert wrong == 0, f"{wrong} of {checked} pixels do not show the model's prediction"

    # negative control: claiming the other class everywhere fails everywhere
    wrong, checked, _ = boundary_mismatches(
        fig, tmp_path / "m.png", lambda P: 1 - true_class(P), 2, 300
    )
    assert wrong == checked


def test_boundary_follows_classes_order_and_string_labels(tmp_path):
    class Quadrants:
        """An estimator whose classes_ are strings in a non-sorted order."""

        classes_ = np.array(["west", "north", "south"])

        def predict(self, P):
            P = np.asarray(P)
            return np.where(P[:, 0] < 0, "west", np.where(P[:, 1] > 0, "north", "south"))

    model = Quadrants()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (60, 2))
    y = model.predict(X)
    fig = plot.plot_decision_boundary(model, X, y, path=tmp_path / "q.png", resolution=64)

    index = {"west": 0, "north": 1, "south": 2}  # the order of classes_, not sorted

    def true_class(P):
        return np.array([index[label] for label in model.predict(P)])

    wrong, checked, seen = boundary_mismatches(fig, tmp_path / "q.png", true_class, 3, 64)
    assert checked > 1000 and seen == {0, 1, 2} and wrong == 0
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:3] == ["class west", "class north", "class south"]


def test_boundary_of_a_plain_function_and_of_the_reference_network(tmp_path):
    X, y = datasets.xor()
    fig = plot.plot_decision_boundary(
        lambda P: (P[:, 0] > P[:, 1]).astype(int), X, y, path=tmp_path / "f.png", resolution=80
    )
    wrong, checked, seen = boundary_mismatches(
        fig, tmp_path / "f.png", lambda P: (P[:, 0] > P[:, 1]).astype(int), 2, 80
    )
    assert seen == {0, 1} and wrong == 0 and checked > 1000

    ref = ferrinet.reference.NeuralNetwork([2, 4, 2], loss="cross_entropy", seed=3)
    fig = plot.plot_decision_boundary(ref, X, y.ravel(), resolution=20)
    assert "of 4 points right" in fig.axes[0].get_title()


def test_boundary_marks_the_misclassified_points(blobs_net):
    net, X, y = blobs_net
    flipped = y.copy()
    flipped[:7] = (flipped[:7] + 1) % 3  # 7 labels the model now gets "wrong"
    wrong_before = int((net.predict(X).argmax(axis=1) != y).sum())
    fig = plot.plot_decision_boundary(net, X, flipped, resolution=20)
    wrong = int((net.predict(X).argmax(axis=1) != flipped).sum())
    assert wrong >= 7 - wrong_before
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"misclassified ({wrong})" in legend
    crosses = fig.axes[0].collections[-1].get_offsets()
    assert len(crosses) == wrong
    accuracy = 1 - wrong / len(X)
    assert f"{accuracy:.1%} of {len(X)} points right" in fig.axes[0].get_title()


def test_boundary_into_a_given_axes(blobs_net):
    net, X, y = blobs_net
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert plot.plot_decision_boundary(net, X, y, ax=right, resolution=10) is fig
    assert right.images and not left.images


# --------------------------------------------------------------------------------------------
# plot_digits
# --------------------------------------------------------------------------------------------
def red_texts(fig):
    from matplotlib.colors import to_rgb

    return [t.get_text() for t in fig.axes[0].texts if to_rgb(t.get_color()) == (1.0, 0.0, 0.0)]


def test_digits_titles_and_mistakes():
    images, labels = datasets.digits()
    predictions = labels[:20].copy()
    predictions[[3, 11]] = [8, 0]
    fig = plot.plot_digits(images[:20], labels[:20], predictions, ncols=5)
    assert red_texts(fig) == [f"true {labels[3]}\npred 8", f"true {labels[11]}\npred 0"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 20 and texts[0] == f"true {labels[0]}\npred {labels[0]}"
    red_frames = [p for p in fig.axes[0].patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(red_frames) == 2
    assert "2 wrong predictions" in fig.texts[0].get_text()
    assert len(fig.axes[0].images) == 20


def test_digits_take_scores_and_28x28_images(tmp_path):
    rng = np.random.default_rng(0)
    flat = rng.uniform(0, 1, (7, 784))
    scores = rng.uniform(0, 1, (7, 10))
    fig = plot.plot_digits(flat, predictions=scores, ncols=4, path=tmp_path / "m.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == [f"pred {k}" for k in scores.argmax(axis=1)]
    assert fig.axes[0].images[0].get_array().shape == (28, 28)
    assert read_png(tmp_path / "m.png").shape[:2] == expected_pixels(fig)
    fig = plot.plot_digits(flat.reshape(7, 28, 28))
    assert not fig.axes[0].texts


def test_digits_draws_at_most_max_images_and_says_so():
    images, labels = datasets.digits()
    fig = plot.plot_digits(images[:30], labels[:30], max_images=12)
    assert len(fig.axes[0].images) == 12
    assert "the first 12 of 30 images" in fig.texts[0].get_text()


# --------------------------------------------------------------------------------------------
# Bad input: the class of the error and what its message says
# --------------------------------------------------------------------------------------------
def unfitted_estimator():
    class Unfitted:
        def fit(self, X, y):
            return self

    return Unfitted()


def test_bad_input_errors(tmp_path, history, blobs_net):
    net, X, y = blobs_net
    images, labels = datasets.digits()
    cases = [
        (lambda: plot.plot_history(42), TypeError, "expects a ferrinet.History"),
        (lambda: plot.plot_history(ferrinet.History()), ValueError, "no epochs"),
        (lambda: plot.plot_history({"val_loss": [1.0]}), ValueError, "needs a 'loss' list"),
        (
            lambda: plot.plot_history({"loss": [1, 2], "accuracy": [0.5]}),
            ValueError,
            "has 1 values but 'loss' has 2",
        ),
        (lambda: plot.plot_history({"loss": ["a", "b"]}), TypeError, "list of numbers"),
        (lambda: plot.plot_history(unfitted_estimator()), ValueError, "not fitted"),
        (lambda: plot.plot_history(history, ax="left"), TypeError, "matplotlib Axes"),
        (lambda: plot.plot_history(history, path=tmp_path / "h.jpg"), ValueError, ".png"),
        (
            lambda: plot.plot_history(history, path=tmp_path / "missing" / "h.png"),
            FileNotFoundError,
            "does not exist",
        ),
        (lambda: plot.plot_history(history, path=3), TypeError, "got int 3"),
        (lambda: plot.plot_history(history, path=tmp_path), ValueError, "is a directory"),
        (lambda: plot.plot_history(history, dpi=0), ValueError, "dpi must be in"),
        (lambda: plot.plot_decision_boundary(net, X[:, :1], y), ValueError, "got shape (150, 1)"),
        (lambda: plot.plot_decision_boundary(net, [["a", "b"]], [0]), TypeError, "real numbers"),
        (
            lambda: plot.plot_decision_boundary(net, X, y[:10]),
            ValueError,
            "expected 150 labels (one per sample), got 10",
        ),
        (
            lambda: plot.plot_decision_boundary(net, X, y + 3),
            ValueError,
            "not one of the model's classes",
        ),
        (lambda: plot.plot_decision_boundary(net, X, y + 0.5), ValueError, "non-integer"),
        (
            lambda: plot.plot_decision_boundary(net, np.full((3, 2), np.nan), [0, 1, 2]),
            ValueError,
            "finite",
        ),
        (
            lambda: plot.plot_decision_boundary(ferrinet.NeuralNetwork([3, 2]), X, y),
            ValueError,
            "2 inputs, got one with 3",
        ),
        (
            lambda: plot.plot_decision_boundary(
                ferrinet.NeuralNetwork([2, 3], loss="binary_cross_entropy"), X, y
            ),
            ValueError,
            "multi-label",
        ),
        (lambda: plot.plot_decision_boundary(object(), X, y), TypeError, "predict method"),
        (
            lambda: plot.plot_decision_boundary(net, X, y, resolution=1),
            ValueError,
            "resolution must be in [2, 2000], got 1",
        ),
        (
            lambda: plot.plot_decision_boundary(net, X, y, resolution=2.5),
            TypeError,
            "resolution must be an integer",
        ),
        (
            lambda: plot.plot_decision_boundary(lambda P: np.zeros(3), X, y, resolution=10),
            ValueError,
            "the model's predictions: expected 100 labels (one per sample), got 3",
        ),
        (
            lambda: plot.plot_decision_boundary(lambda P: P[:, 0], X, y, resolution=10),
            ValueError,
            "non-integer",
        ),
        (lambda: plot.plot_digits(images[0]), ValueError, "pass images[None]"),
        (lambda: plot.plot_digits(images[:, :50]), ValueError, "not a square"),
        (lambda: plot.plot_digits(np.array([["a"] * 64])), TypeError, "real numbers"),
        (
            lambda: plot.plot_digits(images[:5], labels[:4]),
            ValueError,
            "expected 5 labels (one per sample), got 4",
        ),
        (
            lambda: plot.plot_digits(images[:5], predictions=np.zeros((5, 2, 2))),
            ValueError,
            "shape (5, 2, 2)",
        ),
        (lambda: plot.plot_digits(images[:0]), ValueError, "empty"),
        (lambda: plot.plot_digits(images[:5], ncols=0), ValueError, "ncols must be >= 1, got 0"),
        (lambda: plot.plot_digits(images[:5], ncols=True), TypeError, "ncols must be an integer"),
        (lambda: plot.plot_digits(images[:5], cmap="no-such-map"), ValueError, "colormap"),
        (lambda: plot.plot_digits(np.full((2, 64), np.inf)), ValueError, "finite"),
    ]
    failures = []
    for k, (call, error, words) in enumerate(cases):
        try:
            call()
        except error as caught:
            if words not in str(caught):
                failures.append(f"case {k}: {error.__name__} without {words!r}: {caught}")
        except Exception as caught:  # noqa: BLE001 - report every case at once
            failures.append(f"case {k}: expected {error.__name__}, got {caught!r}")
        else:
            failures.append(f"case {k}: no error (expected {error.__name__})")
    assert not failures, "\n".join(failures)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing written by a refused call


def test_class_colours_are_tab10_and_regions_are_lighter():
    from matplotlib import colormaps

    colors = plot.class_colors(3)
    assert colors == [tuple(colormaps["tab10"](k)[:3]) for k in range(3)]
    for color, region in zip(colors, plot.region_colors(3)):
        assert all(r > c for r, c in zip(region, color) if c < 1.0)
    assert len(plot.class_colors(20)) == 20
    with pytest.raises(ValueError, match="n_classes must be in"):
        plot.class_colors(21)


# --------------------------------------------------------------------------------------------
# The demo's pictures (the whole demo runs in tests/test_scripts.py)
# --------------------------------------------------------------------------------------------
def test_the_demo_writes_its_three_pictures_and_says_where(tmp_path, capsys, history, blobs_net):
    from ferrinet import demo

    net, X, y = blobs_net
    images, labels = datasets.digits()
    out = tmp_path / "new" / "dir"
    written = demo.write_pictures(
        out, history=history, digits=(images[:12], labels[:12], labels[:12]), boundary=(net, X, y)
    )
    names = ["loss_curve.png", "digits.png", "decision_boundary.png"]
    assert [p.name for p in written] == names
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for path in written:
        assert read_png(path).ndim == 3
    printed = capsys.readouterr().out
    assert f"Wrote 3 pictures to {out.resolve()}" in printed
    assert all(name in printed for name in names)


def test_the_demo_command_line():
    from ferrinet import demo

    assert demo.parse_args([]).out == demo.DEFAULT_OUT
    assert str(demo.DEFAULT_OUT) == "ferrinet-demo-output"
    args = demo.parse_args(["--out", "pictures", "--no-plots"])
    assert args.out == pathlib.Path("pictures") and args.no_plots
    with pytest.raises(SystemExit):
        demo.parse_args(["--unknown"])
