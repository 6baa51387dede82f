"""Sparse input: ferrinet.sklearn.MLPClassifier vs scikit-learn's MLPClassifier on a CSR matrix.

Issue #16, item 2. Data: a seeded 20,000 x 50,000 CSR matrix of 0.2 % density (values
uniform in (0, 1), about 100 nonzeros per row), 10 classes given by the argmax of a fixed
random projection of the row (so there is something to learn), and 5,000 more rows drawn the
same way as a test set. Both libraries: hidden_layer_sizes=(100,), solver="adam", the same
epochs (max_iter, tol=0 so no early stop), one thread each (BLAS pinned to 1 thread).

Each library runs in a fresh child process that loads the data from an .npz file, then fits;
reported: fit time, test accuracy, and peak memory growth: the peak resident set size during
load + fit minus the resident size before the data were loaded (Linux /proc VmHWM, reset
through /proc/self/clear_refs). Targets: fit time <= 0.5 x scikit-learn's, peak growth <=
1.5 x (data + weights + Adam state), accuracy equal within noise.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benches/bench_sparse.py
    ... benches/bench_sparse.py --quick      # 4,000 x 10,000, for a smoke test
    ... benches/bench_sparse.py --only ferrinet   # one library (no time ratio)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time, warnings

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB

lib, path, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np, scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
if lib == "ferrinet":
    from ferrinet.sklearn import MLPClassifier
else:
    from sklearn.neural_network import MLPClassifier
warnings.simplefilter("ignore", ConvergenceWarning)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
base = status("VmRSS")
z = np.load(path)
def part(name):
    return sp.csr_matrix((z[name + "_data"], z[name + "_indices"], z[name + "_indptr"]),
                         shape=tuple(z[name + "_shape"])), z[name + "_y"]
X_train, y_train = part("train")
X_test, y_test = part("test")
del z
clf = MLPClassifier(hidden_layer_sizes=(100,), solver="adam", max_iter=epochs, tol=0.0,
                    n_iter_no_change=10**6, random_state=0)
start = time.perf_counter()
clf.fit(X_train, y_train)
fit_s = time.perf_counter() - start
peak = status("VmHWM")
acc = float((clf.predict(X_test) == y_test).mean())
data = X_train.data.nbytes + X_train.indices.nbytes + X_train.indptr.nbytes
params = sum(c.size + b.size for c, b in zip(clf.coefs_, clf.intercepts_))
print(json.dumps({"fit_s": fit_s, "accuracy": acc, "growth_mb": peak - base,
                  "data_mb": data / 2**20, "weights_mb": params * 8 / 2**20,
                  "loss": float(clf.loss_)}))
"""


def make_data(path, n_train, n_test, n_features, density, n_classes, seed=0):
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n = n_train + n_test
    X = sp.random(n, n_features, density=density, format="csr", random_state=rng)
    X.data = rng.random(X.nnz)  # values in (0, 1)
    proj = rng.standard_normal((n_features, n_classes))
    y = np.asarray((X @ proj).argmax(axis=1)).ravel()
    parts = {}
    for name, rows in (("train", slice(0, n_train)), ("test", slice(n_train, n))):
        Xp = X[rows]  # saved apart: a child loads its training matrix without a slicing copy
        parts.update(
            {
                name + "_data": Xp.data,
                name + "_indices": Xp.indices,
                name + "_indptr": Xp.indptr,
                name + "_shape": np.array(Xp.shape),
                name + "_y": y[rows],
            }
        )
    np.savez(path, **parts)


def run(lib, path, epochs):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, lib, path, str(epochs)],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"the {lib} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--only",
        choices=("ferrinet", "sklearn"),
        help="run one library only (no ratio of fit times): for iterating on one side",
    )
    args = ap.parse_args()
    libs = (args.only,) if args.only else ("sklearn", "ferrinet")
    shape = (4_000, 1_000, 10_000) if args.quick else (20_000, 5_000, 50_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        make_data(path, *shape, density=0.002, n_classes=10)
        results = {lib: run(lib, path, args.epochs) for lib in libs}
    print(
        f"{shape[0]:,} x {shape[2]:,} CSR, density 0.2 %, 10 classes, hidden (100,), Adam, "
        f"{args.epochs} epochs, 1 thread each"
    )
    for lib, r in results.items():
        # data + weights + Adam state (m and v: two more copies of the weights)
        reference = r["data_mb"] + 3 * r["weights_mb"]
        print(
            f"  {lib:9s} fit {r['fit_s']:7.2f} s   test accuracy {r['accuracy']:.4f}   "
            f"peak growth {r['growth_mb']:6.0f} MiB = {r['growth_mb'] / reference:.2f} x "
            f"(data + weights + state = {reference:.0f} MiB)   final loss {r['loss']:.4f}"
        )
    if len(results) == 2:
        ratio = results["ferrinet"]["fit_s"] / results["sklearn"]["fit_s"]
        print(f"  ferrinet / scikit-learn fit time: {ratio:.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
