"""The Rust ``train_epoch`` against the pure-Python reference's, from the same weights and seed.

Every optimizer and option of docs/maths.md (part two) runs >= 200 optimizer steps on both;
weights (per layer: max|a - b| / max|b|) and epoch losses must agree to 1e-9. The Rust kernels
use FMA and 8-lane sums, so identical bits are NOT expected; the shuffles and dropout masks come
from the same SplitMix64 stream, so any difference in what is drawn would show as O(1) errors.
Finally ``fit`` itself (schedule, validation, early stopping) runs on both networks through
``ferrinet.training.FitMixin``.
"""

from __future__ import annotations

import numpy as np
import pytest
from ferrinet import NeuralNetwork, optim, reference, schedules
from ferrinet.training import FitMixin

RTOL = 1e-9
N, BATCH, EPOCHS = 24, 3, 25  # 8 batches an epoch, 200 optimizer steps
SIZES = [3, 5, 4, 2]


def make_data(loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, SIZES[0]))
    m = SIZES[-1]
    if loss == "mse":
        Y = rng.normal(size=(N, m))
    elif loss == "binary_cross_entropy":
        Y = (rng.uniform(size=(N, m)) < 0.5).astype(float)
    elif loss == "poisson":
        Y = rng.poisson(1.5, size=(N, m)).astype(float)
    else:
        Y = rng.integers(0, m, size=N)
        Y[:m] = np.arange(m)  # every class present
    return X, Y


CASES = {
    # name: (loss, activation, optimizer, train_epoch options)
    "sgd": ("mse", "tanh", optim.SGD(lr=0.05), {}),
    "sgd-momentum": (
        "binary_cross_entropy",
        "sigmoid",
        optim.SGD(lr=0.05, momentum=0.9, dampening=0.1),
        {},
    ),
    "sgd-nesterov": ("cross_entropy", "tanh", optim.SGD(lr=0.02, momentum=0.9, nesterov=True), {}),
    "sgd-weight_decay": ("mse", "leaky_relu", optim.SGD(lr=0.05, weight_decay=0.01), {}),
    "rmsprop": ("cross_entropy", "tanh", optim.RMSprop(lr=0.003), {}),
    "rmsprop-centered-momentum": (
        "mse",
        "tanh",
        optim.RMSprop(lr=0.002, centered=True, momentum=0.5, weight_decay=0.001),
        {},
    ),
    "adam": ("cross_entropy", "relu", optim.Adam(lr=0.01), {}),
    # scikit-learn's placement of eps, with an eps large enough for the placement to matter
    "adam-sklearn-eps": (
        "poisson",
        "tanh",
        optim.Adam(lr=0.01, eps=1e-3, eps_placement="sklearn", amsgrad=True),
        {},
    ),
    "adam-amsgrad": (
        "binary_cross_entropy",
        "tanh",
        optim.Adam(lr=0.01, amsgrad=True, weight_decay=0.01),
        {},
    ),
    "adamw": ("mse", "tanh", optim.AdamW(lr=0.01, weight_decay=0.1), {}),
    "l2": ("cross_entropy", "tanh", optim.Adam(lr=0.01), {"l2": 0.01}),
    "dropout": ("cross_entropy", "relu", optim.SGD(lr=0.05, momentum=0.5), {"dropout": [0.3, 0.1]}),
    "dropout-one-rate": ("mse", "tanh", optim.Adam(lr=0.005), {"dropout": 0.2}),
    "clip_norm": ("mse", "tanh", optim.SGD(lr=0.1), {"clip_norm": 0.05}),
    "sample_weight": (
        "binary_cross_entropy",
        "tanh",
        optim.RMSprop(lr=0.003),
        {"sample_weight": "linspace"},
    ),
    "class_weight": (
        "cross_entropy",
        "tanh",
        optim.Adam(lr=0.01),
        {"class_weight": {0: 2.0, 1: 0.5}},
    ),
    "class_weight-balanced": (
        "cross_entropy",
        "tanh",
        optim.SGD(lr=0.05),
        {"class_weight": "balanced", "sample_weight": "linspace"},
    ),
    "no-shuffle": ("mse", "tanh", optim.Adam(lr=0.01), {"shuffle": False}),
    "everything": (
        "cross_entropy",
        "relu",
        optim.AdamW(lr=0.01, amsgrad=True),
        {
            "l2": 0.001,
            "dropout": [0.2, 0.2],
            "clip_norm": 0.5,
            "sample_weight": "linspace",
            "class_weight": "balanced",
        },
    ),
}


def relative_errors(rust, ref):
    """Per layer and per W / b: max|a - b| / max|b|."""
    errors = []
    for (W, b), (W_ref, b_ref) in zip(rust.get_weights(), ref.get_weights()):
        for a, r in ((W, np.array(W_ref)), (b, np.array(b_ref))):
            scale = np.abs(r).max()
            errors.append(np.abs(a - r).max() / scale if scale > 0 else np.abs(a).max())
    return errors


def pair(loss, activation, seed=1):
    rust = NeuralNetwork(SIZES, activation=activation, loss=loss, seed=seed)
    ref = reference.NeuralNetwork(SIZES, activation=activation, loss=loss, seed=seed)
    ref.set_weights([(W.tolist(), b.tolist()) for W, b in rust.get_weights()])
    return rust, ref


@pytest.mark.parametrize("case", list(CASES))
def test_train_epoch_matches_the_reference(case):
    loss, activation, opt, options = CASES[case]
    options = dict(options)
    X, Y = make_data(loss)
    if options.get("sample_weight") == "linspace":
        options["sample_weight"] = np.linspace(0.2, 2.0, N)
    options.setdefault("shuffle", True)
    rust, ref = pair(loss, activation)
    assert relative_errors(rust, ref) == [0.0] * 6  # the same initial weights
    rust_losses, ref_losses = [], []
    for _ in range(EPOCHS):
        rust_losses.append(
            rust.train_epoch(X, Y, batch_size=BATCH, optimizer=opt, seed=42, **options)
        )
        ref_losses.append(
            ref.train_epoch(X, Y, batch_size=BATCH, optimizer=opt, seed=42, **options)
        )
    steps = rust.training_state.t
    assert steps == ref.training_state.t == EPOCHS * (N // BATCH) >= 200
    errors = relative_errors(rust, ref)
    assert max(errors) <= RTOL, f"{case}: relative weight errors {errors}"
    np.testing.assert_allclose(rust_losses, ref_losses, rtol=RTOL, atol=0)
    # it learned something, so the comparison is not between two frozen networks
    moved = max(
        np.abs(W - W0).max()
        for (W, _), (W0, _) in zip(rust.get_weights(), pair(loss, activation)[0].get_weights())
    )
    assert moved > 1e-3


def test_learning_rate_changes_match():
    """set_learning_rate between epochs (what schedules do) on both."""
    X, Y = make_data("cross_entropy")
    rust, ref = pair("cross_entropy", "tanh")
    for epoch in range(EPOCHS):
        lr = 0.02 * 0.9**epoch
        for net in (rust, ref):
            if epoch:
                net.set_learning_rate(lr)
            net.train_epoch(
                X, Y, batch_size=BATCH, optimizer=optim.Adam(lr=0.02), seed=9, dropout=0.1
            )
        assert rust.learning_rate == ref.learning_rate == lr
    assert max(relative_errors(rust, ref)) <= RTOL


def test_sample_weights_match_the_reference():
    X, Y = make_data("cross_entropy")
    rust, ref = pair("cross_entropy", "tanh")
    w = np.linspace(0.5, 1.5, N)
    for cw in ({0: 3.0}, "balanced"):
        np.testing.assert_array_equal(
            rust.sample_weights(Y, w, cw), ref.sample_weights(Y, w.tolist(), cw)
        )
    onehot = np.eye(2)[Y]
    np.testing.assert_array_equal(
        rust.sample_weights(onehot, None, "balanced"), ref.sample_weights(onehot, None, "balanced")
    )


# The reference gets ``fit`` from the same mixin as the Rust network.
ReferenceWithFit = reference.NeuralNetwork
assert issubclass(ReferenceWithFit, FitMixin)


def test_fit_matches_the_reference_fit():
    X, Y = make_data("cross_entropy")
    rust = NeuralNetwork(SIZES, activation="tanh", loss="cross_entropy", seed=1)
    ref = ReferenceWithFit(SIZES, activation="tanh", loss="cross_entropy", seed=1)
    kwargs = dict(
        epochs=30,
        batch_size=BATCH,
        optimizer="adam",
        learning_rate=0.02,
        seed=5,
        verbose=0,
        validation_split=0.25,
        dropout=0.1,
        l2=1e-3,
        class_weight="balanced",
        schedule=schedules.ReduceLROnPlateau(factor=0.5, patience=1),
        early_stopping={"patience": 4},
    )
    h_rust, h_ref = rust.fit(X, Y, **kwargs), ref.fit(X, Y, **kwargs)
    assert h_rust.epochs_completed == h_ref.epochs_completed >= 5
    assert h_rust.stopped_reason == h_ref.stopped_reason
    assert h_rust.best_epoch == h_ref.best_epoch
    assert h_rust.lr == h_ref.lr
    np.testing.assert_allclose(h_rust.loss, h_ref.loss, rtol=RTOL)
    np.testing.assert_allclose(h_rust.val_loss, h_ref.val_loss, rtol=RTOL)
    assert h_rust.metrics == h_ref.metrics
    assert max(relative_errors(rust, ref)) <= RTOL
    # and a warm start continues both
    h_rust = rust.fit(X, Y, epochs=3, warm_start=True, verbose=0, validation_split=0.25)
    h_ref = ref.fit(X, Y, epochs=3, warm_start=True, verbose=0, validation_split=0.25)
    assert h_rust.epoch == h_ref.epoch and h_rust.lr == h_ref.lr
    assert max(relative_errors(rust, ref)) <= RTOL
    assert rust.evaluate(X, Y)["accuracy"] == ref.evaluate(X, Y)["accuracy"]
