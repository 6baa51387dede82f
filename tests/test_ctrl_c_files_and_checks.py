"""Ctrl-C in the calls that remained (issue #15, item 5): ``to_bytes`` / ``from_bytes`` /
``save`` / ``load`` of a large network look for signals between chunks of a few ms of its data
(counted, not timed), and ``gradcheck`` / ``check_parity`` stop at the first step after a
signal. Each also gets one real SIGINT-like interrupt (``setitimer``) mid-call: the exception
comes out, and the network is as it was and still works."""

from __future__ import annotations

import signal

import ferrinet
import numpy as np
import pytest
from conftest import interrupted, n_values, same_weights
from ferrinet import _core

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")

# 4096 * 4096 + 4096 * 10 weights: 16.8 M float64 values, 134 MB; its data are written and
# read in chunks of 2**19 values, so a write looks for signals >= 32 times, a read >= 64
STOP_EVERY = 1 << 19


@pytest.fixture(scope="module")
def big():
    net = ferrinet.NeuralNetwork([4096, 4096, 10], seed=0)
    return net, net.to_bytes()


def test_writing_and_reading_a_large_network_look_for_signals_per_chunk(big):
    net, data = big
    chunks = n_values(net) // STOP_EVERY
    before = _core._signal_polls()
    assert net.to_bytes() == data  # the same bytes, written in chunks
    assert _core._signal_polls() - before >= chunks
    before = _core._signal_polls()
    back = ferrinet.from_bytes(data)
    # the CRC over the data, then the decoding, each in chunks
    assert _core._signal_polls() - before >= 2 * (chunks // 8) + chunks
    assert back.to_bytes() == data


def test_a_signal_mid_to_bytes_and_mid_from_bytes_leaves_everything_usable(big):
    net, data = big
    x = np.random.default_rng(0).random((3, 4096))
    expected = net.predict(x)
    assert interrupted(net.to_bytes)
    assert np.array_equal(net.predict(x), expected)
    assert interrupted(lambda: ferrinet.from_bytes(data))
    assert net.to_bytes() == data
    assert np.array_equal(ferrinet.from_bytes(data).predict(x), expected)


def test_a_signal_mid_save_and_mid_load_keeps_the_old_file_and_the_network(big, tmp_path):
    net, data = big
    target = tmp_path / "big.safetensors"
    old = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    old.save(target)
    old_bytes = target.read_bytes()
    assert interrupted(lambda: net.save(target))
    assert [p.name for p in tmp_path.iterdir()] == ["big.safetensors"]  # no temporary file
    assert target.read_bytes() == old_bytes
    net.save(target)
    assert interrupted(lambda: ferrinet.load(target))
    assert ferrinet.load(target).to_bytes() == data


def test_reading_a_file_looks_for_signals_between_chunks(tmp_path):
    """``load`` reads the file 1 MiB at a time, looking for Ctrl-C before each (one Python
    ``read`` of a large file would run to its end before Ctrl-C lands), and gives back the
    same bytes whatever the size."""
    from ferrinet import io as ferrinet_io

    path = tmp_path / "data.bin"
    for size in (0, 1, (1 << 20) - 1, 1 << 20, 16 * (1 << 20) + 123):
        payload = np.random.default_rng(size).bytes(size)
        path.write_bytes(payload)
        before = _core._signal_polls()
        assert ferrinet_io.read_file(path) == payload
        assert _core._signal_polls() - before >= size >> 20, size


def test_no_directory_descriptor_is_left_when_an_interrupt_lands_as_it_opens(tmp_path, monkeypatch):
    """#17 (c): an interrupt raised the moment ``os.open`` returns the directory's descriptor
    (before Python stores it) leaked it. The directory is now opened, synced and closed in one
    native call, so no Python code ever holds that descriptor: such an interrupt cannot
    happen, and a save completes with every descriptor closed."""
    import os

    real_open = os.open

    def open_then_interrupt(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if os.path.isdir(path):
            raise KeyboardInterrupt  # as a signal landing as the call returns
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    ferrinet.NeuralNetwork([3, 4, 2], seed=0).save(tmp_path / "m.safetensors")
    if before is not None:
        assert set(os.listdir("/proc/self/fd")) == before
    assert ferrinet.load(tmp_path / "m.safetensors").sizes == [3, 4, 2]


class _Counting(ferrinet.NeuralNetwork):
    """Counts the calls made after the timer's signal (gradcheck and check_parity run on a
    copy: ``copy()`` builds an instance of the same class)."""

    fired = False
    late_calls = 0

    def compute_loss(self, *args, **kwargs):
        if _Counting.fired:
            _Counting.late_calls += 1
        return super().compute_loss(*args, **kwargs)

    def backward(self, *args, **kwargs):
        if _Counting.fired:
            _Counting.late_calls += 1
        return super().backward(*args, **kwargs)


def _interrupted_counting(call, after):
    def fired():
        _Counting.fired = True

    _Counting.fired, _Counting.late_calls = False, 0
    return interrupted(call, after, on_fire=fired)


@pytest.mark.parametrize("check", ["gradcheck", "check_parity"])
def test_a_signal_stops_gradcheck_and_check_parity_at_the_next_step(check):
    """Both are loops of short calls (a loss per finite difference, a step per sample), and a
    signal's KeyboardInterrupt comes out at the next one: not one loss or step is computed
    after it, and the network given is unchanged and still checks."""
    rng = np.random.default_rng(0)
    X, y = rng.random((8, 30)), rng.integers(0, 4, 8)
    net = _Counting([30, 80, 4], activation="tanh", loss="cross_entropy", seed=0)
    twin = net.copy()

    def run():
        if check == "gradcheck":
            return ferrinet.gradcheck(net, X, y)  # 2,804 parameters, 2 losses each
        return ferrinet.check_parity(net, X, y, steps=400)

    assert _interrupted_counting(run, 0.02)
    assert _Counting.late_calls == 0
    assert same_weights(net, twin)
    _Counting.fired = False
    if check == "gradcheck":
        assert ferrinet.gradcheck(net, X[:2], y[:2]).passed()
    else:
        assert ferrinet.check_parity(net, X, y, steps=3).passed()
