"""A smoke test of an installed ferrinet (run by tools/test_pythons.py in a fresh venv of each
CPython): train, predict, save/load, gradcheck, and the scikit-learn wrapper when scikit-learn
is installed. Prints one line per check and exits non-zero on the first failure. Runs from any
directory, against the installed package only (not the source tree)."""

import importlib.metadata
import importlib.util
import os
import platform
import sys
import tempfile

import ferrinet
import numpy as np
from ferrinet import datasets


def sklearn_version():
    return importlib.metadata.version("scikit-learn")


print(f"Python {platform.python_version()}, NumPy {np.__version__}, {ferrinet._core.__file__}")
assert "site-packages" in ferrinet.__file__, f"not the installed package: {ferrinet.__file__}"

# train: the article's XOR, per-sample SGD in Rust
X, y = datasets.xor()
net = ferrinet.NeuralNetwork([2, 8, 1], activation="relu", loss="mse", seed=0)
losses = net.train(X, y, epochs=2000, learning_rate=0.05)
assert losses[-1] < losses[0] * 0.1, (losses[0], losses[-1])
print(f"train: loss {losses[0]:.4f} -> {losses[-1]:.2e}")

# predict
p = net.predict(X)
assert p.shape == (4, 1) and np.all(np.abs(p - y) < 0.1), p.ravel()
print(f"predict: {np.round(p.ravel(), 3).tolist()}")

# fit (mini-batches, Adam) on the digits
Xd, yd = datasets.digits()
Xd = (Xd - Xd.mean(axis=0)) / (Xd.std(axis=0) + 1e-8)
clf = ferrinet.NeuralNetwork([64, 32, 10], activation="relu", loss="cross_entropy", seed=0)
history = clf.fit(Xd, yd, epochs=5, batch_size=32, verbose=0)
accuracy = clf.evaluate(Xd, yd)["accuracy"]
assert accuracy > 0.9, accuracy
print(f"fit: {history.epochs_completed} epochs, accuracy {accuracy:.3f}")

# save / load: the same bits
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "net.safetensors")
    clf.save(path)
    again = ferrinet.load(path)
    assert np.array_equal(again.predict(Xd), clf.predict(Xd))
    assert np.array_equal(ferrinet.from_bytes(clf.to_bytes()).predict(Xd), clf.predict(Xd))
print("save/load: same predictions, bit for bit")

# gradcheck: backprop against central differences
report = ferrinet.gradcheck(clf, Xd[:4], yd[:4])
assert report.passed(), report
print(f"gradcheck: {report.max_rel_error:.2e}")

# the scikit-learn wrapper, where scikit-learn installs for this Python
if importlib.util.find_spec("sklearn") is not None:
    from ferrinet.sklearn import MLPClassifier
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xi, yi = datasets.iris()
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=500, random_state=0
        ),
    )
    scores = cross_val_score(model, Xi, yi, cv=3)
    assert scores.mean() > 0.85, scores
    print(f"sklearn: cross_val_score {scores.mean():.3f} (scikit-learn {sklearn_version()})")
else:
    print("sklearn: not installed, skipped")
print("smoke test passed")
sys.exit(0)
