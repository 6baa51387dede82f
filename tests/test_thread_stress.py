"""One network shared by threads under load (issue #17): ``fit`` in one thread while others
``predict``, ``evaluate``, ``to_bytes`` (each loaded back), ``set_weights`` and ``summary``.
No exception, every result well formed. Bounded by counts, not by the clock: the trainer runs
a fixed number of fits, every other thread a fixed minimum of calls and goes on (up to a fixed
maximum) while the trainer still runs, so that the calls overlap training on any machine."""

from __future__ import annotations

import threading

import ferrinet
import numpy as np
from ferrinet import schedules

N_FITS = 12
MIN_CALLS, MAX_CALLS = 20, 400


def test_fit_with_predict_evaluate_to_bytes_set_weights_and_summary_in_other_threads():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y = rng.integers(0, 3, size=300)
    net = ferrinet.NeuralNetwork([8, 16, 3], loss="cross_entropy", seed=0, n_threads=2)
    snapshot = net.get_weights()
    errors = []
    training = threading.Event()
    training.set()
    counts = {}

    def trainer():
        try:
            for _ in range(N_FITS):
                h = net.fit(
                    X, y, epochs=2, batch_size=16, verbose=0, warm_start=True,
                    schedule=schedules.CosineAnnealingLR(T_max=50),
                )  # fmt: skip
                assert h.epochs_completed == 2, h
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(("fit", err))
        finally:
            training.clear()

    def worker(name, call):
        n = 0
        try:
            while n < MIN_CALLS or (training.is_set() and n < MAX_CALLS):
                call()
                n += 1
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append((name, err))
        counts[name] = n

    def predict():
        p = net.predict(X[:32])
        assert p.shape == (32, 3) and np.isfinite(p).all()
        assert np.allclose(p.sum(axis=1), 1.0)

    def evaluate():
        r = net.evaluate(X, y)
        assert np.isfinite(r["loss"]) and 0.0 <= r["accuracy"] <= 1.0, r

    def to_bytes():
        back = ferrinet.from_bytes(net.to_bytes())
        assert back.sizes == [8, 16, 3]

    def set_weights():
        net.set_weights(snapshot)

    def summary():
        assert "16" in net.summary()

    threads = [threading.Thread(target=trainer)] + [
        threading.Thread(target=worker, args=(f.__name__, f))
        for f in (predict, evaluate, to_bytes, set_weights, summary)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)  # a deadlock, not a time limit
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    assert not errors, errors
    assert all(MIN_CALLS <= n <= MAX_CALLS for n in counts.values()), counts
    run = net.training_state
    assert run is not None and run.epoch == 2 * N_FITS
    ferrinet.from_bytes(net.to_bytes()).fit(X, y, epochs=1, verbose=0, warm_start=True)
