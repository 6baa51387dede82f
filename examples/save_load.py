"""Saving and loading: train, save, load, continue training, and get the same network.

``net.save(path)`` writes a safetensors file: the weights (as tensors PyTorch can read), the
architecture and, by default, the training run (the optimizer's moments and step count, the
learning rate, the generator of shuffles, fit's schedule). ``ferrinet.load(path)`` rebuilds
all of it, so ``fit(..., warm_start=True)`` on the loaded network continues exactly as the
original would have. ``net.to_bytes()`` / ``ferrinet.from_bytes(data)`` do the same in memory,
and pickle uses those bytes.

Here a digits classifier is trained for 10 epochs with Adam, saved, loaded (from the file,
from bytes, through pickle) and every copy is trained 5 more epochs: each copy ends bit for
bit equal to the original, and to a network trained 15 epochs without a break.

Run:  python examples/save_load.py [--out DIR]
      (the file goes to DIR, default a temporary directory removed at the end; exits with an
      error if any copy differs)
"""

# expect: loaded copies predict bit for bit what the original predicts, before and after 5 more epochs of Adam, and equal 15 epochs without a break

import argparse
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

import ferrinet
import numpy as np
from ferrinet import datasets


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality of two arrays."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def new_network() -> ferrinet.NeuralNetwork:
    return ferrinet.NeuralNetwork([64, 32, 10], activation="relu", loss="cross_entropy", seed=0)


def main(out: Path) -> None:
    X, y = datasets.digits()
    X_train, X_test, y_train, y_test = datasets.train_test_split(
        X, y, test_size=0.25, seed=0, stratify=True
    )
    X_train, X_test = X_train / 16.0, X_test / 16.0
    options: Dict[str, Any] = dict(batch_size=32, learning_rate=1e-3, verbose=0)

    net = new_network()
    first = net.fit(X_train, y_train, epochs=10, **options)
    print(
        f"trained {net}\n  10 epochs of Adam: loss {first.loss[0]:.3f} -> {first.loss[-1]:.3f}, "
        f"test accuracy {net.evaluate(X_test, y_test)['accuracy']:.1%}"
    )

    # 1. A file (safetensors: PyTorch and any safetensors reader can open it too) ...
    path = out / "digits.safetensors"
    net.save(path)
    copies = {"ferrinet.load": ferrinet.load(path)}
    print(
        f"saved {path.name}: {path.stat().st_size:,} bytes (weights, architecture and the "
        "training run)"
    )
    # ... bytes in memory, and pickle (which is how a network travels to worker processes)
    copies["from_bytes"] = ferrinet.from_bytes(net.to_bytes())
    copies["pickle"] = pickle.loads(pickle.dumps(net))

    failures = []
    expected = net.predict(X_test)
    print("\nright after loading:")
    for name, copy in copies.items():
        ok = same(copy.predict(X_test), expected) and repr(copy) == repr(net)
        state = copy.training_state
        print(
            f"  {name:<13} same architecture and predictions: {ok}; training run at epoch "
            f"{state.epoch if state else None}, step {state.t if state else None}"
        )
        if not ok:
            failures.append(f"{name} after loading")

    # 2. Continue training: 5 more epochs for the original and each copy. warm_start=True
    #    continues the saved run (the Adam moments, the step count, the shuffles' generator).
    more = {
        name: model.fit(X_train, y_train, epochs=5, warm_start=True, **options)
        for name, model in {"original": net, **copies}.items()
    }
    print(
        f"\n5 more epochs (warm_start=True): loss {more['original'].loss[0]:.4f} -> "
        f"{more['original'].loss[-1]:.4f}"
    )
    expected = net.predict(X_test)
    for name, copy in copies.items():
        ok = same(copy.predict(X_test), expected) and more[name].loss == more["original"].loss
        print(f"  {name:<13} same epoch losses and predictions as the original: {ok}")
        if not ok:
            failures.append(f"{name} after 5 more epochs")

    # 3. And all of that equals training 15 epochs in one go.
    straight = new_network()
    straight.fit(X_train, y_train, epochs=15, **options)
    ok = all(
        same(a, b) for pair in zip(straight.get_weights(), net.get_weights()) for a, b in zip(*pair)
    )
    print(f"\n15 epochs without a break give the same weights: {ok}")
    if not ok:
        failures.append("10 + 5 epochs differ from 15")

    if failures:
        sys.exit(f"FAILED: {', '.join(failures)}")
    print(
        "\nloaded copies predict bit for bit what the original predicts, before and after 5 "
        "more epochs of Adam, and equal 15 epochs without a break"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the saved file in this directory")
    args = parser.parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        main(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="ferrinet-save-") as tmp:
            main(Path(tmp))
