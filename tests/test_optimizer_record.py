"""The optimizer record (the core's ``OptimizerConfig``) across the binding and in files.

The binding reads ``ferrinet.optim`` objects' ``to_dict()`` into the core's record with serde
and hands it back the same way; an incomplete or unknown record is refused with ValueError.

Files saved by an earlier ferrinet still load and continue training bit for bit:

tests/fixtures/saved_14a4727 holds three files written at commit 14a4727 (before the binding
read the optimizer record with serde): a 3-4-2 tanh / cross_entropy network, seed 7, trained
two epochs (batch_size 2, seed 3) with each optimizer below, then saved with its training run.
The loss and outputs of a third epoch were recorded by that version, continuing from the file.
"""

from pathlib import Path

import ferrinet
import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "saved_14a4727"
X = np.array([[0.5, -1.0, 0.25], [1.5, 0.0, -0.5], [-0.75, 0.5, 1.0], [0.0, 1.25, -1.5]])
Y = np.array([0, 1, 1, 0])
UNUSED = {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}
UNUSED.update({"alpha": 0.0, "eps": 0.0, "centered": False, "beta1": 0.0, "beta2": 0.0})
UNUSED["amsgrad"] = False
UNUSED["eps_placement"] = "pytorch"  # files older than the field read as PyTorch's Adam

# name: (the optimizer's to_dict() fields that are not 0 / False, third epoch's loss, outputs)
EXPECTED = {
    "adam": (
        {
            "lr": 0.01,
            "weight_decay": 0.001,
            "eps": 1e-08,
            "beta1": 0.9,
            "beta2": 0.999,
            "amsgrad": True,
        },
        0.5900045112766739,
        "0x1.f94cdc528422ep-2 0x1.035991d6bdeeap-1 0x1.3d0c9ff4ff377p-1 0x1.85e6c01601910p-2 "
        "0x1.077862906d542p-2 0x1.7c43ceb7c955fp-1 0x1.688cce06f0bd8p-1 0x1.2ee663f21e850p-2",
    ),
    "sgd": (
        {"lr": 0.05, "momentum": 0.9, "nesterov": True},
        0.5719344691913746,
        "0x1.08d389924296cp-1 0x1.ee58ecdb7ad29p-2 0x1.0fab1f4a8567ep-1 0x1.e0a9c16af5304p-2 "
        "0x1.08c8afcd8609ap-2 0x1.7b9ba8193cfb3p-1 0x1.4d12ea0e6c5ddp-1 0x1.65da2be327448p-2",
    ),
    "rmsprop": (
        {"lr": 0.01, "momentum": 0.5, "alpha": 0.99, "eps": 1e-08, "centered": True},
        0.5566326006611326,
        "0x1.e859a7344d4d6p-2 0x1.0bd32c65d9594p-1 0x1.dfad8872319b8p-2 0x1.10293bc6e7325p-1 "
        "0x1.1dd349e045170p-3 0x1.b88b2d87eeba4p-1 0x1.89075e138ba3cp-1 0x1.dbe287b1d170cp-3",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_file_of_an_earlier_version_loads_and_continues_its_training(name):
    options, loss, outputs = EXPECTED[name]
    net = ferrinet.NeuralNetwork.load(FIXTURES / f"{name}.safetensors")
    config = net.training_state.optimizer.to_dict()
    assert config == {"name": name, **UNUSED, **options}
    assert net.train_epoch(X, Y, batch_size=2, seed=3) == loss
    got = [float(v).hex() for v in net.predict(X).ravel()]
    assert got == outputs.split()


@pytest.mark.parametrize(
    "optimizer",
    [
        ferrinet.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        ferrinet.optim.RMSprop(lr=0.01, centered=True, momentum=0.5),
        ferrinet.optim.Adam(lr=0.01, betas=(0.8, 0.99), amsgrad=True),
        ferrinet.optim.AdamW(lr=0.01, weight_decay=0.1),
        ferrinet.optim.Adam(lr=0.01, eps_placement="sklearn"),
    ],
)
def test_the_binding_hands_back_the_record_it_was_given(optimizer):
    net = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    net._start_training(optimizer.to_dict(), 0)
    assert net._training_info()["optimizer_config"] == optimizer.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("lr"), "missing field `lr`"),
        (lambda d: d.update(extra=1.0), "unknown field `extra`"),
        (lambda d: d.update(name="lbfgs"), "unknown optimizer"),
        (lambda d: d.update(lr="fast"), "must be real number, not str"),
        (lambda d: d.update(lr=-1.0), "lr must be a finite number > 0"),
        (lambda d: d.update(eps_placement="keras"), "unknown variant `keras`"),
    ],
)
def test_the_binding_refuses_a_record_that_is_not_one(change, message):
    net = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    record = ferrinet.optim.SGD(lr=0.1).to_dict()
    change(record)
    with pytest.raises(ValueError, match=message):
        net._start_training(record, 0)
    assert net._training_info() is None
