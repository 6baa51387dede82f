"""ferrinet's demo, in five parts: ``python -m ferrinet.demo`` (``make demo``).

1. The article's own example: XOR with a relu hidden layer and the mean squared error, trained
   one sample at a time with ``train``; then a small regression (a noisy sine).
2. Proof that the maths is right: a gradient check fails on the article's backward pass and
   passes on ferrinet's; the Rust core and the pure-Python reference train in lockstep.
3. Real data: handwritten digits, 64-32-10 with softmax and cross-entropy.
4. Speed: the same training run in Rust and in the pure-Python reference.
5. Mini-batch training with ``fit`` (Adam, validation, early stopping) on the digits and on a
   2-D problem (three spirals), and pictures of both: the loss curves, a grid of test digits
   with the predictions (mistakes in red) and the spirals' decision boundary, written as PNG
   files into ``--out`` (default ``./ferrinet-demo-output/``) when matplotlib is installed
   (``pip install ferrinet[plot]``); without it, or with ``--no-plots``, they are skipped.

Everything is seeded, so every run prints the same numbers (the timings aside).

Usage: ``python -m ferrinet.demo [--out DIR] [--no-plots]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

import ferrinet
from ferrinet import datasets, reference

WIDTH = 78


def section(number: int, title: str) -> None:
    print()
    print("=" * WIDTH)
    print(f"{number}. {title}")
    print("=" * WIDTH)


def r_squared(prediction: np.ndarray, target: np.ndarray) -> float:
    """1 - (residual sum of squares) / (total sum of squares)."""
    residual = float(((prediction - target) ** 2).sum())
    total = float(((target - target.mean()) ** 2).sum())
    return 1.0 - residual / total


def max_abs_diff(weights_a, weights_b) -> float:
    """Largest |a - b| over every weight and bias of two networks ([(W, b)] per layer)."""
    return max(
        float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))
        for (Wa, ba), (Wb, bb) in zip(weights_a, weights_b)
        for a, b in ((Wa, Wb), (ba, bb))
    )


def clean(value: float, digits: int = 4) -> float:
    """Rounded, without the "-0.0000" of a tiny negative number."""
    return round(value, digits) + 0.0


# --------------------------------------------------------------------------------------------
# 1. The article's example
# --------------------------------------------------------------------------------------------
def article_example() -> None:
    section(1, "The article's example: XOR, then a regression")
    X, Y = datasets.xor()
    net = ferrinet.NeuralNetwork([2, 8, 1], activation="relu", loss="mse", seed=0)
    print(f"{net}")
    print("Per-sample SGD with net.train(X, Y, epochs, learning_rate), the article's loop;")
    print("it returns the mean loss of every epoch (the article printed them).\n")
    epochs, lr = 200, 0.05
    losses = net.train(X, Y, epochs, lr)
    print(f"  {'epoch':>5}  {'mean squared error':>18}")
    for epoch in (0, 1, 2, 5, 10, 20, 50, 100, epochs - 1):
        print(f"  {epoch:>5}  {losses[epoch]:>18.3e}")

    prediction = net.predict(X)
    print(f"\n  {'x0':>3} {'x1':>3}  {'target':>6}  {'output':>8}  {'class':>5}")
    for x, t, p in zip(X, Y, prediction):
        print(
            f"  {x[0]:>3.0f} {x[1]:>3.0f}  {t[0]:>6.0f}  {clean(p[0]):>8.4f}  {int(p[0] > 0.5):>5}"
        )
    accuracy = float(np.mean((prediction > 0.5) == (Y > 0.5)))
    print(f"  accuracy {accuracy:.0%}")

    # A regression: the article's ReLU-everywhere network could not even output sin(x) < 0.
    X, Y = datasets.sine(200, noise=0.1, seed=0)
    X_train, X_test, Y_train, Y_test = datasets.train_test_split(X, Y, test_size=0.25, seed=0)
    print(
        "\nRegression: y = sin(x) + noise (sd 0.1), x in [-pi, pi]; 150 training, 50 test points."
    )
    print(f"  {'network':<48}  {'train mse':>9}  {'test R^2':>8}")
    for output, note in (
        (None, "identity output (ferrinet)"),
        ("relu", "relu output (the article, erratum 6)"),
    ):
        net = ferrinet.NeuralNetwork([1, 16, 16, 1], output_activation=output, seed=0)
        losses = net.train(X_train, Y_train, 300, 0.005)
        r2 = r_squared(net.predict(X_test), Y_test)
        print(f"  {'1-16-16-1, ' + note:<48}  {losses[-1]:>9.4f}  {r2:>8.3f}")
    best = 1.0 - 0.1**2 / float(np.var(Y_test))
    print(f"  (the noise alone limits the test R^2 to about {best:.3f})")


# --------------------------------------------------------------------------------------------
# 2. The gradient check and the parity check
# --------------------------------------------------------------------------------------------
def gradient_check(X_digits, y_digits) -> None:
    section(2, "Is the maths right? A gradient check, then Rust vs the Python reference")
    print("gradcheck compares each gradient with a central finite difference of the loss:")
    print("(L(p + eps) - L(p - eps)) / 2 eps, for every weight and bias p.\n")
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.0, 1.0, (8, 2))
    Y = rng.uniform(-1.0, 1.0, (8, 2))

    # The article's backward pass only runs when every layer has the same width (erratum 2).
    article_net = reference.NeuralNetwork([2, 2, 2], activation="relu", loss="mse", seed=0)
    report = ferrinet.gradcheck(article_net, X, Y, gradients=reference.article_gradients)
    print("The article's backward pass (reference.article_gradients), 2-2-2 network, 8 samples:")
    print(_indent(str(report)))
    print(
        f"-> a relative error of {report.max_rel_error:.2f}: {report.max_rel_error / report.tol:.1e} times the "
        "tolerance."
    )
    print("   What it gets wrong, by the numbers of docs/article-errata.md:")
    print("   1  the last layer's weight gradients use the network's output, not its input;")
    print("   3  the error is sent back through weights it has already updated;")
    print("   5  the input of the layer below is recomputed, with the wrong layer (the layer list")
    print("      is indexed by a neuron count);")
    print("   6  a hard-coded ReLU test on the (identity) output zeroes the gradient of every")
    print("      sample whose output is negative;")
    print("   7  the error is t - o, not the derivative 2 (o - t) / m of the loss it reports")
    print("      (with m = 2 outputs the factor 2/m is 1, so this one does not show here).")
    wide = reference.NeuralNetwork([2, 8, 1], activation="relu", loss="mse", seed=0)
    try:
        reference.article_gradients(wide, X, Y[:, :1])
        print("   On a 2-8-1 network the article's code ran (unexpected).")
    except IndexError as error:
        print(f"   2  and on a 2-8-1 network it does not run at all: IndexError ({error}),")
        print(
            "      the error vector is sized by the output, not the layer's input; in Rust, a panic."
        )

    net = ferrinet.NeuralNetwork([2, 2, 2], activation="relu", loss="mse", seed=0)
    net.set_weights(article_net.get_weights())  # the same seed draws them anyway (docs/maths.md)
    report = ferrinet.gradcheck(net, X, Y)
    print("\nferrinet's backward pass (Rust), the same network, weights and data:")
    print(_indent(str(report)))

    print("\nParity: the Rust core and ferrinet.reference (pure Python, docs/maths.md operation by")
    print(
        "operation) take 200 SGD steps side by side on digits (64-32-10, softmax, cross-entropy),"
    )
    print("comparing the loss and every weight after every step:")
    net = ferrinet.NeuralNetwork([64, 32, 10], loss="cross_entropy", seed=0)
    parity = ferrinet.check_parity(net, X_digits[:50], y_digits[:50], steps=200, learning_rate=0.01)
    print(_indent(str(parity)))
    print("  (The reference sums left to right; the Rust kernels sum in 8 lanes with fused")
    print(
        f"  multiply-adds, so they differ by rounding: {parity.max_rel_diff_after_step1:.1e} after"
    )
    print(f"  the first step, {parity.max_rel_diff:.1e} at most over all 200.)")


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


# --------------------------------------------------------------------------------------------
# 3. Real data
# --------------------------------------------------------------------------------------------
DIGITS_EPOCHS = 15
DIGITS_LR = 0.01


def digits_data():
    X, y = datasets.digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.25, seed=0, stratify=True
    )
    X_train, X_test = datasets.standardize(X_train, X_test)  # statistics of the training part
    return X_train, X_test, y_train, y_test


def digits(X_train, X_test, y_train, y_test) -> ferrinet.NeuralNetwork:
    section(3, "Real data: handwritten digits")
    print(
        f"UCI digits: {len(X_train) + len(X_test)} images of 8x8 pixels, 10 classes; a stratified split"
    )
    print(f"into {len(X_train)} training and {len(X_test)} test images; pixels standardized.")
    net = ferrinet.NeuralNetwork([64, 32, 10], activation="relu", loss="cross_entropy", seed=0)
    print(f"{net}")
    print(
        f"Per-sample SGD, learning rate {DIGITS_LR}, {DIGITS_EPOCHS} epochs, one net.train call per epoch.\n"
    )

    def accuracy(X, y) -> float:
        return float(np.mean(net.predict(X).argmax(axis=1) == y))

    print(f"  {'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'test acc':>8}  {'time':>8}")
    for epoch in range(1, DIGITS_EPOCHS + 1):
        # train(..., 1, ...) epoch after epoch is the same run as train(..., DIGITS_EPOCHS, ...)
        started = time.perf_counter()
        (loss,) = net.train(X_train, y_train, 1, DIGITS_LR)
        elapsed = time.perf_counter() - started
        print(
            f"  {epoch:>5}  {loss:>10.4f}  {accuracy(X_train, y_train):>9.2%}  "
            f"{accuracy(X_test, y_test):>8.2%}  {elapsed * 1e3:>6.1f} ms"
        )
    print(f"\nTest accuracy after {DIGITS_EPOCHS} epochs: {accuracy(X_test, y_test):.2%}")
    return net


# --------------------------------------------------------------------------------------------
# 4. Speed
# --------------------------------------------------------------------------------------------
def speed(X_train, y_train) -> None:
    section(4, "Speed: the same training run in Rust and in pure Python")
    n = min(1000, len(X_train))
    X, y = X_train[:n], y_train[:n]
    start = ferrinet.NeuralNetwork([64, 32, 10], loss="cross_entropy", seed=0)
    print(f"One epoch of per-sample SGD on {n} digits, 64-32-10, from the same starting weights.\n")

    ref = reference.NeuralNetwork([64, 32, 10], loss="cross_entropy", seed=0)
    ref.set_weights(start.get_weights())
    X_list, y_list = X.tolist(), y.tolist()
    started = time.perf_counter()
    ref_losses = ref.train(X_list, y_list, 1, DIGITS_LR)
    ref_seconds = time.perf_counter() - started

    # The Rust run is short, so time it several times (each from the starting weights) and keep
    # the fastest, the one least disturbed by whatever else the machine is doing.
    rust_seconds = float("inf")
    for _ in range(20):
        net = start.copy()
        started = time.perf_counter()
        rust_losses = net.train(X, y, 1, DIGITS_LR)
        rust_seconds = min(rust_seconds, time.perf_counter() - started)

    rust_us, ref_us = rust_seconds / n * 1e6, ref_seconds / n * 1e6
    print(f"  {'implementation':<36}  {'total':>9}  {'per step':>11}")
    print(
        f"  {'ferrinet (Rust), net.train':<36}  {rust_seconds * 1e3:>6.1f} ms  {rust_us:>8.2f} µs"
    )
    print(
        f"  {'ferrinet.reference (pure Python)':<36}  {ref_seconds * 1e3:>6.0f} ms  {ref_us:>8.1f} µs"
    )
    print(f"  Rust is {ref_us / rust_us:,.0f} times faster.")
    diff = max_abs_diff(net.get_weights(), ref.get_weights())
    same = (
        "bit for bit the same"
        if diff == 0.0
        else "the same up to rounding (Rust sums in 8 FMA lanes, the reference left to right)"
    )
    print(
        f"\n  Same answer? max |W_rust - W_reference| = {diff:.1e} over the "
        f"{net.n_parameters:,} parameters:"
    )
    print(f"  {same};")
    print(f"  epoch loss {rust_losses[0]!r} (Rust) vs {ref_losses[0]!r} (reference).")
    print("  (benches/bench_sgd.py compares with NumPy too: `make bench`.)")


# --------------------------------------------------------------------------------------------
# 5. fit, and pictures
# --------------------------------------------------------------------------------------------
DEFAULT_OUT = Path("ferrinet-demo-output")


def fit_and_pictures(out: Optional[Path], X_train, X_test, y_train, y_test) -> List[Path]:
    section(5, "Mini-batch training with fit, and pictures")
    print("net.fit: shuffled mini-batches of 32, Adam (learning rate 1e-3), the last 15% of the")
    print("training images held out for validation, early stopping when the validation loss has")
    print("not improved for 8 epochs (the best epoch's weights are restored).\n")
    net = ferrinet.NeuralNetwork([64, 64, 10], activation="relu", loss="cross_entropy", seed=0)
    started = time.perf_counter()
    history = net.fit(
        X_train,
        y_train,
        epochs=200,
        batch_size=32,
        optimizer="adam",
        learning_rate=1e-3,
        validation_split=0.15,
        early_stopping={"patience": 8},
        verbose=0,
    )
    elapsed = time.perf_counter() - started
    best = history.best_epoch
    assert best is not None
    print(f"  {net}")
    print(
        f"  {history.epochs_completed} epochs in {elapsed:.2f} s, stopped: {history.stopped_reason};"
        f" best epoch {best + 1}"
    )
    print(
        f"  (val_loss {history.val_loss[best]:.4f}, val_accuracy "
        f"{history.metrics['val_accuracy'][best]:.2%})"
    )
    result = net.evaluate(X_test, y_test)
    print(f"  test loss {result['loss']:.4f}, test accuracy {result['accuracy']:.2%}")

    X, y = datasets.spirals(300, classes=3, noise=0.2, seed=0)
    spirals = ferrinet.NeuralNetwork(
        [2, 64, 64, 3], activation="relu", loss="cross_entropy", seed=0
    )
    spirals.fit(X, y, epochs=300, batch_size=32, learning_rate=0.01, verbose=0)
    spirals_accuracy = spirals.evaluate(X, y)["accuracy"]
    print(f"\nThree interleaved spirals (300 points in 2-D), {spirals}:")
    print(f"  300 epochs of Adam, training accuracy {spirals_accuracy:.1%}")

    if out is None:
        print("\n(pictures not requested: --no-plots)")
        return []
    # the first 30 test images and the next 10 mistakes, shown as the raw pixels (0..16; the
    # network saw them standardized pixel by pixel, which is no picture to look at)
    raw, labels = datasets.digits()
    _, raw_test, _, raw_labels = datasets.train_test_split(
        raw, labels, test_size=0.25, seed=0, stratify=True
    )
    assert np.array_equal(raw_labels, y_test)  # the same split as digits_data()
    predictions = net.predict(X_test).argmax(axis=1)
    wrong = np.flatnonzero(predictions != y_test)
    shown = np.concatenate([np.arange(30), wrong[wrong >= 30][:10]])
    return write_pictures(
        out,
        history=history,
        digits=(raw_test[shown], y_test[shown], predictions[shown]),
        boundary=(spirals, X, y),
    )


def write_pictures(
    out: "str | Path",
    history: Optional[ferrinet.History] = None,
    digits: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None,
    boundary: Optional[Tuple[Any, np.ndarray, np.ndarray]] = None,
) -> List[Path]:
    """Write the pictures of what is given into the directory ``out`` (created if needed) and
    say where; without matplotlib, say that they were skipped. Returns the files written."""
    try:
        from ferrinet import plot
    except ImportError:
        print(
            "\nmatplotlib is not installed: skipped the pictures "
            "(pip install ferrinet[plot] to get them)."
        )
        return []
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    if history is not None:
        path = directory / "loss_curve.png"
        plot.plot_history(history, path=path, title="Digits, 64-64-10: loss and accuracy per epoch")
        written.append(path)
    if digits is not None:
        images, labels, predictions = digits
        path = directory / "digits.png"
        n_wrong = int(np.sum(labels != predictions))
        plot.plot_digits(
            images,
            labels,
            predictions,
            ncols=10,
            path=path,
            title=f"Test digits and the network's predictions ({n_wrong} wrong, in red)",
        )
        written.append(path)
    if boundary is not None:
        net, X, y = boundary
        path = directory / "decision_boundary.png"
        plot.plot_decision_boundary(net, X, y, path=path)
        written.append(path)
    if written:
        print(f"\nWrote {len(written)} pictures to {directory.resolve()}{os.sep}:")
        for path in written:
            print(f"  {path.name}")
    return written


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ferrinet.demo",
        description="ferrinet's demo: the article's example, the gradient and parity checks, "
        "digits, speed, and fit with pictures.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"directory for the pictures (PNG; created if needed; default ./{DEFAULT_OUT}/)",
    )
    parser.add_argument(
        "--no-plots",
        action="store_true",
        help="do not write the pictures",
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    print(
        f'ferrinet {ferrinet.__version__}: the neural network of "from scratch in Rust", '
        "with a correct backward pass"
    )
    article_example()
    X_train, X_test, y_train, y_test = digits_data()
    gradient_check(X_train, y_train)
    digits(X_train, X_test, y_train, y_test)
    speed(X_train, y_train)
    fit_and_pictures(None if args.no_plots else args.out, X_train, X_test, y_train, y_test)
    print(f"\n(demo finished in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
