"""Mini-batch training in the pure-Python reference (docs/maths.md, "Training with mini-batches"):
the optimizers against their written formulas, gradients of the weighted / L2 / dropout
objective against finite differences, and train_epoch against the pieces it is made of.

Pure Python: nothing here needs the Rust extension. Every test is small (< 2 s).
"""

import math

import numpy as np
import pytest
from conftest import load_modules

reference, optim, schedules = load_modules("reference", "optim", "schedules")
NeuralNetwork = reference.NeuralNetwork
SplitMix64 = reference.SplitMix64


def data(loss, n=10, n_in=3, m=2, seed=0):
    """Inputs (n, n_in) and targets for the loss, as lists."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if loss == "mse":
        Y = rng.normal(size=(n, m))
    elif loss == "binary_cross_entropy":
        Y = rng.uniform(size=(n, m))
    else:
        Y = rng.integers(0, m, size=n)
    return X.tolist(), Y.tolist()


def network(loss="mse", sizes=(3, 5, 4, 2), activation="tanh", seed=1):
    return NeuralNetwork(list(sizes), activation=activation, loss=loss, seed=seed)


LOSSES = ["mse", "binary_cross_entropy", "cross_entropy"]


# ----------------------------------------------------------------------------------------------
# The optimizers, step by step, against their formulas written with numpy
# ----------------------------------------------------------------------------------------------
def numpy_trajectory(opt, p0, grads, lrs):
    """The PyTorch docs' algorithm, written per element with numpy arrays; returns every p."""
    c = opt.to_dict()
    p = np.array(p0)
    b = np.zeros_like(p)  # momentum buffer
    v = np.zeros_like(p)  # square average
    ga = np.zeros_like(p)  # grad average (centered)
    m = np.zeros_like(p)
    vmax = np.zeros_like(p)
    wd = c["weight_decay"]
    out = []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = np.array(g)
        if c["name"] == "sgd":
            if wd != 0:
                g = g + wd * p
            if c["momentum"] != 0:
                b = g.copy() if t == 1 else c["momentum"] * b + (1 - c["dampening"]) * g
                g = g + c["momentum"] * b if c["nesterov"] else b
            p = p - lr * g
        elif c["name"] == "rmsprop":
            if wd != 0:
                g = g + wd * p
            alpha = c["alpha"]
            v = alpha * v + (1 - alpha) * g**2
            v_tilde = v
            if c["centered"]:
                ga = alpha * ga + (1 - alpha) * g
                v_tilde = v - ga**2
            if c["momentum"] > 0:
                b = c["momentum"] * b + g / (np.sqrt(v_tilde) + c["eps"])
                p = p - lr * b
            else:
                p = p - lr * g / (np.sqrt(v_tilde) + c["eps"])
        else:  # adam, adamw
            if c["name"] == "adamw":
                p = p - lr * wd * p  # decoupled: theta <- theta - gamma lambda theta
            elif wd != 0:
                g = g + wd * p
            beta1, beta2 = c["beta1"], c["beta2"]
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g**2
            m_hat = m / (1 - beta1**t)
            if c["amsgrad"]:
                vmax = np.maximum(vmax, v)
                v_hat = vmax / (1 - beta2**t)
            else:
                v_hat = v / (1 - beta2**t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + c["eps"])
        out.append(p.copy())
    return np.array(out)


OPTIMIZERS = [
    optim.SGD(lr=0.1),
    optim.SGD(lr=0.05, momentum=0.9),
    optim.SGD(lr=0.05, momentum=0.9, dampening=0.3),
    optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    optim.SGD(lr=0.05, weight_decay=0.1),
    optim.RMSprop(),
    optim.RMSprop(lr=0.01, alpha=0.9, weight_decay=0.1),
    optim.RMSprop(lr=0.01, centered=True),
    optim.RMSprop(lr=0.01, alpha=0.95, centered=True, momentum=0.8, weight_decay=0.01),
    optim.Adam(lr=0.01),
    optim.Adam(lr=0.01, weight_decay=0.1),
    optim.Adam(lr=0.01, betas=(0.8, 0.99), amsgrad=True),
    optim.AdamW(lr=0.01),
    optim.AdamW(lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.85, 0.995), eps=1e-6),
]


def fixed_gradients(steps=100, size=7, seed=0):
    """A fixed sequence of gradients: large for 20 steps, then small (so that v falls and
    amsgrad's max matters), with a few exact zeros."""
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(steps, size))
    grads[20:] *= 0.01
    grads[:, size // 2] = 0.0
    return grads


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=repr)
def test_optimizer_follows_its_formula_on_fixed_gradients(opt):
    steps = 100
    p0 = np.random.default_rng(1).normal(size=7)
    grads = fixed_gradients(steps)
    lrs = [opt.lr * (1.0 - t / 250) for t in range(steps)]  # a schedule changes lr as it goes
    expected = numpy_trajectory(opt, p0, grads, lrs)

    state = reference.OptimizerState(opt, len(p0))
    p = p0.tolist()
    got = []
    for g, lr in zip(grads.tolist(), lrs):
        p = state.step(p, g, lr)
        got.append(p)
    got = np.array(got)
    assert state.t == steps
    scale = np.maximum(np.abs(expected), np.abs(got))
    worst = np.max(np.abs(got - expected) / np.maximum(scale, 1e-300))
    assert worst <= 1e-12, (
        opt,
        worst,
        np.unravel_index(np.argmax(np.abs(got - expected)), got.shape),
    )


def test_amsgrad_and_nesterov_and_decoupled_decay_make_a_difference():
    """So that the formula test above could not pass with the option ignored."""
    p0 = [1.0, -2.0, 0.5]
    grads = fixed_gradients(60, 3)

    def final(opt):
        state = reference.OptimizerState(opt, 3)
        p = list(p0)
        for g in grads.tolist():
            p = state.step(p, g, 0.01)
        return p

    assert final(optim.Adam(lr=0.01, amsgrad=True)) != final(optim.Adam(lr=0.01))
    assert final(optim.SGD(momentum=0.9, nesterov=True)) != final(optim.SGD(momentum=0.9))
    assert final(optim.RMSprop(centered=True)) != final(optim.RMSprop())
    # AdamW(wd) is not Adam(wd): the decay is not through the gradient
    assert final(optim.AdamW(weight_decay=0.1)) != final(optim.Adam(weight_decay=0.1))
    # AdamW with weight_decay 0 is Adam, bit for bit (p * 1.0 == p)
    assert final(optim.AdamW(weight_decay=0.0)) == final(optim.Adam())


def test_sgd_momentum_first_step_is_the_gradient():
    state = reference.OptimizerState(optim.SGD(lr=0.5, momentum=0.9, dampening=0.5), 2)
    assert state.step([1.0, 1.0], [0.2, -0.4], 0.5) == [
        1.0 - 0.5 * 0.2,
        1.0 + 0.5 * 0.4,
    ]
    assert state.b == [0.2, -0.4]  # b = g at t = 1, no dampening applied
    state.step([0.0, 0.0], [1.0, 1.0], 0.5)
    assert state.b == [0.9 * 0.2 + 0.5 * 1.0, 0.9 * -0.4 + 0.5 * 1.0]


# ----------------------------------------------------------------------------------------------
# Gradients of the training objective: finite differences
# ----------------------------------------------------------------------------------------------
def central_differences(net, loss_of, eps=1e-6):
    """[(dW, db)] per layer: (L(p + eps) - L(p - eps)) / (2 eps) for every parameter."""
    weights = [(np.array(W), np.array(b)) for W, b in net.get_weights()]
    trial = net.copy()
    numeric = []
    for index, (W, b) in enumerate(weights):
        dW, db = np.zeros_like(W), np.zeros_like(b)
        for array, out in ((W, dW), (b, db)):
            for where in np.ndindex(array.shape):
                values = []
                for sign in (1.0, -1.0):
                    shifted = [(w.copy(), c.copy()) for w, c in weights]
                    target = shifted[index][0] if array is W else shifted[index][1]
                    target[where] += sign * eps
                    trial.set_weights(shifted)
                    values.append(loss_of(trial))
                out[where] = (values[0] - values[1]) / (2 * eps)
        numeric.append((dW, db))
    return numeric


def assert_gradients_close(analytic, numeric, rtol=1e-6, floor=1e-6):
    for index, ((aW, ab), (nW, nb)) in enumerate(zip(analytic, numeric)):
        for name, a, n in (("W", aW, nW), ("b", ab, nb)):
            a, n = np.array(a), np.array(n)
            rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
            assert rel.max() <= rtol, (index, name, rel.max(), a, n)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_with_l2_and_sample_weights_match_finite_differences(loss):
    net = network(loss)
    X, Y = data(loss, n=6)
    sample_weight = [0.5, 2.0, 0.0, 1.0, 3.0, 0.25]
    for kwargs in (
        {"l2": 0.3},
        {"sample_weight": sample_weight},
        {"l2": 0.05, "sample_weight": sample_weight},
    ):
        analytic = net.gradients(X, Y, **kwargs)
        numeric = central_differences(
            net, lambda trial, kwargs=kwargs: trial.compute_loss(X, Y, **kwargs)
        )
        assert_gradients_close(analytic, numeric)


@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_loss_and_l2_values(loss):
    net = network(loss)
    X, Y = data(loss, n=5)
    w = [0.5, 2.0, 0.0, 1.0, 3.0]
    # the weighted mean, from per-sample losses of the unweighted loss
    per_sample = [net.compute_loss([x], [y]) for x, y in zip(X, Y)]
    assert net.compute_loss(X, Y, sample_weight=w) == pytest.approx(
        np.dot(w, per_sample) / np.sum(w), rel=1e-14
    )
    # unit weights: the plain mean (not bit for bit: l_k is summed per sample first)
    assert net.compute_loss(X, Y, sample_weight=[1] * 5) == pytest.approx(
        net.compute_loss(X, Y), rel=1e-14
    )
    # integer weights = repeated samples
    repeated = [k for k in range(5) for _ in range(int(w[k] * 2))]
    assert net.compute_loss(X, Y, sample_weight=[2 * v for v in w]) == pytest.approx(
        net.compute_loss([X[k] for k in repeated], [Y[k] for k in repeated]), rel=1e-13
    )
    # L2: exactly the formula, on the weights only
    squares = 0.0
    for W, _ in net.get_weights():
        for row in W:
            for w_ij in row:
                squares += w_ij * w_ij
    assert net.compute_loss(X, Y, l2=0.3) == net.compute_loss(X, Y) + (0.5 * 0.3) * squares
    plain, with_l2 = net.gradients(X, Y), net.gradients(X, Y, l2=0.3)
    for (dW, db), (dW2, db2), (W, _) in zip(plain, with_l2, net.get_weights()):
        assert db2 == db
        assert dW2 == [[g + 0.3 * w_ij for g, w_ij in zip(gr, wr)] for gr, wr in zip(dW, W)]
    # defaults are today's results, bit for bit
    assert net.compute_loss(X, Y, l2=0.0, sample_weight=None) == net.compute_loss(X, Y)
    assert net.gradients(X, Y, l2=0.0) == net.gradients(X, Y)


def test_loss_arguments_are_checked():
    net = network()
    X, Y = data("mse", n=3)
    with pytest.raises(ValueError, match="l2 must be >= 0.0, got -0.1"):
        net.compute_loss(X, Y, l2=-0.1)
    with pytest.raises(ValueError, match=r"sample_weight: expected 3 weights \(one per sample\)"):
        net.compute_loss(X, Y, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"sample_weight\[1\] must be >= 0.0, got -1.0"):
        net.gradients(X, Y, sample_weight=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="sample_weight.* must be finite"):
        net.gradients(X, Y, sample_weight=[1.0, math.nan, 1.0])
    with pytest.raises(ValueError, match="the weights sum to 0"):
        net.compute_loss(X, Y, sample_weight=[0, 0, 0])


# ----------------------------------------------------------------------------------------------
# Dropout
# ----------------------------------------------------------------------------------------------
def test_dropout_masks_are_drawn_from_the_seeded_generator():
    rng, twin = SplitMix64(5), SplitMix64(5)
    masks = reference.draw_dropout_masks([0.5, 0.0, 0.25], 4, [3, 6, 2], rng)
    assert masks[1] is None  # p = 0: nothing drawn
    # layer order, row-major, keep = uniform() >= p
    expected = [
        [[twin.uniform() >= p for _ in range(w)] for _ in range(4)]
        for p, w in ((0.5, 3), (0.25, 2))
    ]
    assert [masks[0].keep, masks[2].keep] == expected
    assert rng.state == twin.state
    assert masks[0].scale == 2.0 and masks[2].scale == 1.0 / 0.75
    # inverted dropout: a * scale where kept, 0.0 where dropped; the same in backward
    a = [[1.0, -2.0, 3.0]] * 4
    out = masks[0].forward(a)
    assert out == [
        [v * 2.0 if keep else 0.0 for v, keep in zip(a[0], row)] for row in masks[0].keep
    ]
    assert masks[0].backward(a) == out
    # about a quarter of a large mask is dropped at p = 0.25
    big = reference.DropoutMask.draw(0.25, 200, 50, SplitMix64(0))
    kept = sum(map(sum, big.keep)) / 10_000
    assert abs(kept - 0.75) < 0.02


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_through_a_fixed_dropout_mask_match_finite_differences(loss):
    net = network(loss, sizes=(3, 6, 5, 2))
    X, Y = data(loss, n=4)
    masks = reference.draw_dropout_masks([0.3, 0.5], 4, [6, 5], SplitMix64(11))
    assert not all(all(row) for row in masks[0].keep)  # something is dropped
    kwargs = {"masks": masks, "l2": 0.01, "sample_weight": [1.0, 2.0, 0.5, 1.0]}
    analytic = net.gradients(X, Y, **kwargs)
    numeric = central_differences(net, lambda trial: trial.compute_loss(X, Y, **kwargs))
    assert_gradients_close(analytic, numeric)

    # the masked network written out with numpy: a' = a * keep / (1 - p)
    (W0, b0), (W1, b1), (W2, b2) = [(np.array(W), np.array(b)) for W, b in net.get_weights()]
    keep0, keep1 = (np.array(mask.keep) for mask in masks)
    h0 = np.tanh(np.array(X) @ W0.T + b0) * keep0 / 0.7
    h1 = np.tanh(h0 @ W1.T + b1) * keep1 / 0.5
    z = h1 @ W2.T + b2
    t = np.array(Y, dtype=float)
    if loss == "mse":
        expected = np.mean((z - t) ** 2)
    elif loss == "binary_cross_entropy":
        expected = np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))
    else:
        lse = z.max(axis=1) + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1))
        expected = np.mean(lse - z[np.arange(4), Y])
    assert net.compute_loss(X, Y, masks=masks) == pytest.approx(expected, rel=1e-13)

    # nothing dropped at p = 0.5: the next layer reads 2 a, as if its W were doubled (exactly)
    all_kept = [reference.DropoutMask(0.5, [[True] * 6] * 4), None]
    doubled = net.copy()
    weights = net.get_weights()
    weights[1] = ([[2.0 * w for w in row] for row in weights[1][0]], weights[1][1])
    doubled.set_weights(weights)
    assert net.compute_loss(X, Y, masks=all_kept) == doubled.compute_loss(X, Y)
    # masks only where given: prediction and the plain loss never drop
    assert net.compute_loss(X, Y, masks=[None, None]) == net.compute_loss(X, Y)
    with pytest.raises(
        ValueError, match=r"masks: expected one mask \(or None\) per hidden layer \(2\)"
    ):
        net.gradients(X, Y, masks=masks[:1])
    with pytest.raises(ValueError, match=r"masks\[0\]: expected shape \(4, 6\)"):
        net.gradients(X, Y, masks=[reference.DropoutMask(0.5, [[True] * 6]), None])


# ----------------------------------------------------------------------------------------------
# Shuffle, batches, the epoch
# ----------------------------------------------------------------------------------------------
def test_shuffle_is_a_reproducible_permutation():
    for n in (1, 2, 7, 100):
        rng = SplitMix64(42)
        order = reference.shuffle_order(n, rng)
        assert sorted(order) == list(range(n))
        assert order == reference.shuffle_order(n, SplitMix64(42))
        # n - 1 numbers drawn
        twin = SplitMix64(42)
        for _ in range(n - 1):
            twin.next_u64()
        assert rng.state == twin.state
    assert reference.shuffle_order(100, SplitMix64(1)) != reference.shuffle_order(
        100, SplitMix64(2)
    )
    # Durstenfeld by hand for n = 3: i = 2 then i = 1
    rng = SplitMix64(9)
    u2, u1 = rng.uniform(), rng.uniform()
    order = [0, 1, 2]
    j = math.floor(u2 * 3)
    order[2], order[j] = order[j], order[2]
    j = math.floor(u1 * 2)
    order[1], order[j] = order[j], order[1]
    assert reference.shuffle_order(3, SplitMix64(9)) == order


def sgd_step(net, gradients, lr):
    net.set_weights(
        [
            (
                [[w - lr * g for w, g in zip(wr, gr)] for wr, gr in zip(W, dW)],
                [v - lr * g for v, g in zip(b, db)],
            )
            for (W, b), (dW, db) in zip(net.get_weights(), gradients)
        ]
    )


@pytest.mark.parametrize("loss", LOSSES)
def test_train_epoch_is_its_pieces_in_order(loss):
    """One epoch by hand from the public pieces: shuffle, then per batch (sizes 4, 4, 2) the
    masks, the objective and its gradients, clipping, the SGD step; the epoch loss."""
    net = network(loss, sizes=(3, 6, 5, 2))
    X, Y = data(loss, n=10)
    lr, l2, rates, seed = 0.3, 0.01, [0.2, 0.4], 17
    w = [1.0, 2.0, 0.5, 0.0, 1.5, 1.0, 1.0, 3.0, 0.25, 1.0]

    by_hand = net.copy()
    rng = SplitMix64(seed)
    order = reference.shuffle_order(10, rng)
    total = 0.0
    for start in range(0, 10, 4):
        batch = order[start : start + 4]
        x, y, wb = [X[k] for k in batch], [Y[k] for k in batch], [w[k] for k in batch]
        masks = reference.draw_dropout_masks(rates, len(batch), [6, 5], rng)
        kwargs = {"l2": l2, "sample_weight": wb, "masks": masks}
        L = by_hand.compute_loss(x, y, **kwargs)
        gradients = by_hand.gradients(x, y, **kwargs)
        reference.clip_by_global_norm(gradients, 0.5)
        sgd_step(by_hand, gradients, lr)
        total += L * len(batch)

    epoch_loss = net.train_epoch(
        X,
        Y,
        batch_size=4,
        optimizer=optim.SGD(lr=lr),
        seed=seed,
        l2=l2,
        dropout=rates,
        clip_norm=0.5,
        sample_weight=w,
    )
    assert epoch_loss == total / 10
    assert net.get_weights() == by_hand.get_weights()
    assert net.training_state.rng.state == rng.state
    assert net.training_state.t == 3 and net.training_state.epoch == 1


@pytest.mark.parametrize("loss", LOSSES)
def test_batch_size_one_without_shuffle_is_train(loss):
    net = network(loss)
    X, Y = data(loss, n=8)
    per_sample = net.copy()
    losses = per_sample.train(X, Y, 3, 0.05)
    epoch_losses = [
        net.train_epoch(X, Y, batch_size=1, shuffle=False, optimizer=optim.SGD(lr=0.05))
        for _ in range(3)
    ]
    assert epoch_losses == losses
    assert net.get_weights() == per_sample.get_weights()


@pytest.mark.parametrize("loss", LOSSES)
def test_full_batch_is_gradient_descent(loss):
    net = network(loss)
    X, Y = data(loss, n=8)
    for batch_size in (8, 1000):
        gd = net.copy()
        trained = net.copy()
        for _ in range(3):
            expected = gd.backward(X, Y, 0.1)
            got = trained.train_epoch(
                X,
                Y,
                batch_size=batch_size,
                shuffle=False,
                optimizer="sgd",
                learning_rate=0.1,
            )
            assert got == expected
        assert trained.get_weights() == gd.get_weights()
    # shuffled: the same sums in another order
    gd, shuffled = net.copy(), net.copy()
    gd.backward(X, Y, 0.1)
    shuffled.train_epoch(X, Y, batch_size=8, optimizer="sgd", learning_rate=0.1, seed=3)
    for (W1, b1), (W2, b2) in zip(gd.get_weights(), shuffled.get_weights()):
        np.testing.assert_allclose(W1, W2, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(b1, b2, rtol=1e-13, atol=1e-15)


def test_epochs_continue_the_training_state():
    X, Y = data("mse", n=12)
    options = {
        "batch_size": 5,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "seed": 4,
        "dropout": 0.3,
    }
    straight = network()
    start = straight.copy()
    losses = [straight.train_epoch(X, Y, **options) for _ in range(4)]

    resumed = start.copy()
    first = [resumed.train_epoch(X, Y, **options)]
    assert resumed.training_state.epoch == 1 and resumed.training_state.t == 3
    later = resumed.copy()  # the copy carries the state: rng, Adam's m and v, t
    rest = [later.train_epoch(X, Y, **options) for _ in range(3)]
    assert first + rest == losses
    assert later.get_weights() == straight.get_weights()
    assert later.training_state.t == 12 and later.training_state.epoch == 4

    # a new run from the same weights and seed repeats the first epoch, bit for bit
    again = start.copy()
    assert again.train_epoch(X, Y, **options) == losses[0]
    again.reset_training()
    assert again.training_state is None and again.learning_rate is None
    assert again.train_epoch(X, Y, **options) != losses[1]  # Adam restarts: t = 1 again


def test_training_state_mismatch_and_learning_rate():
    X, Y = data("mse", n=6)
    net = network()
    net.train_epoch(X, Y, optimizer="adam", learning_rate=0.01, seed=1)
    assert net.learning_rate == 0.01
    assert isinstance(net.training_state, reference.TrainingState)
    with pytest.raises(ValueError, match="started with seed=1, got seed=2; call reset_training"):
        net.train_epoch(X, Y, optimizer="adam", learning_rate=0.01, seed=2)
    with pytest.raises(ValueError, match="started with Adam.*got SGD.*reset_training"):
        net.train_epoch(X, Y, seed=1)
    with pytest.raises(ValueError, match="call reset_training"):
        net.train_epoch(X, Y, optimizer=optim.Adam(lr=0.02), seed=1)
    # the same configuration, as a name or an object, continues
    net.train_epoch(X, Y, optimizer=optim.Adam(lr=0.01), seed=1)
    net.train_epoch(X, Y, optimizer="Adam", learning_rate=0.01, seed=None)
    assert net.training_state.epoch == 3

    # set_learning_rate: the lr of the next steps (the optimizer keeps its lr0)
    net.set_learning_rate(0.0)
    assert net.learning_rate == 0.0
    before = net.get_weights()
    net.train_epoch(X, Y, optimizer="adam", learning_rate=0.01, seed=1)
    assert net.get_weights() == before  # lr 0: Adam's step is 0 (its m and v still move)
    assert net.training_state.optimizer.lr == 0.01
    with pytest.raises(ValueError, match="learning_rate must be >= 0.0, got -1.0"):
        net.set_learning_rate(-1.0)
    fresh = network()
    with pytest.raises(ValueError, match="call train_epoch first"):
        fresh.set_learning_rate(0.1)


def test_train_epoch_arguments_are_checked_before_anything_changes():
    X, Y = data("mse", n=4)
    net = network()
    before = net.get_weights()
    bad = [
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1, got 0"),
        ({"batch_size": 2.0}, ValueError, "batch_size must be an integer >= 1"),
        ({"shuffle": 1}, TypeError, "shuffle must be True or False"),
        ({"l2": -1.0}, ValueError, "l2 must be >= 0.0"),
        ({"dropout": 1.0}, ValueError, "dropout must be < 1.0, got 1.0"),
        ({"dropout": -0.1}, ValueError, "dropout must be >= 0.0"),
        (
            {"dropout": [0.1]},
            ValueError,
            r"dropout: expected one p per hidden layer \(2\), got 1",
        ),
        ({"clip_norm": 0.0}, ValueError, "clip_norm must be > 0.0, got 0.0"),
        ({"sample_weight": [1.0] * 3}, ValueError, "sample_weight: expected 4 weights"),
        ({"sample_weight": [0.0] * 4}, ValueError, "sum to 0"),
        (
            {"class_weight": "balanced"},
            ValueError,
            "class_weight needs loss 'cross_entropy'",
        ),
        ({"optimizer": "adagrad"}, ValueError, "unknown optimizer 'adagrad'"),
        (
            {"optimizer": "sgd", "betas": (0.9, 0.9)},
            TypeError,
            "SGD has no option 'betas'",
        ),
        (
            {"optimizer": optim.SGD(), "learning_rate": 0.1},
            ValueError,
            "already configured",
        ),
        ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*64\)"),
    ]
    for kwargs, error, message in bad:
        with pytest.raises(error, match=message):
            net.train_epoch(X, Y, **kwargs)
        assert net.training_state is None and net.get_weights() == before
    with pytest.raises(ValueError, match="train_epoch takes a batch"):
        net.train_epoch(X[0], Y[0])


# ----------------------------------------------------------------------------------------------
# Weights per sample and per class
# ----------------------------------------------------------------------------------------------
def test_class_weight_balanced_values():
    net = network("cross_entropy", sizes=(3, 4, 3))
    y = [0, 0, 0, 1, 2, 2]
    # scikit-learn: n / (n_classes * bincount(y))
    expected = 6 / (3 * np.bincount(y))
    assert reference.balanced_class_weight(y) == {0: 6 / 9, 1: 6 / 3, 2: 6 / 6}
    np.testing.assert_array_equal(net.sample_weights(y, class_weight="balanced"), expected[y])
    # one-hot / probability rows: the class is the argmax
    rows = [
        [1, 0, 0],
        [0.6, 0.4, 0],
        [0.9, 0.1, 0],
        [0, 1, 0],
        [0.1, 0.2, 0.7],
        [0, 0, 1],
    ]
    assert net.sample_weights(rows, class_weight="balanced") == list(expected[y])
    # only the classes present count: n_classes = 2 here
    assert net.sample_weights([0, 2, 2, 2], class_weight="balanced") == [
        2.0,
        4 / 6,
        4 / 6,
        4 / 6,
    ]
    # a dict (missing classes weigh 1), times sample_weight
    assert net.sample_weights(y, sample_weight=[1, 2, 3, 4, 5, 6], class_weight={2: 0.5}) == [
        1.0,
        2.0,
        3.0,
        4.0,
        2.5,
        3.0,
    ]
    assert net.sample_weights(y) is None
    with pytest.raises(ValueError, match=r"classes are integers in \[0, 3\), got 3"):
        net.sample_weights(y, class_weight={3: 1.0})
    with pytest.raises(ValueError, match=r"class_weight\[1\] must be >= 0.0"):
        net.sample_weights(y, class_weight={1: -1.0})
    with pytest.raises(ValueError, match="class_weight must be a dict or 'balanced'"):
        net.sample_weights(y, class_weight="auto")

    bce = network("binary_cross_entropy", sizes=(3, 4, 1))
    assert bce.sample_weights([1, 0, 0, 0], class_weight="balanced") == [
        2.0,
        4 / 6,
        4 / 6,
        4 / 6,
    ]
    assert bce.sample_weights([[1.0], [0.0]], class_weight={1: 3.0}) == [3.0, 1.0]
    with pytest.raises(
        ValueError, match="class_weight needs targets 0 or 1; sample 1 has target 0.5"
    ):
        bce.sample_weights([1.0, 0.5], class_weight="balanced")
    with pytest.raises(ValueError, match="with 2 outputs"):
        network("binary_cross_entropy").sample_weights([[0, 1]], class_weight="balanced")


def test_class_weight_trains_as_the_sample_weights_it_gives():
    X, Y = data("cross_entropy", n=9, m=3, seed=3)
    net = network("cross_entropy", sizes=(3, 4, 3))
    a, b = net.copy(), net.copy()
    la = a.train_epoch(X, Y, batch_size=4, class_weight="balanced", optimizer="rmsprop")
    weights = net.sample_weights(Y, class_weight="balanced")
    lb = b.train_epoch(X, Y, batch_size=4, sample_weight=weights, optimizer="rmsprop")
    assert la == lb and a.get_weights() == b.get_weights()


def test_a_batch_of_zero_weights_teaches_nothing():
    X, Y = data("mse", n=4)
    net = network()
    only_last = net.copy()
    loss = net.train_epoch(
        X,
        Y,
        batch_size=2,
        shuffle=False,
        optimizer=optim.SGD(lr=0.1),
        sample_weight=[0, 0, 1, 1],
    )
    last = only_last.train_epoch(
        X[2:], Y[2:], batch_size=2, shuffle=False, optimizer=optim.SGD(lr=0.1)
    )
    assert net.get_weights() == only_last.get_weights()
    assert loss == (0.0 * 2 + last * 2) / 4  # L = 0 for the first batch


# ----------------------------------------------------------------------------------------------
# Clipping
# ----------------------------------------------------------------------------------------------
def global_norm(gradients):
    return math.sqrt(
        sum(float(np.sum(np.square(dW)) + np.sum(np.square(db))) for dW, db in gradients)
    )


def test_clip_by_global_norm():
    net = network()
    X, Y = data("mse", n=6)
    gradients = net.gradients(X, Y)
    norm = global_norm(gradients)
    for max_norm in (norm / 10, norm / 2, norm * 0.999):
        clipped = net.gradients(X, Y)
        returned = reference.clip_by_global_norm(clipped, max_norm)
        assert returned == pytest.approx(norm, rel=1e-14)
        assert global_norm(clipped) <= max_norm * (1 + 1e-6)
        assert global_norm(clipped) == pytest.approx(max_norm, rel=1e-5)
        # one common factor: the direction is unchanged
        coef = max_norm / (returned + 1e-6)
        assert clipped[0][0] == [[g * coef for g in row] for row in gradients[0][0]]
    unclipped = net.gradients(X, Y)
    reference.clip_by_global_norm(unclipped, norm * 2)
    assert unclipped == gradients


# ----------------------------------------------------------------------------------------------
# Learning (small and fast)
# ----------------------------------------------------------------------------------------------
XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 4
XOR_Y = [0, 1, 1, 0] * 4


@pytest.mark.parametrize(
    "opt",
    [
        optim.SGD(lr=0.5, momentum=0.9),
        optim.RMSprop(lr=0.02),
        optim.Adam(lr=0.05),
        optim.AdamW(lr=0.05),
    ],
    ids=repr,
)
def test_each_optimizer_learns_xor(opt):
    net = NeuralNetwork([2, 8, 1], activation="tanh", loss="binary_cross_entropy", seed=3)
    state = schedules.StepLR(step_size=50, gamma=0.5).start(opt.lr)
    losses = []
    for epoch in range(150):
        if epoch > 0:
            net.set_learning_rate(state.lr)
        losses.append(net.train_epoch(XOR_X, XOR_Y, batch_size=4, optimizer=opt, seed=0))
        state.end_epoch(epoch, losses[-1])
    assert net.learning_rate == opt.lr * 0.25
    assert losses[-1] < 0.1 < losses[0], (losses[0], losses[-1])
    predictions = [round(p[0]) for p in net.predict(XOR_X[:4])]
    assert predictions == [0, 1, 1, 0]


def test_regularisation_shrinks_weights():
    X, Y = data("mse", n=16, seed=5)
    net = network(sizes=(3, 8, 2))

    def weight_norm(options):
        trained = net.copy()
        for _ in range(30):
            trained.train_epoch(X, Y, batch_size=4, seed=0, **options)
        return math.sqrt(sum(w * w for W, _ in trained.get_weights() for row in W for w in row))

    plain = weight_norm({"optimizer": "adam", "learning_rate": 0.02})
    assert weight_norm({"optimizer": "adam", "learning_rate": 0.02, "l2": 0.5}) < plain
    assert weight_norm({"optimizer": "adamw", "learning_rate": 0.02, "weight_decay": 2.0}) < plain
    assert weight_norm({"optimizer": "adam", "learning_rate": 0.02, "dropout": 0.5}) != plain
