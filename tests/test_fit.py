"""``NeuralNetwork.fit`` / ``train_epoch`` / ``evaluate`` (python/ferrinet/training.py).

fit is N calls of train_epoch plus orchestration between epochs, so most properties are exact
(bit for bit): fit == repeated train_epoch, a warm start == one long fit, validation_split ==
the same validation_data, early stopping restores exactly the weights a callback saw.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time

import ferrinet
import numpy as np
import pytest
from conftest import blobs3, count_while
from ferrinet import (
    DivergenceError,
    EarlyStopping,
    History,
    NeuralNetwork,
    datasets,
    optim,
    schedules,
    training,
)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    return X, Y


def classifier(seed=1, dtype="float64", sizes=(4, 16, 8, 3)):
    return NeuralNetwork(
        list(sizes), activation="tanh", loss="cross_entropy", seed=seed, dtype=dtype
    )


def weights_equal(a, b):
    return all(
        np.array_equal(wa, wb) and np.array_equal(ba, bb)
        for (wa, ba), (wb, bb) in zip(a.get_weights(), b.get_weights())
    )


def all_finite(net):
    return all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in net.get_weights())


@pytest.fixture
def no_tqdm(monkeypatch):
    """The fallback progress bar, whether or not tqdm is installed."""
    monkeypatch.setattr(training, "_tqdm_class", lambda: None)


# ----------------------------------------------------------------------------------------------
# fit is train_epoch repeated; warm start continues exactly
# ----------------------------------------------------------------------------------------------
OPTIMIZERS = [
    optim.SGD(lr=0.05),
    optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    optim.RMSprop(lr=0.005, centered=True, momentum=0.5),
    optim.Adam(lr=0.01, amsgrad=True),
    optim.AdamW(lr=0.01, weight_decay=0.05),
]


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: f"{o.name}")
def test_fit_equals_repeated_train_epoch(opt):
    X, y = blobs3(120)
    w = np.linspace(0.5, 1.5, len(y))
    kwargs = dict(
        batch_size=16,
        shuffle=True,
        l2=1e-3,
        dropout=[0.2, 0.1],
        clip_norm=5.0,
        sample_weight=w,
        class_weight={0: 2.0},
    )
    a, b = classifier(), classifier()
    history = a.fit(X, y, epochs=5, optimizer=opt, seed=7, verbose=0, **kwargs)
    losses = [b.train_epoch(X, y, optimizer=opt, seed=7, **kwargs) for _ in range(5)]
    assert history.loss == losses  # bit for bit
    assert weights_equal(a, b)
    assert a._training_info() == b._training_info()
    assert history.epochs_completed == 5 and history.stopped_reason == "completed"
    assert history.epoch == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "schedule, validation",
    [
        (schedules.StepLR(step_size=2, gamma=0.5), False),
        (schedules.CosineAnnealingLR(T_max=10, eta_min=1e-4), False),
        (schedules.ReduceLROnPlateau(factor=0.5, patience=0), True),
    ],
    ids=["step", "cosine", "plateau+validation"],
)
def test_warm_start_equals_one_long_fit(schedule, validation):
    X, y = blobs3(120)
    kwargs = dict(
        optimizer="adam",
        learning_rate=0.02,
        batch_size=8,
        dropout=0.1,
        seed=3,
        schedule=schedule,
        verbose=0,
    )
    if validation:
        kwargs["validation_split"] = 0.25
    long, parts = classifier(), classifier()
    h6 = long.fit(X, y, epochs=6, **kwargs)
    h3a = parts.fit(X, y, epochs=3, **kwargs)
    h3b = parts.fit(X, y, epochs=3, warm_start=True, **kwargs)
    assert h3a.loss + h3b.loss == h6.loss
    assert h3a.lr + h3b.lr == h6.lr
    assert h3a.val_loss + h3b.val_loss == h6.val_loss
    assert h3b.epoch == [3, 4, 5]
    assert weights_equal(long, parts)
    assert long._training_info() == parts._training_info()
    assert len(set(h6.lr)) > 1, "the schedule should have changed the learning rate"


def test_warm_start_leaving_out_the_arguments_continues_the_run():
    """warm_start=True with optimizer, seed and schedule left out: the run's own."""
    X, y = blobs3(120)
    long, parts = classifier(), classifier()
    sched = schedules.ExponentialLR(gamma=0.8)
    long.fit(
        X, y, epochs=4, optimizer="rmsprop", learning_rate=0.01, seed=11, schedule=sched, verbose=0
    )
    parts.fit(
        X, y, epochs=2, optimizer="rmsprop", learning_rate=0.01, seed=11, schedule=sched, verbose=0
    )
    h = parts.fit(X, y, epochs=2, warm_start=True, verbose=0)
    assert weights_equal(long, parts)
    assert h.lr == [0.01 * 0.8**2, 0.01 * 0.8**3]


def test_warm_start_false_starts_a_new_run():
    X, y = blobs3(120)
    a = classifier()
    a.fit(X, y, epochs=2, seed=5, verbose=0)
    start = a.get_weights()
    a.fit(X, y, epochs=2, seed=5, verbose=0)
    b = classifier()
    b.set_weights(start)
    b.fit(X, y, epochs=2, seed=5, verbose=0)
    assert weights_equal(a, b)
    assert a._training_info()["epochs"] == 2


def test_warm_start_refuses_another_optimizer_or_seed():
    X, y = blobs3(120)
    net = classifier()
    net.fit(X, y, epochs=1, optimizer="sgd", learning_rate=0.1, seed=2, verbose=0)
    before = (net.get_weights(), net._training_info())
    with pytest.raises(ValueError, match="warm_start=True continues"):
        net.fit(X, y, epochs=1, optimizer="adam", warm_start=True, verbose=0)
    with pytest.raises(ValueError, match="seed=2"):
        net.fit(X, y, epochs=1, seed=3, warm_start=True, verbose=0)
    assert net._training_info() == before[1]
    assert all(np.array_equal(w, v) for (w, _), (v, _) in zip(net.get_weights(), before[0]))


# ----------------------------------------------------------------------------------------------
# train_epoch: the run it starts and continues
# ----------------------------------------------------------------------------------------------
def test_train_epoch_starts_and_continues_a_run():
    X, y = blobs3(120)
    net = classifier()
    assert net.training_state is None and net.learning_rate is None
    net.train_epoch(X, y, optimizer="adam", learning_rate=0.01, seed=4)
    run = net.training_state
    assert (run.seed, run.epoch, run.t, run.lr) == (4, 1, 4, 0.01)  # 120 samples, batch 32
    assert run.optimizer == optim.Adam(lr=0.01)
    # the same optimizer and seed continue; optimizer=None continues with the run's optimizer
    net.train_epoch(X, y, optimizer="adam", learning_rate=0.01, seed=4)
    net.train_epoch(X, y, seed=None)
    assert net.training_state is run and run.epoch == 3
    with pytest.raises(ValueError, match="reset_training"):
        net.train_epoch(X, y, optimizer="adam", learning_rate=0.01, seed=5)
    with pytest.raises(ValueError, match="reset_training"):
        net.train_epoch(X, y, optimizer="sgd", seed=4)
    net.set_learning_rate(0.005)
    assert net.learning_rate == 0.005
    net.reset_training()
    assert net.training_state is None
    net.train_epoch(X, y, seed=4)  # a new run with the default optimizer, SGD
    assert net.training_state.optimizer == optim.SGD()


def test_train_epoch_refused_data_leave_no_run():
    """A run started by a call whose data Rust refuses is undone: the model is unchanged."""
    X, y = blobs3(120)
    net = classifier()
    w0 = net.get_weights()
    with pytest.raises(ValueError):
        net.train_epoch(X, np.full(len(y), 7), optimizer="adam")  # class 7 of 3
    assert net.training_state is None and net._training_info() is None
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(net.get_weights(), w0))


def test_class_weight_is_sample_weight():
    X, y = blobs3(120)
    table = {0: 3.0, 2: 0.5}
    a, b = classifier(), classifier()
    la = a.train_epoch(X, y, class_weight=table, sample_weight=np.full(len(y), 2.0))
    lb = b.train_epoch(X, y, sample_weight=2.0 * np.array([table.get(c, 1.0) for c in y]))
    assert la == lb and weights_equal(a, b)
    counts = np.bincount(y)
    balanced = a.sample_weights(y, class_weight="balanced")
    np.testing.assert_array_equal(balanced, [len(y) / (3 * counts[c]) for c in y])
    bce = NeuralNetwork([4, 3, 1], loss="binary_cross_entropy")
    np.testing.assert_array_equal(
        bce.sample_weights(np.array([0, 1, 1, 1.0]), class_weight="balanced"),
        [2.0, 2 / 3, 2 / 3, 2 / 3],
    )


# ----------------------------------------------------------------------------------------------
# early stopping, callbacks, validation
# ----------------------------------------------------------------------------------------------
def overfitting_problem():
    """Few noisy training samples, a big network: the validation loss turns up early."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4))
    Y = X[:, :1] + 0.5 * rng.normal(size=(80, 1))
    net = NeuralNetwork([4, 64, 64, 1], activation="tanh", seed=0)
    return net, X, Y


def test_early_stopping_restores_the_best_weights():
    net, X, Y = overfitting_problem()
    seen = []  # the weights after each epoch, as a callback sees them
    history = net.fit(
        X,
        Y,
        epochs=300,
        batch_size=8,
        learning_rate=0.01,
        validation_split=0.5,
        verbose=0,
        early_stopping={"patience": 5},
        callbacks=[lambda epoch, logs: seen.append(net.get_weights())],
    )
    assert history.stopped_reason == "early_stopping"
    best = int(np.argmin(history.val_loss))
    assert history.best_epoch == best and history.monitor == "val_loss"
    assert history.epochs_completed == best + 5 + 1 == len(seen) < 300
    restored = net.get_weights()
    assert all(
        np.array_equal(w, v) and np.array_equal(b, c)
        for (w, b), (v, c) in zip(restored, seen[best])
    )
    assert net.evaluate(X[40:], Y[40:])["loss"] == history.val_loss[best]
    # the replay: the same run without early stopping passes through the same weights
    replay, _, _ = overfitting_problem()
    h = replay.fit(
        X, Y, epochs=best + 1, batch_size=8, learning_rate=0.01, validation_split=0.5, verbose=0
    )
    assert h.val_loss == history.val_loss[: best + 1]
    assert weights_equal(net, replay)


def test_early_stopping_patience_min_delta_and_accuracy_monitor():
    X, y = blobs3(120)
    # min_delta larger than any change: only the first epoch improves
    net = classifier()
    kept = []
    h = net.fit(
        X,
        y,
        epochs=50,
        verbose=0,
        learning_rate=0.01,
        early_stopping=EarlyStopping(monitor="loss", patience=3, min_delta=1e9),
        callbacks=lambda e, logs: kept.append(net.get_weights()),
    )
    assert (h.stopped_reason, h.epochs_completed, h.best_epoch) == ("early_stopping", 4, 0)
    assert h.restored_best_weights
    assert all(np.array_equal(w, v) for (w, _), (v, _) in zip(net.get_weights(), kept[0]))
    # patience 0 stops at the first epoch without improvement, like patience 1 (Keras's rule)
    h0 = classifier().fit(
        X,
        y,
        epochs=50,
        verbose=0,
        early_stopping={"monitor": "loss", "patience": 0, "min_delta": 1e9},
    )
    assert h0.epochs_completed == 2
    # accuracy is maximised; restore_best_weights=False keeps the last weights
    net = classifier()
    h = net.fit(
        X,
        y,
        epochs=60,
        verbose=0,
        validation_split=0.3,
        learning_rate=0.05,
        early_stopping={"monitor": "val_accuracy", "patience": 2, "restore_best_weights": False},
    )
    assert h.monitor == "val_accuracy" and h.stopped_reason == "early_stopping"
    acc = h.metrics["val_accuracy"]
    assert acc[h.best_epoch] == max(acc) and all(a <= max(acc) for a in acc[h.best_epoch :])
    assert not h.restored_best_weights


def test_callbacks_can_stop_and_see_the_logs():
    X, y = blobs3(120)
    calls = []

    def recorder(epoch, logs):
        calls.append((epoch, dict(logs)))

    def stopper(epoch, logs):
        return epoch == 2

    net = classifier()
    h = net.fit(
        X, y, epochs=10, validation_data=(X[:20], y[:20]), verbose=0, callbacks=[stopper, recorder]
    )
    assert h.stopped_reason == "callback" and h.epochs_completed == 3
    assert [e for e, _ in calls] == [0, 1, 2]  # every callback ran for the last epoch too
    assert set(calls[0][1]) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert calls[1][1]["loss"] == h.loss[1] and calls[1][1]["val_loss"] == h.val_loss[1]
    assert calls[2][1]["val_accuracy"] == h.metrics["val_accuracy"][2]
    assert calls[0][1]["lr"] == 1e-3  # Adam's default learning rate


def test_validation_split_uses_the_last_fraction():
    X, y = blobs3(n=100)
    w = np.linspace(1.0, 2.0, 100)
    a, b = classifier(), classifier()
    ha = a.fit(X, y, epochs=3, validation_split=0.25, sample_weight=w, verbose=0)
    hb = b.fit(
        X[:75],
        y[:75],
        epochs=3,
        validation_data=(X[75:], y[75:], w[75:]),
        sample_weight=w[:75],
        verbose=0,
    )
    assert ha.loss == hb.loss and ha.val_loss == hb.val_loss
    assert ha.metrics == hb.metrics
    assert weights_equal(a, b)
    # int(n * (1 - split)) samples train (Keras's rule): 0.3 of 10 leaves 7
    seen = []
    c = classifier()
    c.fit(
        X[:10],
        y[:10],
        epochs=1,
        batch_size=100,
        validation_split=0.3,
        verbose=0,
        callbacks=lambda e, logs: seen.append(logs["val_loss"]),
    )
    assert seen[0] == c.evaluate(X[7:10], y[7:10])["loss"]


def test_evaluate():
    X, y = blobs3(120)
    net = classifier()
    net.fit(X, y, epochs=5, verbose=0, learning_rate=0.01)
    result = net.evaluate(X, y)
    assert set(result) == {"loss", "accuracy"}
    assert result["loss"] == net.compute_loss(X, y)
    assert result["accuracy"] == np.mean(net.predict(X).argmax(axis=1) == y)
    one_hot = datasets.one_hot(y, 3)
    assert net.evaluate(X, one_hot)["accuracy"] == result["accuracy"]
    w = np.linspace(0, 1, len(y))
    weighted = net.evaluate(X, y, sample_weight=w)
    correct = net.predict(X).argmax(axis=1) == y
    assert weighted["accuracy"] == pytest.approx(np.sum(w * correct) / np.sum(w), rel=1e-12)
    assert weighted["loss"] == net.compute_loss(X, y, sample_weight=w)
    # binary cross-entropy, one output: p >= 0.5
    yb = (y == 0).astype(float)
    bce = NeuralNetwork([4, 8, 1], loss="binary_cross_entropy", seed=0)
    bce.fit(X, yb, epochs=5, verbose=0, learning_rate=0.01)
    p = bce.predict(X)[:, 0]
    assert bce.evaluate(X, yb)["accuracy"] == np.mean((p >= 0.5) == (yb == 1))
    # mse and poisson: regressions, no accuracy (as the reference's evaluate)
    Xr, Yr = regression()
    assert set(NeuralNetwork([4, 8, 2]).evaluate(Xr, Yr)) == {"loss"}
    counts = np.abs(np.round(Yr))
    for dtype in ("float64", "float32"):
        poisson = NeuralNetwork([4, 8, 2], loss="poisson", dtype=dtype)
        assert set(poisson.evaluate(Xr, counts)) == {"loss"}
        h = poisson.fit(Xr, counts, epochs=1, validation_data=(Xr, counts), verbose=0)
        assert set(h.as_dict()) == {"loss", "val_loss", "lr"}


# ----------------------------------------------------------------------------------------------
# bad options: refused before anything changes
# ----------------------------------------------------------------------------------------------
X_BAD, Y_BAD = blobs3(n=40)
BAD_OPTIONS = [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 2.5}, TypeError, "batch_size"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"optimizer": "sgd", "momentum": 1.0}, ValueError, "momentum"),
    ({"optimizer": "sgd", "momentum": -0.1}, ValueError, "momentum"),
    ({"optimizer": "adamax"}, ValueError, "unknown optimizer"),
    ({"optimizer": "sgd", "betas": (0.9, 0.99)}, TypeError, "no option"),
    ({"learning_rate": -1.0}, ValueError, "lr"),
    ({"schedule": "bogus"}, ValueError, "unknown schedule"),
    ({"schedule": 3}, TypeError, "schedule"),
    ({"early_stopping": {"patience": -1}}, ValueError, "patience"),
    ({"early_stopping": {"min_delta": -1.0}}, ValueError, "min_delta"),
    ({"early_stopping": {"patiense": 3}}, TypeError, "no option"),
    ({"early_stopping": {"monitor": "val_loss"}}, ValueError, "without validation"),
    ({"early_stopping": {"monitor": "accuracy"}, "_mse": True}, ValueError, "cannot monitor"),
    ({"validation_split": 1.0}, ValueError, "validation_split"),
    ({"validation_split": -0.1}, ValueError, "validation_split"),
    ({"validation_split": 1e-17}, ValueError, "validation_split"),  # no sample left to validate
    ({"validation_split": 0.2, "validation_data": (X_BAD, Y_BAD)}, ValueError, "not both"),
    ({"validation_data": (X_BAD,)}, TypeError, "validation_data"),
    ({"validation_data": (X_BAD[:, :3], Y_BAD)}, ValueError, None),
    ({"sample_weight": np.ones(39)}, ValueError, "sample_weight"),
    ({"sample_weight": -np.ones(40)}, ValueError, "sample_weight"),
    ({"sample_weight": np.zeros(40)}, ValueError, "sum to 0"),
    ({"class_weight": "bogus"}, ValueError, "class_weight"),
    ({"class_weight": {5: 1.0}}, ValueError, "class_weight"),
    ({"class_weight": [1.0, 2.0, 3.0]}, TypeError, "class_weight"),
    ({"dropout": 1.0}, ValueError, "dropout"),
    ({"dropout": [0.1, 0.2]}, ValueError, "dropout"),
    ({"dropout": "0.1"}, TypeError, "dropout"),
    ({"l2": -1.0}, ValueError, "l2"),
    ({"clip_norm": 0.0}, ValueError, "clip_norm"),
    ({"shuffle": "yes"}, TypeError, "shuffle"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"verbose": 3}, ValueError, "verbose"),
    ({"on_divergence": "ignore"}, ValueError, "on_divergence"),
    ({"callbacks": [1]}, TypeError, "callbacks"),
    ({"_Y": np.zeros(39, dtype=int)}, ValueError, "targets"),
    ({"_Y": np.full(40, 3)}, ValueError, None),
    ({"_X": X_BAD[:, :3]}, ValueError, None),
    ({"_X": X_BAD[0]}, ValueError, "batch"),
]


@pytest.mark.parametrize("with_run", [False, True], ids=["fresh", "trained"])
@pytest.mark.parametrize("options, error, match", BAD_OPTIONS, ids=lambda v: None)
def test_bad_options_raise_before_training(options, error, match, with_run):
    options = dict(options)
    mse = options.pop("_mse", False)
    good_Y = np.eye(3)[Y_BAD] if mse else Y_BAD
    X = options.pop("_X", X_BAD)
    Y = options.pop("_Y", good_Y)
    net = NeuralNetwork([4, 8, 3], seed=0) if mse else classifier(sizes=(4, 8, 3))
    if with_run:
        net.fit(X_BAD, good_Y, epochs=1, verbose=0, optimizer="adam")
    weights, info = net.get_weights(), net._training_info()
    kwargs = {"epochs": 2, "verbose": 0, **options}
    for warm_start in (False, True):
        with pytest.raises(error, match=match):
            net.fit(X, Y, warm_start=warm_start, **kwargs)
        assert net._training_info() == info
        for (w, b), (v, c) in zip(net.get_weights(), weights):
            assert np.array_equal(w, v) and np.array_equal(b, c)


@pytest.mark.parametrize(
    "options, error",
    [
        ({"batch_size": 0}, ValueError),
        ({"batch_size": True}, TypeError),
        ({"dropout": [0.5, 1.0]}, ValueError),
        ({"l2": float("nan")}, ValueError),
        ({"clip_norm": -1}, ValueError),
        ({"sample_weight": np.ones(3)}, ValueError),
        ({"class_weight": "balanced", "_mse": True}, ValueError),
        ({"optimizer": "rmsprop", "alpha": 1.0}, ValueError),
        ({"seed": 2**64}, ValueError),
    ],
)
def test_train_epoch_bad_options(options, error):
    options = dict(options)
    X, y = blobs3(n=40)
    if options.pop("_mse", False):
        net, y = NeuralNetwork([4, 16, 8, 3]), np.eye(3)[y]
    else:
        net = classifier()
    w0 = net.get_weights()
    with pytest.raises(error):
        net.train_epoch(X, y, **options)
    assert net._training_info() is None
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(net.get_weights(), w0))


# ----------------------------------------------------------------------------------------------
# divergence, interruption
# ----------------------------------------------------------------------------------------------
def diverging():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    Y = 100.0 * rng.normal(size=(64, 2))
    return NeuralNetwork([4, 16, 2], activation="relu", seed=0), X, Y


def test_divergence_raises_with_finite_weights():
    net, X, Y = diverging()
    with pytest.raises(DivergenceError, match="on_divergence='stop'") as info:
        net.fit(X, Y, epochs=50, optimizer="sgd", learning_rate=10.0, verbose=0)
    assert isinstance(info.value, FloatingPointError)
    history = info.value.history
    assert history.stopped_reason == "nonfinite" and history.epochs_completed < 50
    assert all_finite(net)
    assert (
        np.isfinite(net.predict(X)).all() or True
    )  # the weights are finite (outputs may overflow)


def test_divergence_stop_returns_the_history():
    net, X, Y = diverging()
    history = net.fit(
        X, Y, epochs=50, optimizer="sgd", learning_rate=10.0, verbose=0, on_divergence="stop"
    )
    assert history.stopped_reason == "nonfinite"
    assert 0 < history.epochs_completed < 50
    assert all(math.isfinite(v) for v in history.loss)
    assert all_finite(net)
    assert net.training_state.epoch == history.epochs_completed


def test_keyboard_interrupt_propagates_and_closes_the_bar(no_tqdm, capsys):
    X, y = blobs3(120)
    net = classifier()

    def interrupt(epoch, logs):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, verbose=1, callbacks=interrupt)
    err = capsys.readouterr().err
    assert err.endswith("\n") and "Epoch 1/5" in err
    assert net.training_state.epoch == 2  # consistent: two whole epochs
    net.fit(X, y, epochs=1, verbose=0, warm_start=True)
    assert net.training_state.epoch == 3


_CTRL_C_CHILD = textwrap.dedent(
    """
    import json, math, signal, sys, threading, time
    # The handler runs on the training thread when it looks for signals: the exception carries
    # that thread's CPU time then (see test_concurrency.py's Ctrl-C test).
    def on_sigint(signum, frame):
        raise KeyboardInterrupt(time.thread_time())

    signal.signal(signal.SIGINT, on_sigint)
    main = threading.main_thread().ident
    box = {}

    def interrupt_later():
        time.sleep(0.8)
        box["cpu"] = time.clock_gettime(time.pthread_getcpuclockid(main))
        signal.pthread_kill(main, signal.SIGINT)

    import numpy as np
    from ferrinet import NeuralNetwork, training

    training._tqdm_class = lambda: None  # the fallback bar, whether or not tqdm is installed
    rng = np.random.default_rng(0)
    X, y = rng.random((4000, 256)), rng.integers(0, 10, size=4000)
    net = NeuralNetwork([256, 128, 10], loss="cross_entropy", seed=0)
    print("ready", flush=True)
    threading.Thread(target=interrupt_later).start()
    try:
        net.fit(X, y, epochs=10000, batch_size=16, verbose=1)
        print("finished", flush=True)
    except KeyboardInterrupt as err:
        print("caught", repr(err.args[0] - box["cpu"]), flush=True)
    sys.stderr.write("|after")
    run = net.training_state
    report = {
        "finite": all(bool(np.isfinite(w).all() and np.isfinite(b).all())
                      for w, b in net.get_weights()),
        "steps_in_whole_batches": run.t > 0 and run.epoch == run.t // 250,
    }
    h = net.fit(X[:64], y[:64], epochs=2, verbose=0, warm_start=False)
    report["fit_after"] = h.epochs_completed == 2 and all(math.isfinite(v) for v in h.loss)
    print("report", json.dumps(report), flush=True)
    """
)


def test_ctrl_c_stops_fit_quickly():
    """SIGINT during fit: KeyboardInterrupt within 100 ms of the training thread's CPU time
    (the core stops between two batches; wall-clock latency, which a busy machine stretches, is
    benches/bench_interrupt.py's), the progress bar's line ended, the network consistent and
    trainable."""
    with subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout.readline().split() == ["ready"]
            words = proc.stdout.readline().split()
            assert words[:1] == ["caught"], (words, proc.stderr.read())
            latency = float(words[1])
            words = proc.stdout.readline().split()
            assert words[0] == "report", words
            report = json.loads(" ".join(words[1:]))
            assert proc.wait(timeout=30) == 0
            err = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert 0 <= latency < 0.1, (
        f"KeyboardInterrupt came after {latency * 1e3:.0f} ms of the training thread's CPU time"
    )
    assert err.endswith("\n|after"), err[-200:]  # the bar was closed before propagating
    assert report == {"finite": True, "steps_in_whole_batches": True, "fit_after": True}


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------
def test_verbose_0_is_silent(capsys):
    X, y = blobs3(120)
    classifier().fit(X, y, epochs=3, verbose=0, validation_split=0.2)
    assert capsys.readouterr() == ("", "")


def test_verbose_1_draws_one_line_bar_on_stderr(no_tqdm, capsys):
    X, y = blobs3(120)
    classifier().fit(X, y, epochs=3, verbose=1, validation_split=0.2)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\r") == 3 and err.endswith("\n") and err.count("\n") == 1
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("Epoch 3/3 [====================]")
    assert "loss" in last and "val_loss" in last


def test_verbose_1_uses_tqdm_when_installed(monkeypatch, capsys):
    events = []

    class FakeTqdm:
        def __init__(self, total, **kwargs):
            events.append(("init", total))

        def set_postfix(self, values, refresh=True):
            events.append(("postfix", sorted(values)))

        def update(self, n):
            events.append(("update", n))

        def close(self):
            events.append(("close",))

    monkeypatch.setattr(training, "_tqdm_class", lambda: FakeTqdm)
    X, y = blobs3(120)
    classifier().fit(X, y, epochs=2, verbose=1, validation_split=0.2)
    assert events == [("init", 2)] + [("postfix", ["loss", "val_loss"]), ("update", 1)] * 2 + [
        ("close",)
    ]


def test_verbose_2_prints_a_line_per_epoch(capsys):
    X, y = blobs3(120)
    h = classifier().fit(X, y, epochs=3, verbose=2, validation_split=0.2)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == "" and len(lines) == 3
    for k, line in enumerate(lines):
        assert line.startswith(f"Epoch {k + 1} ({k + 1}/3)")
        assert f"loss {h.loss[k]:.4g}" in line and f"val_loss {h.val_loss[k]:.4g}" in line
        assert "val_accuracy" in line and "lr 0.001" in line


def test_history_repr_and_dict():
    X, y = blobs3(120)
    h = classifier().fit(X, y, epochs=4, verbose=0, validation_split=0.25)
    assert isinstance(h, History) and len(h) == 4
    text = repr(h)
    assert text.startswith("History(epochs_completed=4, stopped_reason='completed'")
    assert "val_loss=" in text and "best_epoch=" in text
    d = h.as_dict()
    assert set(d) == {"loss", "val_loss", "accuracy", "val_accuracy", "lr"}
    assert all(len(v) == 4 for v in d.values())
    assert h.best_epoch == int(np.argmin(h.val_loss))


# ----------------------------------------------------------------------------------------------
# dtype
# ----------------------------------------------------------------------------------------------
def test_float32_fit_learns_and_copy_keeps_dtype():
    X, y = blobs3(n=200)
    net = classifier(dtype="float32")
    assert "dtype='float32'" in repr(net) and "dtype" not in repr(classifier())
    h = net.fit(X, y, epochs=20, learning_rate=0.01, verbose=0, dropout=0.1, l2=1e-4)
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert net.evaluate(X, y)["accuracy"] >= 0.95
    assert net.predict(X).dtype == np.float32
    clone = net.copy()
    assert clone.dtype == "float32" and weights_equal(clone, net)
    assert clone.training_state is None  # the training state is not copied


# ----------------------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------------------
def big_problem(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 64)), rng.integers(0, 10, size=n)


def test_fit_releases_the_gil():
    X, y = big_problem()
    net = NeuralNetwork([64, 128, 10], loss="cross_entropy", seed=0)
    net.fit(X[:100], y[:100], epochs=1, verbose=0)  # warm up
    alone, _ = count_while(lambda: time.sleep(0.4))
    histories = []
    during, took = count_while(
        # 15 epochs: fit no longer makes two extra passes over the data per epoch (#15), and
        # must still run long enough to measure
        lambda: histories.append(net.fit(X, y, epochs=15, batch_size=32, verbose=0))
    )
    assert took > 0.2, f"fit took only {took:.3f} s: too short to measure the GIL release"
    assert histories[0].epochs_completed == 15
    assert during > 0.2 * alone, (
        f"a Python thread ran at {during:.3g}/s during fit vs {alone:.3g}/s alone "
        f"({during / alone:.1%}): fit does not release the GIL"
    )


def test_predict_from_another_thread_during_fit():
    X, y = big_problem(2000)
    net = NeuralNetwork([64, 64, 10], loss="cross_entropy", seed=0)
    done = threading.Event()
    outputs, errors = [], []

    def predictor():
        try:
            while not done.is_set():
                outputs.append(net.predict(X[:50]))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=predictor)
    th.start()
    try:
        history = net.fit(X, y, epochs=8, batch_size=32, verbose=0)
    finally:
        done.set()
        th.join()
    assert not errors
    assert history.epochs_completed == 8
    assert len(outputs) >= 2
    assert all(o.shape == (50, 10) and np.isfinite(o).all() for o in outputs)


# ----------------------------------------------------------------------------------------------
# learning
# ----------------------------------------------------------------------------------------------
def test_digits_with_adam():
    """UCI digits, stratified 75/25 split, standardised: [64, 128, 10] relu, Adam 1e-3,
    batch 32, dropout 0.2, 40 epochs. Test accuracy >= 0.97 (measured 0.978-0.989 over 5
    split seeds)."""
    X, labels = datasets.digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, labels, test_size=0.25, seed=0, stratify=True
    )
    X_train, X_test = datasets.standardize(X_train, X_test)
    net = NeuralNetwork([64, 128, 10], activation="relu", loss="cross_entropy", seed=0)
    h = net.fit(
        X_train,
        y_train,
        epochs=40,
        batch_size=32,
        optimizer="adam",
        learning_rate=1e-3,
        dropout=0.2,
        verbose=0,
    )
    assert h.loss[-1] < 0.1 * h.loss[0]
    assert net.evaluate(X_test, y_test)["accuracy"] >= 0.97


def test_spirals():
    """Three interleaved spirals (600 points), 75/25 split: [2, 64, 64, 3] tanh, Adam 1e-2,
    200 epochs. Test accuracy >= 0.95 (measured 0.99-1.0 over 3 seeds)."""
    X, y = datasets.spirals(600, classes=3, seed=0)
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.25, seed=0, stratify=True
    )
    net = NeuralNetwork([2, 64, 64, 3], activation="tanh", loss="cross_entropy", seed=0)
    net.fit(X_train, y_train, epochs=200, batch_size=32, learning_rate=1e-2, verbose=0)
    assert net.evaluate(X_test, y_test)["accuracy"] >= 0.95


def test_public_names():
    for name in ("optim", "schedules", "History", "DivergenceError", "EarlyStopping"):
        assert hasattr(ferrinet, name) and name in ferrinet.__all__
    assert ferrinet.DivergenceError is ferrinet._core.DivergenceError


def test_a_schedule_may_reach_learning_rate_zero():
    """Cosine annealing to eta_min = 0 hits lr 0 at T_max (and goes up again after it, as
    PyTorch's closed form does): an epoch at lr 0 leaves the weights as they were."""
    X, y = ferrinet.datasets.moons(64, noise=0.1, seed=0)
    net = ferrinet.NeuralNetwork([2, 8, 2], loss="cross_entropy", seed=0)
    seen = []

    def record(epoch, logs):
        seen.append((logs["lr"], [w.copy() for w, _ in net.get_weights()]))

    history = net.fit(
        X,
        y,
        epochs=3,
        batch_size=16,
        optimizer="sgd",
        learning_rate=0.1,
        schedule=schedules.CosineAnnealingLR(T_max=1),
        callbacks=[record],
        verbose=0,
    )
    assert history.lr[1] == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(seen[0][1], seen[1][1]))
    assert not all(np.array_equal(a, b) for a, b in zip(seen[1][1], seen[2][1]))


# ----------------------------------------------------------------------------------------------
# fit's training metrics are running values of the epoch itself (no second pass); the data
# are checked as the first epoch gathers them
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "sample_weight"])
def test_fit_metrics_are_the_running_values_of_the_batches(weighted):
    """Plain SGD without shuffling, batches of 16: the epoch loss is the mean of the batch
    losses before their steps and the accuracy is counted from the same batch outputs, as a
    twin that computes each batch's loss and prediction before stepping it finds."""
    X, y = blobs3(100, seed=3)
    w = np.linspace(0.5, 2.0, len(y)) if weighted else None
    net, twin = classifier(seed=4), classifier(seed=4)
    lr, bs = 0.3, 16
    history = net.fit(
        X,
        y,
        epochs=1,
        batch_size=bs,
        optimizer="sgd",
        learning_rate=lr,
        shuffle=False,
        sample_weight=w,
        verbose=0,
    )
    total = hits = seen = 0.0
    for start in range(0, len(y), bs):
        xb, yb = X[start : start + bs], y[start : start + bs]
        wb = None if w is None else w[start : start + bs]
        total += twin.compute_loss(xb, yb, sample_weight=wb) * len(yb)
        correct = twin.predict(xb).argmax(axis=1) == yb
        for k, c in enumerate(correct):
            w_k = 1.0 if wb is None else float(wb[k])
            hits += w_k * float(c)
            seen += w_k
        if wb is None:
            twin.backward(xb, yb, lr)
        else:  # one SGD step on the weighted mean loss
            grads = twin.gradients(xb, yb, sample_weight=wb)
            stepped = [
                (W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(twin.get_weights(), grads)
            ]
            twin.set_weights(stepped)
    assert history.loss[0] == pytest.approx(total / len(y), rel=1e-12)
    assert history.metrics["accuracy"][0] == pytest.approx(hits / seen, rel=1e-12)
    # and the accuracy is the epoch's, not a pass after it: with one batch of all the data it is
    # the accuracy of the weights before the step
    one = classifier(seed=4)
    before = np.mean(one.predict(X).argmax(axis=1) == y)
    h = one.fit(X, y, epochs=1, batch_size=len(y), optimizer="sgd", learning_rate=5.0, verbose=0)
    assert h.metrics["accuracy"][0] == before
    assert h.metrics["accuracy"][0] != one.evaluate(X, y)["accuracy"]


def test_fit_validation_metrics_are_evaluate():
    X, y = blobs3(120, seed=5)
    net = classifier(seed=2)
    h = net.fit(X[:90], y[:90], epochs=2, validation_data=(X[90:], y[90:]), verbose=0)
    assert h.val_loss[-1] == net.evaluate(X[90:], y[90:])["loss"]
    assert h.metrics["val_accuracy"][-1] == net.evaluate(X[90:], y[90:])["accuracy"]


@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("where", ["last_row", "validation"])
def test_a_nan_in_the_last_row_leaves_everything_unchanged(warm_start, where):
    """fit does no pass over the training data before training: the first epoch finds the NaN
    in the last row as it gathers it, and the call fails with the model as it was: weights,
    optimizer state, step count, generator and schedule (a later fit equals a twin's)."""
    X, y = blobs3(200, seed=6)
    kwargs = dict(optimizer="adam", learning_rate=0.01, batch_size=16, verbose=0)
    kwargs["schedule"] = schedules.StepLR(step_size=1, gamma=0.5)
    net, twin = classifier(seed=7), classifier(seed=7)
    for n in (net, twin):
        n.fit(X, y, epochs=2, seed=3, **kwargs)
    info = net._training_info()
    run = net.training_state
    bad_X, bad_val = X.copy(), None
    if where == "last_row":
        bad_X[-1, 2] = np.nan
        match = r"\[199, 2\]"
    else:
        bad_val = (X[:20].copy(), y[:20])
        bad_val[0][-1, 0] = np.inf
        match = r"\[19, 0\]"
    with pytest.raises(ValueError, match=match):
        net.fit(bad_X, y, epochs=3, warm_start=warm_start, validation_data=bad_val, **kwargs)
    assert weights_equal(net, twin)
    assert net._training_info() == info
    assert net.training_state is run
    # the optimizer's moments, the generator and the schedule went on as if nothing happened
    h_net = net.fit(X, y, epochs=2, warm_start=True, **{**kwargs, "schedule": None})
    h_twin = twin.fit(X, y, epochs=2, warm_start=True, **{**kwargs, "schedule": None})
    assert weights_equal(net, twin)
    assert h_net.loss == h_twin.loss and h_net.lr == h_twin.lr


def test_evaluate_is_one_pass_with_the_same_bits_for_any_thread_count():
    """evaluate / compute_loss reduce per block of 256 rows and add the blocks in order: the
    same bits for 1, 2 or 3 threads, and the accuracy of predict."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    y = rng.integers(0, 3, size=3000)
    w = rng.uniform(0.1, 2.0, size=3000)
    for dtype in ("float64", "float32"):
        results = []
        for k in (1, 2, 3):
            net = classifier(seed=8, dtype=dtype, sizes=(4, 64, 64, 3))
            net.n_threads = k
            results.append(
                (net.evaluate(X, y), net.evaluate(X, y, sample_weight=w), net.compute_loss(X, y))
            )
        assert results[0] == results[1] == results[2]
        (plain, weighted, loss) = results[0]
        assert plain["loss"] == loss
        correct = net.predict(X).argmax(axis=1) == y
        assert plain["accuracy"] == np.mean(correct)
        wd = w.astype(dtype).astype(np.float64)  # the weights as the network holds them
        assert weighted["accuracy"] == pytest.approx(np.sum(wd * correct) / np.sum(wd), rel=1e-12)
        p = net.predict(X).astype(np.float64)
        z = np.log(np.clip(p, 1e-300, None))
        expected = -np.mean(z[np.arange(len(y)), y])
        assert plain["loss"] == pytest.approx(expected, rel=1e-5 if dtype == "float32" else 1e-10)
