"""scikit-learn's MLPClassifier on data larger than memory: partial_fit over chunks.

The features live in a file on disk, opened with ``np.memmap``: NumPy reads only the rows a
slice touches, so the whole matrix never has to fit in memory. ``partial_fit`` takes one
chunk at a time (one epoch over that chunk, the Adam moments continued between calls), so a
pass over the file is a loop over its chunks; the same loop works over any generator of
``(X_chunk, y_chunk)`` pairs (a database cursor, files on a bucket, a data stream). The file
here is small enough for a test (40,000 x 20 float64, 6.4 MB, read in chunks of 2,000 rows:
18 for training, the last 4,000 rows held out), but nothing in the loop depends on its size.

``fit`` on an ``np.memmap`` also reads it in place: the estimator does not copy X (a shuffled
epoch gathers its rows a few mini-batches at a time), so ``fit`` works on a file larger than
memory too when a single pass per epoch over the file is affordable.

Needs scikit-learn >= 1.6 (``pip install ferrinet[sklearn]``).

Run:  python examples/larger_than_memory.py   (exits with an error if test accuracy < 95%)
"""

# expect: 3 passes over 18 chunks of 2000 rows from a 6\.4 MB memory map: test accuracy 9\d\.\d%
# expect: the same from a generator of chunks: identical weights
# expect: fit on the whole memory map \(no copy\): test accuracy 9\d\.\d%

import os
import sys
import tempfile
import warnings

import numpy as np
from ferrinet.sklearn import MLPClassifier

N, D, CHUNK = 40_000, 20, 2_000


def write_data(path):
    """A synthetic binary problem written to ``path`` chunk by chunk (as a real export would
    be): y = 1 when a fixed nonlinear function of the features is positive."""
    rng = np.random.default_rng(0)
    X = np.memmap(path, dtype=np.float64, mode="w+", shape=(N, D))
    y = np.empty(N, dtype=np.int64)
    w = rng.normal(size=D)
    for start in range(0, N, CHUNK):
        block = rng.normal(size=(CHUNK, D))
        X[start : start + CHUNK] = block
        y[start : start + CHUNK] = (np.tanh(block @ w) + 0.5 * block[:, 0] ** 2 > 0.5).astype(int)
    X.flush()
    del X
    return y


def chunks(X, y):
    """A generator of (X_chunk, y_chunk): what a stream of data looks like to partial_fit."""
    for start in range(0, X.shape[0], CHUNK):
        yield X[start : start + CHUNK], y[start : start + CHUNK]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "features.f64")
        y = write_data(path)
        X = np.memmap(path, dtype=np.float64, mode="r", shape=(N, D))
        n_train = N - 4_000  # the last 4,000 rows are held out
        X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]

        params = dict(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
        clf = MLPClassifier(**params)
        for _ in range(3):  # passes over the file
            for start in range(0, n_train, CHUNK):
                clf.partial_fit(
                    X_train[start : start + CHUNK], y_train[start : start + CHUNK], classes=[0, 1]
                )
        accuracy = clf.score(X_test, y_test)
        n_chunks = -(-n_train // CHUNK)
        size_mb = X.nbytes / 1e6
        print(
            f"3 passes over {n_chunks} chunks of {CHUNK} rows from a {size_mb:.1f} MB memory "
            f"map: test accuracy {100 * accuracy:.1f}%"
        )

        streamed = MLPClassifier(**params)
        for _ in range(3):
            for X_chunk, y_chunk in chunks(X_train, y_train):
                streamed.partial_fit(X_chunk, y_chunk, classes=[0, 1])
        same = all(
            np.array_equal(a, b)
            for a, b in zip(clf.coefs_ + clf.intercepts_, streamed.coefs_ + streamed.intercepts_)
        )
        print(
            f"the same from a generator of chunks: {'identical' if same else 'DIFFERENT'} weights"
        )

        whole = MLPClassifier(**params, max_iter=5, tol=0.0, n_iter_no_change=np.inf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 5 epochs only: the ConvergenceWarning says so
            whole.fit(X_train, y_train)
        whole_accuracy = whole.score(X_test, y_test)
        print(f"fit on the whole memory map (no copy): test accuracy {100 * whole_accuracy:.1f}%")
        del X, X_train, X_test  # close the map before the directory goes

    if accuracy < 0.95 or whole_accuracy < 0.95 or not same:
        sys.exit("FAILED: expected >= 95% test accuracy and identical weights")


if __name__ == "__main__":
    main()
