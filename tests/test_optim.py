"""ferrinet.optim and ferrinet.schedules: argument checking, building by name, and the learning
rate of every epoch (closed forms of docs/maths.md, and PyTorch's recursive forms by hand).

Pure Python: nothing here needs the Rust extension (when ``ferrinet`` cannot be imported, the
modules are loaded straight from python/ferrinet/).
"""

import dataclasses
import math

import numpy as np
import pytest
from conftest import load_modules

optim, schedules = load_modules("optim", "schedules")


# ----------------------------------------------------------------------------------------------
# Optimizers: defaults, checks, to_dict
# ----------------------------------------------------------------------------------------------
def test_defaults_are_pytorchs():
    assert optim.SGD() == optim.SGD(
        lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0
    )
    assert optim.RMSprop() == optim.RMSprop(
        lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
    )
    assert optim.Adam() == optim.Adam(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    )
    assert optim.AdamW() == optim.AdamW(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False
    )
    assert [cls().name for cls in (optim.SGD, optim.RMSprop, optim.Adam, optim.AdamW)] == [
        "sgd",
        "rmsprop",
        "adam",
        "adamw",
    ]
    # Adam and AdamW are different optimizers, even with the same fields
    assert optim.Adam(weight_decay=0.01) != optim.AdamW(weight_decay=0.01)


def test_optimizers_are_frozen_and_normalised():
    adam = optim.Adam(lr=1, betas=[np.float32(0.5), 0.75], amsgrad=np.bool_(True))
    assert adam.lr == 1.0 and isinstance(adam.lr, float)
    assert adam.betas == (0.5, 0.75) and adam.amsgrad is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        adam.lr = 0.1
    assert optim.SGD(lr=np.float64(0.1), momentum=np.int64(0)) == optim.SGD(lr=0.1)


OPTIMIZER_ERRORS = [
    # (class, arguments, exception, words the message must contain)
    (optim.SGD, {"lr": 0.0}, ValueError, "SGD: lr must be a finite number in (0, inf), got 0.0"),
    (optim.SGD, {"lr": -1e-3}, ValueError, "lr must be a finite number in (0, inf), got -0.001"),
    (optim.SGD, {"lr": math.inf}, ValueError, "lr must be finite, got inf"),
    (optim.SGD, {"lr": math.nan}, ValueError, "lr must be finite, got nan"),
    (optim.SGD, {"lr": "0.1"}, TypeError, "lr must be a real number, got '0.1'"),
    (optim.SGD, {"lr": True}, TypeError, "lr must be a real number, got True"),
    (optim.SGD, {"lr": None}, TypeError, "lr must be a real number, got None"),
    (
        optim.SGD,
        {"momentum": 1.0},
        ValueError,
        "momentum must be a finite number in [0, 1), got 1.0",
    ),
    (
        optim.SGD,
        {"momentum": -0.1},
        ValueError,
        "momentum must be a finite number in [0, 1), got -0.1",
    ),
    (
        optim.SGD,
        {"dampening": 1.5},
        ValueError,
        "dampening must be a finite number in [0, 1], got 1.5",
    ),
    (optim.SGD, {"dampening": -0.5}, ValueError, "dampening must be a finite number in [0, 1]"),
    (optim.SGD, {"nesterov": 1}, TypeError, "nesterov must be True or False, got 1"),
    (
        optim.SGD,
        {"nesterov": True},
        ValueError,
        "requires momentum > 0 and dampening == 0",
    ),
    (
        optim.SGD,
        {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
        ValueError,
        "got momentum=0.9, dampening=0.1",
    ),
    (
        optim.SGD,
        {"weight_decay": -1e-4},
        ValueError,
        "weight_decay must be a finite number in [0, inf)",
    ),
    (
        optim.RMSprop,
        {"lr": 0},
        ValueError,
        "RMSprop: lr must be a finite number in (0, inf), got 0.0",
    ),
    (optim.RMSprop, {"alpha": 1.0}, ValueError, "alpha must be a finite number in [0, 1), got 1.0"),
    (optim.RMSprop, {"alpha": -0.5}, ValueError, "alpha must be a finite number in [0, 1)"),
    (optim.RMSprop, {"eps": 0.0}, ValueError, "eps must be a finite number in (0, inf), got 0.0"),
    (optim.RMSprop, {"momentum": 1.2}, ValueError, "momentum must be a finite number in [0, 1)"),
    (
        optim.RMSprop,
        {"weight_decay": -1},
        ValueError,
        "weight_decay must be a finite number in [0, inf)",
    ),
    (optim.RMSprop, {"centered": "yes"}, TypeError, "centered must be True or False"),
    (
        optim.Adam,
        {"betas": (0.9, 1.0)},
        ValueError,
        "Adam: betas[1] must be a finite number in [0, 1), got 1.0",
    ),
    (
        optim.Adam,
        {"betas": (-0.1, 0.9)},
        ValueError,
        "betas[0] must be a finite number in [0, 1), got -0.1",
    ),
    (
        optim.Adam,
        {"betas": 0.9},
        TypeError,
        "betas must be a pair (beta1, beta2), got 0.9",
    ),
    (optim.Adam, {"betas": (0.9,)}, TypeError, "betas must be a pair"),
    (optim.Adam, {"eps": -1e-8}, ValueError, "eps must be a finite number in (0, inf)"),
    (
        optim.Adam,
        {"weight_decay": -0.01},
        ValueError,
        "weight_decay must be a finite number in [0, inf)",
    ),
    (
        optim.Adam,
        {"amsgrad": None},
        TypeError,
        "amsgrad must be True or False, got None",
    ),
    (
        optim.AdamW,
        {"lr": -1},
        ValueError,
        "AdamW: lr must be a finite number in (0, inf), got -1.0",
    ),
    (
        optim.AdamW,
        {"betas": (0.9, 1.5)},
        ValueError,
        "AdamW: betas[1] must be a finite number in [0, 1)",
    ),
    (
        optim.AdamW,
        {"weight_decay": -0.01},
        ValueError,
        "AdamW: weight_decay must be a finite number in",
    ),
]


@pytest.mark.parametrize("cls,kwargs,error,message", OPTIMIZER_ERRORS)
def test_optimizer_arguments_are_checked(cls, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert message in str(info.value)


def test_edges_that_are_allowed():
    optim.SGD(momentum=0.0, dampening=1.0)
    optim.SGD(momentum=0.5, nesterov=True)
    optim.RMSprop(alpha=0.0, momentum=0.0, weight_decay=0.0)
    optim.Adam(betas=(0.0, 0.0))
    optim.AdamW(weight_decay=0.0)


FLAT_KEYS = {
    "name",
    "lr",
    "momentum",
    "dampening",
    "nesterov",
    "weight_decay",
    "alpha",
    "eps",
    "centered",
    "beta1",
    "beta2",
    "amsgrad",
    "eps_placement",
}


def test_to_dict_is_one_flat_shape():
    sgd = optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4).to_dict()
    assert sgd == {
        "name": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "dampening": 0.0,
        "nesterov": True,
        "weight_decay": 1e-4,
        "alpha": 0.0,
        "eps": 0.0,
        "centered": False,
        "beta1": 0.0,
        "beta2": 0.0,
        "amsgrad": False,
        "eps_placement": "pytorch",
    }
    rms = optim.RMSprop(centered=True, momentum=0.5).to_dict()
    assert rms["name"] == "rmsprop" and rms["alpha"] == 0.99 and rms["eps"] == 1e-8
    assert rms["centered"] is True and rms["momentum"] == 0.5 and rms["beta1"] == 0.0
    adamw = optim.AdamW(lr=3e-4, betas=(0.8, 0.9), amsgrad=True).to_dict()
    assert adamw["name"] == "adamw" and (adamw["beta1"], adamw["beta2"]) == (0.8, 0.9)
    assert adamw["weight_decay"] == 0.01 and adamw["amsgrad"] is True
    for cls in (optim.SGD, optim.RMSprop, optim.Adam, optim.AdamW):
        flat = cls().to_dict()
        assert set(flat) == FLAT_KEYS
        # plain Python values only: the Rust binding reads them
        assert all(type(v) in (str, float, bool) for v in flat.values()), flat


# ----------------------------------------------------------------------------------------------
# make_optimizer
# ----------------------------------------------------------------------------------------------
def test_make_optimizer_by_name():
    assert optim.make_optimizer("sgd") == optim.SGD()
    assert optim.make_optimizer("ADAM", learning_rate=0.01) == optim.Adam(lr=0.01)
    assert optim.make_optimizer("AdamW", 0.01, weight_decay=0.1, amsgrad=True) == optim.AdamW(
        lr=0.01, weight_decay=0.1, amsgrad=True
    )
    assert optim.make_optimizer("rmsprop", centered=True, momentum=0.9) == optim.RMSprop(
        centered=True, momentum=0.9
    )
    assert optim.make_optimizer("sgd", lr=0.5, momentum=0.9) == optim.SGD(lr=0.5, momentum=0.9)
    # the same checks as the class
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\), got 2.0"):
        optim.make_optimizer("sgd", momentum=2.0)


def test_make_optimizer_by_object():
    adam = optim.Adam(lr=0.02)
    assert optim.make_optimizer(adam) is adam
    assert optim.make_optimizer(adam, learning_rate=None) is adam
    with pytest.raises(ValueError, match="already configured.*learning_rate"):
        optim.make_optimizer(adam, learning_rate=0.1)
    with pytest.raises(ValueError, match="already configured.*amsgrad"):
        optim.make_optimizer(adam, amsgrad=True)


def test_make_optimizer_errors():
    with pytest.raises(ValueError) as info:
        optim.make_optimizer("adagrad")
    assert str(info.value) == "unknown optimizer 'adagrad'; valid: sgd, rmsprop, adam, adamw"
    with pytest.raises(TypeError) as info:
        optim.make_optimizer("sgd", betas=(0.9, 0.99))
    assert str(info.value) == (
        "SGD has no option 'betas'; valid: lr, momentum, dampening, nesterov, weight_decay"
    )
    with pytest.raises(TypeError, match="Adam has no option 'momentum'; valid: lr, betas, eps"):
        optim.make_optimizer("adam", momentum=0.9)
    with pytest.raises(ValueError, match="learning rate once"):
        optim.make_optimizer("sgd", 0.1, lr=0.2)
    with pytest.raises(TypeError, match="optimizer must be a name"):
        optim.make_optimizer(None)
    with pytest.raises(TypeError, match="optimizer must be a name"):
        optim.make_optimizer(optim.Adam)  # the class, not an object


# ----------------------------------------------------------------------------------------------
# Schedules: checks, make_schedule
# ----------------------------------------------------------------------------------------------
SCHEDULE_ERRORS = [
    (
        schedules.StepLR,
        {"step_size": 0},
        ValueError,
        "StepLR: step_size must be an integer >= 1, got 0",
    ),
    (
        schedules.StepLR,
        {"step_size": 2.0},
        TypeError,
        "step_size must be an integer >= 1, got 2.0",
    ),
    (schedules.StepLR, {"step_size": True}, TypeError, "step_size must be an integer"),
    (schedules.StepLR, {}, TypeError, "step_size"),
    (
        schedules.StepLR,
        {"step_size": 3, "gamma": 0.0},
        ValueError,
        "gamma must be a finite number in (0, 1], got 0.0",
    ),
    (
        schedules.StepLR,
        {"step_size": 3, "gamma": 1.5},
        ValueError,
        "gamma must be a finite number in (0, 1], got 1.5",
    ),
    (
        schedules.StepLR,
        {"step_size": 3, "gamma": "x"},
        TypeError,
        "gamma must be a real number",
    ),
    (
        schedules.ExponentialLR,
        {"gamma": 0.0},
        ValueError,
        "ExponentialLR: gamma must be a finite number in (0, 1]",
    ),
    (
        schedules.ExponentialLR,
        {"gamma": math.nan},
        ValueError,
        "gamma must be finite, got nan",
    ),
    (schedules.ExponentialLR, {}, TypeError, "gamma"),
    (
        schedules.CosineAnnealingLR,
        {"T_max": 0},
        ValueError,
        "T_max must be an integer >= 1, got 0",
    ),
    (
        schedules.CosineAnnealingLR,
        {"T_max": 10.5},
        TypeError,
        "T_max must be an integer",
    ),
    (
        schedules.CosineAnnealingLR,
        {"T_max": 10, "eta_min": -1e-3},
        ValueError,
        "eta_min must be a finite number in [0, inf), got -0.001",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"factor": 1.0},
        ValueError,
        "factor must be a finite number in (0, 1), got 1.0",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"factor": 0.0},
        ValueError,
        "factor must be a finite number in (0, 1), got 0.0",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"patience": -1},
        ValueError,
        "patience must be an integer >= 0, got -1",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"patience": 2.5},
        TypeError,
        "patience must be an integer",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"threshold": -0.1},
        ValueError,
        "threshold must be a finite number in [0, 1)",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"threshold": 1.0},
        ValueError,
        "threshold must be a finite number in [0, 1)",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"cooldown": -2},
        ValueError,
        "cooldown must be an integer >= 0, got -2",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"min_lr": -1.0},
        ValueError,
        "min_lr must be a finite number in [0, inf), got -1.0",
    ),
    (
        schedules.ReduceLROnPlateau,
        {"min_lr": math.inf},
        ValueError,
        "min_lr must be finite",
    ),
]


@pytest.mark.parametrize("cls,kwargs,error,message", SCHEDULE_ERRORS)
def test_schedule_arguments_are_checked(cls, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert message in str(info.value)


def test_schedule_start_and_end_epoch_are_checked():
    with pytest.raises(ValueError, match="initial learning rate must be > 0, got 0.0"):
        schedules.Constant().start(0.0)
    with pytest.raises(TypeError, match="lr0 must be a real number"):
        schedules.StepLR(2).start("0.1")
    with pytest.raises(ValueError, match="epoch must be an integer >= 0, got -1"):
        schedules.StepLR(2).start(0.1).end_epoch(-1, None)
    with pytest.raises(TypeError, match="needs the monitored loss"):
        schedules.ReduceLROnPlateau().start(0.1).end_epoch(0, None)


def test_make_schedule():
    assert schedules.make_schedule() == schedules.Constant()
    assert schedules.make_schedule(None) == schedules.Constant()
    assert schedules.make_schedule("constant") == schedules.Constant()
    assert schedules.make_schedule("Step", step_size=5, gamma=0.5) == schedules.StepLR(5, 0.5)
    assert schedules.make_schedule("exponential", gamma=0.9) == schedules.ExponentialLR(0.9)
    assert schedules.make_schedule("cosine", T_max=10, eta_min=1e-4) == (
        schedules.CosineAnnealingLR(10, 1e-4)
    )
    assert schedules.make_schedule("reduce_on_plateau", patience=3) == (
        schedules.ReduceLROnPlateau(patience=3)
    )
    step = schedules.StepLR(step_size=3)
    assert schedules.make_schedule(step) is step
    with pytest.raises(ValueError, match="already configured.*gamma"):
        schedules.make_schedule(step, gamma=0.5)
    with pytest.raises(ValueError) as info:
        schedules.make_schedule("linear")
    assert str(info.value) == (
        "unknown schedule 'linear'; valid: constant, step, exponential, cosine, reduce_on_plateau"
    )
    with pytest.raises(TypeError) as info:
        schedules.make_schedule("cosine", T_max=5, gamma=0.5)
    assert str(info.value) == "CosineAnnealingLR has no option 'gamma'; valid: T_max, eta_min"
    with pytest.raises(TypeError, match="Constant has no option 'gamma'; valid: [(]none[)]"):
        schedules.make_schedule("constant", gamma=0.5)
    with pytest.raises(TypeError, match="schedule must be a name"):
        schedules.make_schedule(0.1)
    assert [cls.name for cls in schedules.SCHEDULES.values()] == list(schedules.SCHEDULES)


def test_schedule_to_dict():
    flat = schedules.StepLR(4, gamma=0.5).to_dict()
    assert flat == {
        "name": "step",
        "step_size": 4,
        "gamma": 0.5,
        "T_max": 0,
        "eta_min": 0.0,
        "factor": 0.0,
        "patience": 0,
        "threshold": 0.0,
        "cooldown": 0,
        "min_lr": 0.0,
    }
    assert set(schedules.ReduceLROnPlateau().to_dict()) == set(flat)
    assert schedules.ReduceLROnPlateau().to_dict()["patience"] == 10


# ----------------------------------------------------------------------------------------------
# The lr of every epoch
# ----------------------------------------------------------------------------------------------
EPOCHS = 50
LR0 = 0.1


def run(schedule, lr0=LR0, losses=None):
    """The lr of epochs 0 .. EPOCHS-1 (or one per loss), as fit would read them."""
    state = schedule.start(lr0)
    losses = [None] * EPOCHS if losses is None else losses
    lrs = []
    for epoch, loss in enumerate(losses):
        lrs.append(state.lr)
        returned = state.end_epoch(epoch, loss)
        assert returned == state.lr
    return lrs


def test_constant():
    assert run(schedules.Constant()) == [LR0] * EPOCHS
    always_improving = [1.0 / (e + 1) for e in range(EPOCHS)]  # never reduced
    assert run(schedules.ReduceLROnPlateau(), losses=always_improving) == [LR0] * EPOCHS


def test_step_lr():
    lrs = run(schedules.StepLR(step_size=7, gamma=0.5))
    # the closed form of docs/maths.md, bit for bit
    assert lrs == [LR0 * math.pow(0.5, math.floor(e / 7)) for e in range(EPOCHS)]
    # by hand: 0.1 for epochs 0-6, 0.05 for 7-13, ... (halving is exact)
    assert lrs[:7] == [0.1] * 7 and lrs[7:14] == [0.05] * 7 and lrs[49] == 0.1 / 128
    # PyTorch's recursive form: multiply by gamma when e % step_size == 0
    lr, expected = LR0, []
    for e in range(EPOCHS):
        if e > 0 and e % 7 == 0:
            lr *= 0.5
        expected.append(lr)
    np.testing.assert_allclose(lrs, expected, rtol=1e-15, atol=0)

    gamma = 0.3  # not a power of two: the closed form and the product differ in the last bits
    lrs = run(schedules.StepLR(step_size=3, gamma=gamma))
    assert lrs == [LR0 * math.pow(gamma, math.floor(e / 3)) for e in range(EPOCHS)]
    lr, expected = LR0, []
    for e in range(EPOCHS):
        if e > 0 and e % 3 == 0:
            lr *= gamma
        expected.append(lr)
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=0)
    assert run(schedules.StepLR(step_size=1, gamma=1.0)) == [LR0] * EPOCHS


def test_exponential_lr():
    gamma = 0.93
    lrs = run(schedules.ExponentialLR(gamma))
    assert lrs == [LR0 * math.pow(gamma, e) for e in range(EPOCHS)]
    lr, expected = LR0, []
    for _ in range(EPOCHS):  # PyTorch's recursive form: lr *= gamma after every epoch
        expected.append(lr)
        lr *= gamma
    np.testing.assert_allclose(lrs, expected, rtol=1e-13, atol=0)
    assert lrs[0] == LR0 and lrs[1] == LR0 * gamma


@pytest.mark.parametrize("T_max,eta_min", [(20, 0.0), (49, 1e-3), (7, 0.01)])
def test_cosine_annealing_lr(T_max, eta_min):
    lrs = run(schedules.CosineAnnealingLR(T_max, eta_min))
    assert lrs == [
        eta_min + (LR0 - eta_min) * (1.0 + math.cos(math.pi * e / T_max)) / 2.0
        for e in range(EPOCHS)
    ]
    # PyTorch's recursive form (the formula in the CosineAnnealingLR docs), from lr0
    expected = [LR0]
    for e in range(1, EPOCHS):
        previous = expected[-1]
        if (e - 1 - T_max) % (2 * T_max) == 0:
            lr = previous + (LR0 - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
        else:
            lr = (1 + math.cos(math.pi * e / T_max)) / (1 + math.cos(math.pi * (e - 1) / T_max)) * (
                previous - eta_min
            ) + eta_min
        expected.append(lr)
    np.testing.assert_allclose(lrs, expected, rtol=0, atol=1e-12 * LR0)
    # by hand: lr0 at 0, the midpoint at T_max / 2, eta_min at T_max, back up past it
    assert lrs[0] == LR0
    assert abs(lrs[T_max] - eta_min) <= 1e-17
    if T_max % 2 == 0:
        assert lrs[T_max // 2] == pytest.approx((LR0 + eta_min) / 2, rel=1e-15)
    if 2 * T_max < EPOCHS:
        assert lrs[2 * T_max] == pytest.approx(LR0, rel=1e-15)
    assert all(eta_min - 1e-17 <= lr <= LR0 for lr in lrs)


def test_reduce_lr_on_plateau_scripted():
    schedule = schedules.ReduceLROnPlateau(
        factor=0.5, patience=2, threshold=0.1, cooldown=1, min_lr=0.02
    )
    # improvement: loss < best * 0.9
    losses = [
        1.0,  # e0  best inf -> 1.0
        0.95,  # e1  not < 0.9: bad 1
        0.8,  # e2  best 0.8, bad 0
        0.79,  # e3  bad 1 (needs < 0.72)
        0.78,  # e4  bad 2
        0.77,  # e5  bad 3 > 2: lr 0.1 -> 0.05, cooldown 1, bad 0
        0.76,  # e6  bad 1, in cooldown: bad 0, cooldown 0
        0.75,  # e7  bad 1
        0.74,  # e8  bad 2
        0.73,  # e9  bad 3: lr 0.05 -> 0.025, cooldown 1
        0.5,  # e10 best 0.5, in cooldown: cooldown 0
        0.5,  # e11 bad 1
        0.5,  # e12 bad 2
        0.5,  # e13 bad 3: lr max(0.0125, 0.02) = 0.02 (min_lr)
        0.5,  # e14 bad 1, cooldown -> bad 0
        0.5,  # e15 bad 1
        0.5,  # e16 bad 2
        0.5,  # e17 bad 3: lr max(0.01, 0.02) = 0.02 (stays)
        math.nan,  # e18 NaN never improves
    ]
    lrs = run(schedule, lr0=0.1, losses=losses)
    #               e0-5: 0.1     e6-9: 0.05    e10-13: 0.025  e14-: 0.02
    assert lrs == [0.1] * 6 + [0.05] * 4 + [0.025] * 4 + [0.02] * 5
    drops = [e for e in range(1, len(lrs)) if lrs[e] < lrs[e - 1]]
    assert drops == [6, 10, 14]  # the lr is lower from these epochs on


def test_reduce_lr_on_plateau_patience_zero_no_cooldown():
    # patience 0: every epoch without improvement reduces; threshold 0: any decrease improves
    schedule = schedules.ReduceLROnPlateau(factor=0.1, patience=0, threshold=0.0)
    losses = [3.0, 2.0, 2.0, 2.0, 1.0, 1.5, 0.5]
    lrs = run(schedule, lr0=1.0, losses=losses)
    assert lrs == [1.0, 1.0, 1.0, 0.1, 0.1 * 0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1]


def test_reduce_lr_on_plateau_default_patience():
    schedule = schedules.ReduceLROnPlateau()  # patience 10, factor 0.1
    lrs = run(schedule, lr0=0.5, losses=[1.0] * 25)
    # epoch 0 improves (best = inf); epochs 1..11 are 11 bad ones: reduced after epoch 11;
    # 11 more bad epochs (12..22) reduce again after epoch 22
    assert lrs == [0.5] * 12 + [0.5 * 0.1] * 11 + [0.5 * 0.1 * 0.1] * 2


def test_adam_eps_placement():
    """PyTorch's placement by default; scikit-learn's on request; anything else refused."""
    assert optim.Adam().eps_placement == "pytorch" == optim.AdamW().eps_placement
    sk = optim.make_optimizer("adam", 0.01, eps_placement="sklearn")
    assert sk == optim.Adam(lr=0.01, eps_placement="sklearn")
    assert sk.to_dict()["eps_placement"] == "sklearn"
    assert optim.AdamW(eps_placement="sklearn").to_dict()["eps_placement"] == "sklearn"
    for bad in ("keras", "SKLEARN", None, 1):
        with pytest.raises(ValueError, match="eps_placement must be 'pytorch' or 'sklearn'"):
            optim.Adam(eps_placement=bad)
