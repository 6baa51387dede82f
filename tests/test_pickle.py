"""pickle, ``copy.copy`` and ``copy.deepcopy`` of ``ferrinet.NeuralNetwork``: they go through the
same bytes as ``to_bytes`` (``NeuralNetwork.__reduce__``), so a copy has the same class, dtype,
n_threads, weights and training run, bit for bit, and continues training exactly as the original
would; a subclass comes back as itself, with its own attributes."""

from __future__ import annotations

import copy
import pickle

import ferrinet
import pytest
from conftest import blobs3, same_weights
from ferrinet import NeuralNetwork, optim, schedules


def classifier(dtype="float64", cls=NeuralNetwork, **kwargs):
    return cls([4, 12, 3], activation="relu", loss="cross_entropy", seed=3, dtype=dtype, **kwargs)


EPOCH = dict(batch_size=8, dropout=0.2, seed=4)

COPIES = {
    **{
        f"pickle{p}": (lambda net, p=p: pickle.loads(pickle.dumps(net, protocol=p)))
        for p in range(pickle.HIGHEST_PROTOCOL + 1)
    },
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_copy_is_the_same_network_and_continues_training_identically(how, dtype):
    X, y = blobs3(60)
    net = classifier(dtype)
    net.n_threads = 3
    opt = optim.Adam(lr=0.01)
    net.train_epoch(X, y, optimizer=opt, **EPOCH)
    clone = COPIES[how](net)
    assert clone is not net and type(clone) is NeuralNetwork
    assert (clone.dtype, clone.n_threads, clone.seed) == (dtype, 3, net.seed)
    assert same_weights(clone, net)
    assert clone.to_bytes() == net.to_bytes()
    assert clone.training_state.optimizer == opt
    assert clone._training_info() == net._training_info()
    # both continue the run: the same losses and weights, bit for bit
    a = [net.train_epoch(X, y, **EPOCH) for _ in range(2)]
    b = [clone.train_epoch(X, y, **EPOCH) for _ in range(2)]
    assert a == b and same_weights(clone, net)


def test_copies_are_independent():
    X, y = blobs3(60)
    net = classifier()
    net.train_epoch(X, y, optimizer="sgd", learning_rate=0.1, **EPOCH)
    before = net.to_bytes()
    for clone in (copy.copy(net), copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        clone.train_epoch(X, y, **EPOCH)
        clone.set_weights([(w * 0, b * 0) for w, b in clone.get_weights()])
        clone.n_threads = 2
    assert net.to_bytes() == before


def test_an_untrained_network_copies_without_a_run():
    net = classifier()
    clone = copy.deepcopy(net)
    assert clone.training_state is None and same_weights(clone, net)


def test_fit_warm_start_continues_after_unpickling():
    X, y = blobs3(80)
    kwargs = dict(
        optimizer="rmsprop",
        learning_rate=0.01,
        batch_size=8,
        seed=2,
        verbose=0,
        schedule=schedules.ReduceLROnPlateau(factor=0.5, patience=0),
        validation_split=0.25,
    )
    long, part = classifier(), classifier()
    h4 = long.fit(X, y, epochs=4, **kwargs)
    part.fit(X, y, epochs=2, **kwargs)
    clone = pickle.loads(pickle.dumps(part))
    h = clone.fit(X, y, epochs=2, warm_start=True, **kwargs)
    assert h.loss == h4.loss[2:] and h.lr == h4.lr[2:]
    assert same_weights(clone, long)


class Tagged(NeuralNetwork):
    """A subclass with its own constructor and attributes."""

    def __init__(self, sizes, tag, **kwargs):
        self.tag = tag
        self.notes = {"created": tag}

    def __new__(cls, sizes, tag=None, **kwargs):
        return super().__new__(cls, sizes, **kwargs)

    def describe(self):
        return f"{self.tag}: {self.sizes}"


@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_a_subclass_round_trips_as_itself_with_its_attributes(how):
    X, y = blobs3(60)
    net = Tagged([4, 6, 3], "first", loss="cross_entropy", seed=5, dtype="float32")
    net.train_epoch(X, y, optimizer="adam", **EPOCH)
    net.notes["trained"] = True
    clone = {
        "pickle": lambda n: pickle.loads(pickle.dumps(n)),
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
    }[how](net)
    assert type(clone) is Tagged
    assert clone.describe() == "first: [4, 6, 3]"
    assert clone.notes == {"created": "first", "trained": True}
    assert (clone.notes is net.notes) == (how == "copy"), "copy is shallow, deepcopy deep"
    assert clone.dtype == "float32" and same_weights(clone, net)
    assert clone.training_state.optimizer == net.training_state.optimizer
    # the class methods build the class they are called on, the module functions the base
    data = net.to_bytes()
    assert type(Tagged.from_bytes(data)) is Tagged
    assert type(ferrinet.from_bytes(data)) is NeuralNetwork


def test_deepcopy_keeps_shared_references_shared():
    net = classifier()
    pair = copy.deepcopy([net, net])
    assert pair[0] is pair[1] and pair[0] is not net


def test_the_pickle_loads_nothing_but_ferrinets_loader_and_class():
    """The payload is the safetensors bytes; the only globals are ferrinet's loader and class."""
    import io

    seen = []

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            seen.append((module, name))
            return super().find_class(module, name)

    for protocol in (3, pickle.HIGHEST_PROTOCOL):  # 2 spells bytes with _codecs.encode
        seen.clear()
        clone = Recording(io.BytesIO(pickle.dumps(classifier(), protocol))).load()
        assert same_weights(clone, classifier())
        assert set(seen) == {
            ("ferrinet.network", "_from_bytes_for_pickle"),
            ("ferrinet.network", "NeuralNetwork"),
        }, seen
