"""Threads: what they may change and what they may not (see rust/ferrinet-core/tests/kernel_paths.rs).

- predict gives the same bits for any thread count and however the binding chunks a large
  batch (rows go through fixed blocks of 256);
- training splits a batch by rows across threads, so gradients and trained weights depend on the
  count through the order of the sums over samples, agree across counts to rounding, and are the
  same bits on every run with a given count.
"""

import ferrinet
import numpy as np
import pytest

RNG = np.random.default_rng(5)
X = RNG.standard_normal((5000, 40))
Y = RNG.integers(0, 7, 5000)


def make(threads, dtype="float64"):
    net = ferrinet.NeuralNetwork([40, 64, 32, 7], loss="cross_entropy", seed=3, dtype=dtype)
    net.n_threads = threads
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_is_the_same_bits_for_any_thread_count_and_slicing(dtype):
    x = X.astype(dtype)
    one = make(1, dtype).predict(x)
    for k in (2, 3, 4):
        assert np.array_equal(make(k, dtype).predict(x), one), f"{k} threads"
    # block-aligned slices give the rows of the whole
    net = make(1, dtype)
    parts = [net.predict(x[s : s + 768]) for s in range(0, len(x), 768)]
    assert np.array_equal(np.concatenate(parts), one)


def test_gradients_agree_across_thread_counts_and_repeat_exactly():
    g1 = make(1).gradients(X[:512], Y[:512])
    for k in (2, 3):
        gk = make(k).gradients(X[:512], Y[:512])
        again = make(k).gradients(X[:512], Y[:512])
        for (w1, b1), (wk, bk), (wa, ba) in zip(g1, gk, again):
            assert np.array_equal(wk, wa) and np.array_equal(bk, ba), (
                f"{k} threads: a rerun differs"
            )
            scale = np.abs(w1).max()
            np.testing.assert_allclose(wk, w1, rtol=0, atol=1e-12 * scale)
            np.testing.assert_allclose(bk, b1, rtol=0, atol=1e-12 * np.abs(b1).max())


def test_a_two_thread_fit_is_reproducible_and_close_to_one_thread():
    def fit(k):
        net = make(k)
        net.fit(
            X, Y, epochs=2, batch_size=128, optimizer="adam", learning_rate=1e-3, seed=0, verbose=0
        )
        return [w for pair in net.get_weights() for w in pair]

    a, b, one = fit(2), fit(2), fit(1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b)), "two runs with 2 threads differ"
    for u, v in zip(a, one):
        np.testing.assert_allclose(u, v, rtol=0, atol=1e-8 * np.abs(v).max())


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_checks_each_block_and_reports_the_first_bad_value(threads, dtype):
    """predict checks inputs block by block as it goes (no separate pass): whatever the thread
    count and the chunking of a large batch, the error names the first bad value in x, and a
    bad value in the very last row is not missed."""
    x = X.astype(dtype)  # 5,000 rows x 40: large enough for the chunked, GIL-released path
    net = make(threads, dtype)
    before = net.get_weights()
    for first, later in [(4999, None), (300, 4000), (2600, 2601), (0, 4999)]:
        bad = x.copy()
        bad[first, 7] = np.nan
        if later is not None:
            bad[later, 1] = np.inf
        with pytest.raises(ValueError, match=rf"inputs must be finite, got NaN at \[{first}, 7\]"):
            net.predict(bad)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(before, net.get_weights()))
    assert np.array_equal(net.predict(x), make(1, dtype).predict(x))
