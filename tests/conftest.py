"""Helpers the test files share (pytest loads this file first; tests import from it with
``from conftest import ...``, as pytest puts this folder on ``sys.path``).

Nothing here imports ``ferrinet`` at load time: the pure-Python tests (reference, optimizers,
datasets) must run before the Rust extension is built, and ``load_modules`` serves them.
"""

from __future__ import annotations

import importlib
import pathlib
import signal
import sys
import threading
import time
import types

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "python" / "ferrinet"

#: The hidden activations, in the order the tests cycle through them.
HIDDEN = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]


def load_modules(*names):
    """The modules ``ferrinet.<name>`` of THIS checkout, one per name, from one package: through
    the installed package when it is this checkout (maturin develop), else through a stand-in
    package ``_ferrinet_pure`` over python/ferrinet/ (no Rust extension needed, and the modules
    see each other: the reference's make_optimizer sees the tests' optimizer classes)."""
    try:
        import ferrinet

        if pathlib.Path(ferrinet.__file__).resolve().parent == PACKAGE_DIR:
            return tuple(importlib.import_module(f"ferrinet.{name}") for name in names)
    except ImportError:
        pass
    package_name = "_ferrinet_pure"
    if package_name not in sys.modules:
        package = types.ModuleType(package_name)
        package.__path__ = [str(PACKAGE_DIR)]
        sys.modules[package_name] = package
    return tuple(importlib.import_module(f"{package_name}.{name}") for name in names)


def np_activation(name, z):
    """An activation written independently with numpy (docs/maths.md)."""
    if name == "identity":
        return z
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def count_while(work):
    """Runs a pure-Python counting loop in a thread while ``work()`` runs in this thread.
    Returns (counts per second during work, seconds work took): a thread that holds the GIL
    during ``work`` leaves the counter (almost) no time."""
    stop = threading.Event()
    started = threading.Event()
    result = {}

    def counter():
        n = 0
        started.set()
        t0 = time.perf_counter()
        while not stop.is_set():
            n += 1
        result["rate"] = n / (time.perf_counter() - t0)

    th = threading.Thread(target=counter)
    th.start()
    started.wait()
    t0 = time.perf_counter()
    work()
    elapsed = time.perf_counter() - t0
    stop.set()
    th.join()
    return result["rate"], elapsed


def blobs3(n, seed=0):
    """3 well separated Gaussian classes in 4-D: (X (n, 4), class indices (n,))."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centers = np.array([[2.0, 0, 0, 1], [-2.0, 1, 0, 0], [0.0, -2, 1, 0]])
    return centers[y] + 0.7 * rng.normal(size=(n, 4)), y


def same_weights(a, b):
    """Two networks hold the same weights, bit for bit and dtype."""
    return all(
        np.array_equal(wa, wb) and np.array_equal(ba, bb) and wa.dtype == wb.dtype
        for (wa, ba), (wb, bb) in zip(a.get_weights(), b.get_weights())
    )


def interrupted(call, after=0.001, on_fire=None):
    """Runs ``call`` with a KeyboardInterrupt raised by a SIGALRM timer ``after`` seconds in
    (after ``on_fire()``, when given); True when the interrupt came out of the call, False when
    the call ended first. The previous SIGALRM handler is restored either way."""

    def interrupt(signum, frame):
        if on_fire is not None:
            on_fire()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, after)
        try:
            call()
        except KeyboardInterrupt:
            return True
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def n_values(net):
    """How many weights and biases ``net`` holds."""
    return sum(w.size + b.size for w, b in net.get_weights())
