"""Hostile files and absurd arguments (issue #17, findings 2, 3, 4 and 6): a file the loader
accepts can be used (predict, to_bytes, fit(warm_start=True)), anything else is
ModelFormatError; wrong types are TypeError naming what is accepted; absurd sizes are
ValueError before anything changes; the schedule names of the README work from ``fit``."""

from __future__ import annotations

import json
import struct

import ferrinet
import numpy as np
import pytest
from ferrinet import ModelFormatError, schedules


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 3)), rng.integers(0, 2, size=n)


def _checkpoint(schedule=None):
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    net.fit(
        X, y, epochs=2, batch_size=4, verbose=0,
        schedule=schedule or schedules.CosineAnnealingLR(T_max=5),
    )  # fmt: skip
    return net.to_bytes()


def _edit(raw, key, edit):
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    record = json.loads(header["__metadata__"][key])
    edit(record)
    header["__metadata__"][key] = json.dumps(record)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + raw[8 + size :]


def _usable(net):
    X, y = _data(seed=1)
    assert net.predict(X).shape == (12, 2)
    ferrinet.from_bytes(net.to_bytes())
    net.fit(X, y, epochs=2, batch_size=4, verbose=0, warm_start=True)


# --------------------------------------------------------------------------------------------
# Finding 2: the loader lets no other error through, and what it accepts can be used
# --------------------------------------------------------------------------------------------
def _set(path, value):
    def edit(record):
        obj = record
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value

    return edit


HOSTILE_FIT_RECORDS = [
    ("python", ("fit", "schedule", "options", "T_max"), 10**400),
    ("python", ("fit", "schedule", "options", "T_max"), 2**64),
    ("python", ("fit", "schedule", "options", "eta_min"), 10**400),
    ("python", ("fit", "state", "values", "lr"), "inf"),
    ("python", ("fit", "state", "values", "lr"), "nan"),
    ("python", ("fit", "state", "values", "lr"), "-0x1p+0"),
    ("python", ("fit", "state", "values", "lr0"), "inf"),
    ("python", ("fit", "state", "values", "lr0"), "-0x1p-3"),
    ("python", ("fit", "epoch"), 10**400),
    ("python", ("fit", "epoch"), 2**64),
    ("python", ("fit", "schedule", "name"), ["cosine"]),
    ("python", ("fit", "schedule", "options"), []),
    ("python", ("fit", "state", "values"), None),
    ("training", ("learning_rate",), 10**400),
    ("training", ("learning_rate",), -1.0),
    ("training", ("epochs",), 10**400),
    ("training", ("steps",), 2**64),
    ("training", ("optimizer", "lr"), 10**400),
    ("training", ("optimizer", "betas"), [0.9]),
    ("training", ("optimizer",), "adam"),
    ("architecture", ("seed",), 10**400),
    ("architecture", ("sizes",), [3, 10**400, 2]),
    ("architecture", ("n_threads",), 10**400),
]


@pytest.mark.parametrize("key,path,value", HOSTILE_FIT_RECORDS)
def test_a_hostile_record_is_refused_or_usable(key, path, value):
    raw = _edit(_checkpoint(), key, _set(path, value))
    try:
        net = ferrinet.from_bytes(raw)
    except ModelFormatError:
        return
    _usable(net)


def test_a_deeply_nested_record_is_a_model_format_error():
    raw = _checkpoint()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    for key in ("python", "training", "architecture"):
        h = json.loads(json.dumps(header))
        h["__metadata__"][key] = "[" * 100_000 + "]" * 100_000
        text = json.dumps(h).encode()
        with pytest.raises(ModelFormatError):
            ferrinet.from_bytes(struct.pack("<Q", len(text)) + text + raw[8 + size :])


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.StepLR(step_size=1, gamma=0.5),
        schedules.ExponentialLR(gamma=0.9),
        schedules.ReduceLROnPlateau(patience=0),
    ],
)
def test_every_schedule_state_field_is_checked(schedule):
    raw = _checkpoint(schedule)
    size = struct.unpack("<Q", raw[:8])[0]
    record = json.loads(json.loads(raw[8 : 8 + size])["__metadata__"]["python"])
    for name in record["fit"]["state"]["values"]:
        for value in ("inf", "nan", "-inf", "-0x1p+0", 10**400):
            edited = _edit(raw, "python", _set(("fit", "state", "values", name), value))
            try:
                net = ferrinet.from_bytes(edited)
            except ModelFormatError:
                continue
            _usable(net)


# --------------------------------------------------------------------------------------------
# Finding 3: wrong types are TypeError naming what is accepted
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [{"a": 1}, {0: [1.0, 2.0, 3.0]}, {1, 2}, "abc", 3.5, None])
def test_a_dict_or_other_non_batch_as_x_is_a_type_error(bad):
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    net.fit(X, y, epochs=1, verbose=0)
    before = net.to_bytes()
    calls = {
        "fit": lambda: net.fit(bad, y, epochs=1, verbose=0),
        "evaluate": lambda: net.evaluate(bad, y),
        "train_epoch": lambda: net.train_epoch(bad, y, batch_size=4, optimizer="sgd"),
        "predict": lambda: net.predict(bad),
        "compute_loss": lambda: net.compute_loss(bad, y),
    }
    if isinstance(bad, (float, type(None))):  # a scalar: predict's shape error says it
        del calls["predict"], calls["compute_loss"]
    for name, call in calls.items():
        with pytest.raises(TypeError, match="array|list") as info:
            call()
        assert type(bad).__name__ in str(info.value), (name, info.value)
    assert net.to_bytes() == before


def test_a_dict_as_y_or_sample_weight_is_a_type_error():
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    with pytest.raises(TypeError):
        net.fit(X, {"a": 1}, epochs=1, verbose=0)
    with pytest.raises(TypeError):
        net.fit(X, y, epochs=1, verbose=0, sample_weight={"a": 1})
    assert net.training_state is None


# --------------------------------------------------------------------------------------------
# Finding 4: absurd sizes are ValueError before anything changes, the training run included
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize(
    "option", [("batch_size", 2**64), ("batch_size", 10**30), ("epochs", 2**64)]
)
def test_an_absurd_size_is_refused_before_the_run_changes(option, warm_start):
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    net.fit(X, y, epochs=2, batch_size=4, verbose=0)
    before = net.to_bytes()
    steps = net.training_state.t
    name, value = option
    kwargs = {"epochs": 1, "batch_size": 4, "verbose": 0, "warm_start": warm_start, name: value}
    with pytest.raises(ValueError, match=name):
        net.fit(X, y, **kwargs)
    assert net.training_state.t == steps
    assert net.to_bytes() == before


def test_train_epoch_refuses_an_absurd_batch_size_with_value_error():
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    with pytest.raises(ValueError, match="batch_size"):
        net.train_epoch(X, y, batch_size=2**64, optimizer="sgd")
    assert net.training_state is None


def test_a_batch_larger_than_the_data_is_one_batch():
    X, y = _data()
    a = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    b = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    a.fit(X, y, epochs=2, batch_size=len(X), verbose=0)
    b.fit(X, y, epochs=2, batch_size=2**40, verbose=0)
    assert a.to_bytes() == b.to_bytes()


# --------------------------------------------------------------------------------------------
# Finding 6: the schedule names of the README work from fit
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["constant", "step", "exponential", "cosine", "reduce_on_plateau"])
def test_every_schedule_name_of_the_readme_works_in_fit(name):
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    history = net.fit(X, y, epochs=4, batch_size=4, verbose=0, schedule=name, learning_rate=0.1)
    assert history.epochs_completed == 4
    if name in ("step", "exponential", "cosine"):
        assert history.lr[-1] < history.lr[0], history.lr


def test_the_cosine_default_anneals_over_the_fits_epochs():
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    history = net.fit(X, y, epochs=5, verbose=0, schedule="cosine", learning_rate=0.1)
    ref = schedules.CosineAnnealingLR(T_max=5)
    assert history.lr == [ref.lr_at(0.1, e) for e in range(5)]


def test_the_step_and_exponential_defaults_end_the_fit_at_a_hundredth():
    X, y = _data()
    for name in ("step", "exponential"):
        net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
        history = net.fit(X, y, epochs=9, verbose=0, schedule=name, learning_rate=0.1)
        # the last epoch runs at lr0 / 100
        assert history.lr[-1] == pytest.approx(0.1 / 100, rel=1e-12), (name, history.lr)
        assert history.lr[0] == 0.1


def test_make_schedule_says_which_argument_is_missing():
    with pytest.raises(TypeError, match=r"step_size.*StepLR\(step_size="):
        schedules.make_schedule("step")
    with pytest.raises(TypeError, match=r"T_max"):
        schedules.make_schedule("cosine")


@pytest.mark.parametrize("bad", [{"a": 1}, {1, 2}, "ab"])
def test_a_dict_set_or_str_for_sizes_or_weights_is_a_type_error(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        ferrinet.NeuralNetwork(bad)
    net = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    before = net.to_bytes()
    with pytest.raises(TypeError, match=type(bad).__name__):
        net.set_weights(bad)
    with pytest.raises(TypeError, match=type(bad).__name__):
        net.set_weights([bad, bad])
    assert net.to_bytes() == before


def test_verbose_of_the_wrong_type_is_a_type_error():
    net = ferrinet.NeuralNetwork([3, 4, 2], loss="cross_entropy", seed=0)
    X, y = _data()
    with pytest.raises(TypeError, match="verbose"):
        net.fit(X, y, epochs=1, verbose={"a": 1})
    with pytest.raises(ValueError, match="verbose"):
        net.fit(X, y, epochs=1, verbose=3)
