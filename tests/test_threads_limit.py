"""The thread count has a documented maximum, ``ferrinet.max_threads()`` (4 per CPU this
process may run on, at most 256), refused beyond by every way of setting it; and a thread
the system cannot spawn makes training run on fewer, never panic or hang (issue #17, 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import ferrinet
import numpy as np
import pytest
from ferrinet import ModelFormatError


def test_max_threads_is_four_per_available_cpu_at_most_256():
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert ferrinet.max_threads() <= min(256, 4 * cpus)
    assert ferrinet.max_threads() >= 1


def test_the_setter_refuses_more_than_the_limit_and_keeps_the_count():
    net = ferrinet.NeuralNetwork([2, 4, 1], seed=0)
    limit = ferrinet.max_threads()
    net.n_threads = limit
    assert net.n_threads == limit
    for bad in (limit + 1, 10**6, 2**64 - 1):
        with pytest.raises(ValueError, match=f"at most {limit}"):
            net.n_threads = bad
        assert net.n_threads == limit


def test_the_constructor_takes_n_threads_and_refuses_more_than_the_limit():
    limit = ferrinet.max_threads()
    assert ferrinet.NeuralNetwork([2, 4, 1], n_threads=limit).n_threads == limit
    with pytest.raises(ValueError, match=f"at most {limit}"):
        ferrinet.NeuralNetwork([2, 4, 1], n_threads=10**6)
    with pytest.raises(ValueError, match="at least 1"):
        ferrinet.NeuralNetwork([2, 4, 1], n_threads=0)
    with pytest.raises(TypeError, match="n_threads must be an int"):
        ferrinet.NeuralNetwork([2, 4, 1], n_threads=2.0)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_the_sklearn_wrapper_refuses_more_than_the_limit():
    sklearn = pytest.importorskip("ferrinet.sklearn")
    X = np.random.default_rng(0).random((20, 3))
    y = np.arange(20) % 2
    limit = ferrinet.max_threads()
    clf = sklearn.MLPClassifier((4,), max_iter=2, n_threads=10**6)
    with pytest.raises(ValueError, match=f"at most {limit}"):
        clf.fit(X, y)
    clf = sklearn.MLPClassifier((4,), max_iter=2, n_threads=min(2, limit)).fit(X, y)
    assert clf.network_.n_threads == min(2, limit)
    assert clf.get_params()["n_threads"] == min(2, limit)


def _with_n_threads(raw: bytes, n) -> bytes:
    import struct

    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    arch = json.loads(header["__metadata__"]["architecture"])
    arch["n_threads"] = n
    header["__metadata__"]["architecture"] = json.dumps(arch)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + size :]


def test_the_loader_refuses_more_than_256_and_lowers_a_larger_machines_count():
    raw = ferrinet.NeuralNetwork([2, 4, 1], seed=0).to_bytes()
    for bad in (257, 4096, 10**6):
        with pytest.raises(ModelFormatError, match=r"n_threads must be in \[1, 256\]"):
            ferrinet.from_bytes(_with_n_threads(raw, bad))
    # a checkpoint written where 256 threads were allowed loads here with this machine's most
    net = ferrinet.from_bytes(_with_n_threads(raw, 256))
    assert net.n_threads == min(256, ferrinet.max_threads())


_SPAWN_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import ferrinet

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    threads = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.integers(0, 2, size=40)
    def run(net):
        net.fit(X, y, epochs=3, batch_size=8, verbose=0, optimizer="sgd", learning_rate=0.1)
        return [w.tolist() for w, _ in net.get_weights()]

    net = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0)
    run(net)  # warm up: every buffer and Python object the run needs exists once
    net.reset_training()
    # No room for another thread's stack (2 MiB): every helper thread fails to spawn.
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (1 << 20),) * 2)
    net = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0)
    net.n_threads = threads
    weights = run(net)
    print(json.dumps(weights))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_training_goes_on_when_no_thread_can_be_spawned():
    """Under an address-space limit that leaves no room for a thread stack, a fit on
    ``max_threads()`` threads finishes on the calling thread, with the weights a fit on that
    many threads gives where threads can be spawned (the work split does not depend on which
    thread runs a part)."""
    threads = ferrinet.max_threads()
    if threads < 2:
        pytest.skip("one thread only: no helpers to spawn")
    proc = subprocess.run(
        [sys.executable, "-c", _SPAWN_CHILD, str(threads)],
        capture_output=True,
        text=True,
        timeout=300,  # a hang (the old failure), not a time limit: the run takes a second
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "panicked" not in proc.stderr, proc.stderr[-3000:]
    weights = json.loads(proc.stdout.strip().splitlines()[-1])

    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)), rng.integers(0, 2, size=40)
    net = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0)
    net.n_threads = threads
    net.fit(X, y, epochs=3, batch_size=8, verbose=0, optimizer="sgd", learning_rate=0.1)
    assert weights == [w.tolist() for w, _ in net.get_weights()]


_POOL_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    import ferrinet

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    threads = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.random((4 * 256 + 17, 3))
    y = rng.integers(0, 2, size=len(X))
    big = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0, n_threads=1)
    small = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0, n_threads=1)
    # warm up on one thread (no pool thread exists yet): every buffer and Python object exists
    big.predict(X), big.evaluate(X, y), big.gradients(X[:256], y[:256])
    small.train_epoch(X, y, batch_size=256, learning_rate=0.1, seed=0)
    small = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0)
    # No room for another thread's stack (2 MiB): the pool's threads and the team's helpers
    # all fail to spawn.
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (1 << 20),) * 2)
    big.n_threads = threads
    small.n_threads = threads
    out = big.predict(X)
    metrics = big.evaluate(X, y)
    grads = big.gradients(X[:256], y[:256])  # split by rows outside a training call
    small.train_epoch(X, y, batch_size=256, learning_rate=0.1, seed=0)
    print(json.dumps([out.tolist(), metrics["loss"], [g.tolist() for g, _ in grads],
                      [w.tolist() for w, _ in small.get_weights()]]))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_predict_evaluate_and_row_split_batches_go_on_when_no_pool_thread_can_be_spawned():
    """#17 (b): predict, evaluate and a small network's batches split by rows ran on rayon's
    global pool, which panics when it cannot spawn its threads. Under an address-space limit
    that leaves no room for a thread stack, they now run on the calling thread with the bits
    that many threads give where threads can be spawned."""
    threads = ferrinet.max_threads()
    if threads < 2:
        pytest.skip("one thread only: no pool threads to spawn")
    proc = subprocess.run(
        [sys.executable, "-c", _POOL_CHILD, str(threads)],
        capture_output=True,
        text=True,
        timeout=300,  # a hang would be a failure, not slowness: the run takes a second
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "panicked" not in proc.stderr, proc.stderr[-3000:]
    out, loss, grads, weights = json.loads(proc.stdout.strip().splitlines()[-1])

    rng = np.random.default_rng(0)
    X = rng.random((4 * 256 + 17, 3))
    y = rng.integers(0, 2, size=len(X))
    big = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0, n_threads=threads)
    small = ferrinet.NeuralNetwork([3, 5, 2], loss="cross_entropy", seed=0, n_threads=threads)
    small.train_epoch(X, y, batch_size=256, learning_rate=0.1, seed=0)
    assert out == big.predict(X).tolist()
    assert loss == big.evaluate(X, y)["loss"]
    assert grads == [g.tolist() for g, _ in big.gradients(X[:256], y[:256])]
    assert weights == [w.tolist() for w, _ in small.get_weights()]
