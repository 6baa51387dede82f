"""Saving and loading (``net.save`` / ``ferrinet.load``, ``to_bytes`` / ``from_bytes``).

- Round trips: every activation and loss, float32 and float64, 1 to 4 layers: the same class,
  architecture, dtype, seed, n_threads and weights, bit for bit; ``to_bytes`` is deterministic,
  in one process and across processes.
- PyTorch: ``safetensors.torch.load_file`` + a strict ``nn.Sequential.load_state_dict`` gives a
  model whose outputs are ferrinet's to 1e-12 (float64) / 1e-5 (float32) relative to the largest
  output, and whose PyTorch loss (on the logits before Sigmoid / Softmax) is ferrinet's loss.
- Training after a load continues exactly: ``train_epoch`` (SGD with momentum, Adam; shuffle and
  dropout, so the generator matters) and ``fit(warm_start=True)`` (schedules) give the bits a run
  without the break gives.
- Files: str and os.PathLike paths, TypeError for anything else; writes are atomic: an error or a
  kill in the middle of a write leaves the old file as it was.
- Bad bytes: ModelFormatError (a ValueError) naming what is wrong. The exhaustive hostile cases
  are rust/ferrinet-core/tests/io.rs; these check the Python side and a sample through it.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import zlib

import ferrinet
import numpy as np
import pytest
from conftest import HIDDEN, blobs3, same_weights
from ferrinet import ModelFormatError, NeuralNetwork, optim, schedules
from ferrinet import io as fio

# (loss, output activation)
HEADS = [
    ("mse", "identity"),
    ("mse", "tanh"),
    ("mse", "sigmoid"),
    ("binary_cross_entropy", "sigmoid"),
    ("cross_entropy", "softmax"),
    ("poisson", "exp"),
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def make(sizes, hidden="relu", head=("mse", "identity"), dtype="float64", seed=0):
    loss, out = head
    return NeuralNetwork(
        sizes, activation=hidden, output_activation=out, loss=loss, seed=seed, dtype=dtype
    )


def classifier(dtype="float64", seed=1):
    return NeuralNetwork(
        [4, 16, 8, 3], activation="tanh", loss="cross_entropy", seed=seed, dtype=dtype
    )


def split(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def assemble(header, body, fix_crc=True):
    if fix_crc:
        header["__metadata__"]["data_crc32"] = f"{zlib.crc32(body):08x}"
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def with_metadata(data, **changes):
    """The file with metadata entries replaced (None removes one), crc recomputed."""
    header, body = split(data)
    for key, value in changes.items():
        if value is None:
            header["__metadata__"].pop(key, None)
        else:
            header["__metadata__"][key] = value
    return assemble(header, body)


def metadata(data):
    return split(data)[0]["__metadata__"]


def temp_files(directory):
    return sorted(p.name for p in pathlib.Path(directory).iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------------------------
# the API
# ----------------------------------------------------------------------------------------------
def test_the_api_is_exported():
    assert ferrinet.ModelFormatError is ferrinet._core.ModelFormatError
    assert issubclass(ModelFormatError, ValueError)
    assert ferrinet.load is fio.load and ferrinet.from_bytes is fio.from_bytes
    for name in ("ModelFormatError", "load", "from_bytes"):
        assert name in ferrinet.__all__


# ----------------------------------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------------------------------
def check_round_trip(net):
    data = net.to_bytes()
    assert data == net.to_bytes(), "to_bytes is deterministic"
    back = ferrinet.from_bytes(data)
    assert type(back) is NeuralNetwork
    assert (back.sizes, back.activations, back.loss, back.dtype, back.seed, back.n_threads) == (
        net.sizes,
        net.activations,
        net.loss,
        net.dtype,
        net.seed,
        net.n_threads,
    )
    assert same_weights(back, net)
    assert back.to_bytes() == data, "loading and saving again gives the same bytes"
    X = np.linspace(-1, 1, 3 * net.sizes[0]).reshape(3, -1)
    assert np.array_equal(back.predict(X), net.predict(X))
    return data


def test_every_activation_loss_depth_and_dtype_round_trips():
    count = 0
    for head in HEADS:
        for hidden in HIDDEN:
            for n_hidden in range(4):  # 1 to 4 layers
                for dtype in ("float64", "float32"):
                    m = 3 if head[0] == "cross_entropy" else 2
                    sizes = [3] + [5 - k for k in range(n_hidden)] + [m]
                    net = make(sizes, hidden, head, dtype, seed=count)
                    net.n_threads = 1 + count % 3
                    data = check_round_trip(net)
                    arch = json.loads(metadata(data)["architecture"])
                    assert arch["activations"] == net.activations
                    count += 1
    assert count == len(HEADS) * len(HIDDEN) * 4 * 2


def test_save_and_load_give_what_to_bytes_and_from_bytes_give(tmp_path):
    net = make([3, 7, 2], "tanh", dtype="float32", seed=None)
    path = tmp_path / "model.safetensors"
    net.save(path)
    assert path.read_bytes() == net.to_bytes()
    for loader in (ferrinet.load, NeuralNetwork.load):
        back = loader(str(path))
        assert same_weights(back, net) and back.seed == net.seed and back.dtype == "float32"


def test_to_bytes_is_the_same_in_another_process():
    """The metadata is written in a fixed order (Rust's HashMap order changes per process)."""
    script = textwrap.dedent(
        """
        import hashlib, numpy as np, ferrinet
        from ferrinet import schedules
        X = np.random.default_rng(0).normal(size=(40, 4)); y = np.arange(40) % 3
        net = ferrinet.NeuralNetwork([4, 6, 3], loss="cross_entropy", seed=2)
        net.fit(X, y, epochs=2, batch_size=8, dropout=0.1, verbose=0,
                schedule=schedules.StepLR(step_size=1, gamma=0.5))
        print(hashlib.sha256(net.to_bytes()).hexdigest())
        """
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
        ).stdout.strip()
        for _ in range(2)
    }
    exec_globals: dict = {}
    exec(script.replace("print(", "result = ("), exec_globals)
    digests.add(exec_globals["result"])
    assert len(digests) == 1, digests


def test_the_file_lays_out_what_the_docs_say():
    X, y = blobs3(60)
    net = classifier()
    net.fit(
        X,
        y,
        epochs=1,
        batch_size=16,
        optimizer="adam",
        verbose=0,
        schedule=schedules.StepLR(step_size=1),
    )
    header, body = split(net.to_bytes())
    assert sorted(header) == [
        "0.bias",
        "0.weight",
        "2.bias",
        "2.weight",
        "4.bias",
        "4.weight",
        "__metadata__",
    ]
    assert header["0.weight"]["shape"] == [16, 4] and header["0.weight"]["dtype"] == "F64"
    meta = header["__metadata__"]
    assert sorted(meta) == [
        "architecture",
        "data_crc32",
        "format",
        "format_version",
        "python",
        "training",
    ]
    assert (meta["format"], meta["format_version"]) == ("ferrinet", "1")
    assert meta["data_crc32"] == f"{zlib.crc32(body):08x}"
    assert json.loads(meta["architecture"]) == {
        "sizes": [4, 16, 8, 3],
        "activations": ["tanh", "tanh", "softmax"],
        "loss": "cross_entropy",
        "dtype": "float64",
        "seed": 1,
        "n_threads": None,  # the default: the loading process's own
    }
    training = json.loads(meta["training"])
    assert training["optimizer"] == net.training_state.optimizer.to_dict()
    assert (training["steps"], training["epochs"], training["seed"]) == (4, 1, 0)
    m = np.frombuffer(base64.b64decode(training["moments"][0]["weight"]["m"]), dtype="<f8")
    assert m.shape == (16 * 4,) and np.all(np.isfinite(m)) and np.any(m != 0)
    python = json.loads(meta["python"])
    assert python["fit"]["schedule"] == {"name": "step", "options": {"step_size": 1, "gamma": 0.1}}


# ----------------------------------------------------------------------------------------------
# PyTorch reads the files
# ----------------------------------------------------------------------------------------------
def torch_model(path):
    """The nn.Sequential of a ferrinet file, built from its metadata (as docs/saving.md does)."""
    torch = pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import load_file

    nn = torch.nn
    with safe_open(str(path), framework="pt") as f:
        arch = json.loads(f.metadata()["architecture"])

    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    make_act = {
        "exp": Exp,
        "identity": nn.Identity,
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.01),
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softmax": lambda: nn.Softmax(dim=-1),
    }
    modules = []
    for n_in, n_out, act in zip(arch["sizes"], arch["sizes"][1:], arch["activations"]):
        modules += [nn.Linear(n_in, n_out), make_act[act]()]
    model = nn.Sequential(*modules).to(getattr(torch, arch["dtype"]))
    model.load_state_dict(load_file(str(path)))  # strict: exactly these tensors
    return model.eval()


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h[0]}-{h[1]}")
def test_pytorch_loads_the_file_and_computes_the_same(tmp_path, head, dtype, rtol):
    torch = pytest.importorskip("torch")
    net = make([5, 9, 7, 3], ["leaky_relu", "sigmoid"], head, dtype, seed=4)
    X = np.random.default_rng(1).normal(size=(11, 5)).astype(dtype)
    # a training run in the file must not change what PyTorch sees
    Y = np.arange(11) % 3 if head[0] == "cross_entropy" else (X[:, :3] > 0).astype(dtype)
    net.train_epoch(X, Y, batch_size=4, optimizer="adam", learning_rate=0.01)
    path = tmp_path / "net.safetensors"
    net.save(path)
    model = torch_model(path)
    with torch.no_grad():
        x = torch.tensor(X)
        out = model(x).numpy()
        logits = model[:-1](x)
    expected = net.predict(X)
    assert out.dtype == expected.dtype
    scale = np.abs(expected).max()
    assert np.abs(out - expected).max() <= rtol * scale
    # the losses are PyTorch's, on the logits before the output activation
    t = torch.tensor(Y)
    if head[0] == "cross_entropy":
        torch_loss = torch.nn.CrossEntropyLoss()(logits, t.long())
    elif head[0] == "binary_cross_entropy":
        torch_loss = torch.nn.BCEWithLogitsLoss()(logits, t)
    elif head[0] == "poisson":
        # PyTorch's Poisson NLL on the log-rate, plus the deviance's constant t ln t - t
        constant = torch.mean(torch.special.xlogy(t, t) - t)
        torch_loss = torch.nn.PoissonNLLLoss(log_input=True)(logits, t) + constant
    else:
        with torch.no_grad():
            torch_loss = torch.nn.MSELoss()(model(x), t)
    assert float(torch_loss) == pytest.approx(net.compute_loss(X, Y), rel=10 * rtol)


def test_pytorch_sees_only_the_linear_tensors_of_a_trained_network(tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import load_file

    X, y = blobs3(60)
    net = classifier()
    net.fit(
        X, y, epochs=2, batch_size=16, optimizer="rmsprop", momentum=0.5, centered=True, verbose=0
    )
    net.save(tmp_path / "m.safetensors")
    sd = load_file(str(tmp_path / "m.safetensors"))
    assert sorted(sd) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
    for (w, b), k in zip(net.get_weights(), (0, 2, 4)):
        assert np.array_equal(sd[f"{k}.weight"].numpy(), w)
        assert np.array_equal(sd[f"{k}.bias"].numpy(), b)
    torch_model(tmp_path / "m.safetensors")  # the strict load_state_dict accepts it


# ----------------------------------------------------------------------------------------------
# training continues exactly
# ----------------------------------------------------------------------------------------------
TRAIN = dict(batch_size=8, shuffle=True, dropout=[0.3, 0.1], l2=1e-3, clip_norm=3.0, seed=5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    "opt",
    [optim.SGD(lr=0.05, momentum=0.9, nesterov=True), optim.Adam(lr=0.01, amsgrad=True)],
    ids=["sgd", "adam"],
)
@pytest.mark.parametrize("via", ["bytes", "file"])
def test_train_epoch_after_a_load_continues_bit_for_bit(tmp_path, dtype, opt, via):
    X, y = blobs3(60)
    whole, part = classifier(dtype), classifier(dtype)
    expected = [whole.train_epoch(X, y, optimizer=opt, **TRAIN) for _ in range(5)]
    losses = [part.train_epoch(X, y, optimizer=opt, **TRAIN) for _ in range(2)]
    if via == "bytes":
        loaded = ferrinet.from_bytes(part.to_bytes())
    else:
        part.save(tmp_path / "part.safetensors")
        loaded = ferrinet.load(tmp_path / "part.safetensors")
    assert loaded.training_state.optimizer == opt
    assert loaded._training_info() == part._training_info()
    del part
    # the optimizer left out: the run's own, rebuilt from the file
    losses += [loaded.train_epoch(X, y, **TRAIN) for _ in range(3)]
    assert losses == expected
    assert same_weights(loaded, whole)
    assert loaded._training_info() == whole._training_info()


@pytest.mark.parametrize(
    "schedule, validation",
    [
        (None, False),
        (schedules.StepLR(step_size=2, gamma=0.5), False),
        (schedules.CosineAnnealingLR(T_max=5, eta_min=1e-4), False),
        (schedules.ReduceLROnPlateau(factor=0.5, patience=0), True),
    ],
    ids=["none", "step", "cosine", "plateau+validation"],
)
def test_fit_warm_start_after_a_load_equals_one_long_fit(schedule, validation):
    X, y = blobs3(80)
    kwargs = dict(
        optimizer="adamw",
        learning_rate=0.02,
        batch_size=8,
        dropout=0.1,
        seed=3,
        schedule=schedule,
        verbose=0,
    )
    if validation:
        kwargs["validation_split"] = 0.25
    long, part = classifier(), classifier()
    h6 = long.fit(X, y, epochs=6, **kwargs)
    h3a = part.fit(X, y, epochs=3, **kwargs)
    loaded = ferrinet.from_bytes(part.to_bytes())
    # everything left out: the run's optimizer, seed and schedule come from the file
    h3b = loaded.fit(
        X,
        y,
        epochs=3,
        warm_start=True,
        verbose=0,
        validation_split=kwargs.get("validation_split", 0.0),
        batch_size=8,
        dropout=0.1,
    )
    assert h3a.loss + h3b.loss == h6.loss
    assert h3a.lr + h3b.lr == h6.lr
    assert h3a.val_loss + h3b.val_loss == h6.val_loss
    assert h3b.epoch == [3, 4, 5]
    assert same_weights(long, loaded)
    assert long._training_info() == loaded._training_info()
    if schedule is not None:
        assert len(set(h6.lr)) > 1, "the schedule should have changed the learning rate"
        # the same schedule given again continues it too
        again = ferrinet.from_bytes(part.to_bytes())
        h = again.fit(X, y, epochs=3, warm_start=True, **kwargs)
        assert h.loss == h3b.loss and same_weights(again, long)


@pytest.mark.parametrize(
    "opt",
    [
        optim.SGD(lr=0.1, momentum=0.5, dampening=0.1, weight_decay=1e-4),
        optim.RMSprop(lr=0.01, alpha=0.9, eps=1e-7, momentum=0.2, centered=True),
        optim.Adam(lr=0.003, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.01, amsgrad=True),
        optim.AdamW(lr=0.003, weight_decay=0.05),
    ],
    ids=lambda o: o.name,
)
def test_the_optimizer_object_is_rebuilt(opt):
    X, y = blobs3(60)
    net = classifier()
    net.train_epoch(X, y, optimizer=opt, batch_size=16)
    loaded = ferrinet.from_bytes(net.to_bytes())
    assert type(loaded.training_state.optimizer) is type(opt)
    assert loaded.training_state.optimizer == opt
    assert loaded.training_state.seed == net.training_state.seed
    with pytest.raises(ValueError, match="reset_training"):
        loaded.train_epoch(X, y, optimizer="sgd", learning_rate=0.5, batch_size=16)


class HalvingSchedule(schedules.Constant):
    """A schedule that is not one of ferrinet.schedules' classes: files cannot keep it."""

    def lr_at(self, lr0, epoch):
        return lr0 / 2**epoch


def test_a_schedule_a_file_cannot_keep_makes_warm_start_say_so():
    X, y = blobs3(60)
    net = classifier()
    net.fit(
        X, y, epochs=2, optimizer="sgd", learning_rate=0.1, schedule=HalvingSchedule(), verbose=0
    )
    data = net.to_bytes()
    assert json.loads(metadata(data)["python"])["fit"]["schedule"] == {
        "unsupported": f"{__name__}.HalvingSchedule"
    }
    loaded = ferrinet.from_bytes(data)
    before = loaded.to_bytes()
    assert before == data, "the marker survives a second save"
    with pytest.raises(ValueError, match="HalvingSchedule, not one of ferrinet.schedules"):
        loaded.fit(X, y, epochs=1, warm_start=True, verbose=0)
    assert loaded.to_bytes() == before, "the refused fit changed nothing"
    # a schedule given explicitly starts from the current learning rate; train_epoch continues
    loaded.fit(X, y, epochs=1, warm_start=True, schedule="constant", verbose=0)
    assert loaded.training_state.epoch == 3
    loaded.train_epoch(X, y, batch_size=32)
    assert loaded.training_state.epoch == 4


def test_training_false_keeps_weights_only(tmp_path):
    X, y = blobs3(60)
    net = classifier()
    net.fit(X, y, epochs=1, verbose=0)
    data = net.to_bytes(training=False)
    assert "training" not in metadata(data) and "python" not in metadata(data)
    assert len(data) < len(net.to_bytes())
    loaded = ferrinet.from_bytes(data)
    assert loaded.training_state is None and loaded.learning_rate is None
    assert same_weights(loaded, net)
    net.save(tmp_path / "w.safetensors", training=False)
    assert (tmp_path / "w.safetensors").read_bytes() == data
    with pytest.raises(TypeError, match="training must be True or False"):
        net.to_bytes(training=1)
    # a network that never trained has no training metadata either way
    assert "training" not in metadata(classifier().to_bytes())


def test_moments_too_large_for_a_header_are_refused_and_training_false_saves():
    X = np.zeros((1, 2500))
    net = NeuralNetwork([2500, 2000, 1], seed=0)  # 5.0 M parameters: Adam's m and v > 100 MB
    net.train_epoch(X, [0.5], batch_size=1, optimizer="adam")
    with pytest.raises(ValueError, match="more than the 100000000 bytes a safetensors header"):
        net.to_bytes()
    back = ferrinet.from_bytes(net.to_bytes(training=False))
    assert back.training_state is None and back.n_parameters == net.n_parameters


# ----------------------------------------------------------------------------------------------
# paths and files
# ----------------------------------------------------------------------------------------------
class Where(os.PathLike):
    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return str(self.path)


def test_paths_may_be_str_or_pathlike(tmp_path):
    net = make([2, 3, 1])
    for path in (str(tmp_path / "a"), tmp_path / "b", Where(tmp_path / "c")):
        net.save(path)
        assert same_weights(ferrinet.load(path), net)


@pytest.mark.parametrize("bad", [3, None, b"model.safetensors", ["x"], 2.5])
def test_other_path_types_are_a_type_error(tmp_path, bad):
    net = make([2, 3, 1])
    with pytest.raises(TypeError, match="path must be a str or an os.PathLike"):
        net.save(bad)
    with pytest.raises(TypeError, match="path must be a str or an os.PathLike"):
        ferrinet.load(bad)
    assert os.listdir(tmp_path) == []


def test_bytes_arguments_are_checked():
    net = make([2, 3, 1])
    data = net.to_bytes()
    with pytest.raises(TypeError, match=r"to read a model from its bytes, use ferrinet.from_bytes"):
        ferrinet.load(data)
    with pytest.raises(TypeError, match=r"got str \(to read a file, use ferrinet.load\(path\)\)"):
        ferrinet.from_bytes("model.safetensors")
    with pytest.raises(TypeError, match="data must be bytes"):
        ferrinet.from_bytes([1, 2])
    for buffer in (bytearray(data), memoryview(data)):
        assert same_weights(ferrinet.from_bytes(buffer), net)


def test_missing_files_and_directories_are_os_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ferrinet.load(tmp_path / "nothing.safetensors")
    with pytest.raises(FileNotFoundError):
        make([2, 3, 1]).save(tmp_path / "no" / "such" / "dir.safetensors")
    with pytest.raises(IsADirectoryError):
        make([2, 3, 1]).save(tmp_path)
    assert temp_files(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "model.safetensors"
    make([3, 4, 2], seed=1).save(path)
    return path, path.read_bytes()


def half_then(exc):
    def write_all(f, data):
        f.write(bytes(data[: len(data) // 2]))
        f.flush()
        raise exc

    return write_all


@pytest.mark.parametrize(
    "exc",
    [OSError(28, "No space left on device"), KeyboardInterrupt()],
    ids=["ENOSPC", "KeyboardInterrupt"],
)
def test_a_write_failing_midway_leaves_the_old_file_and_no_temporary(monkeypatch, old_file, exc):
    path, before = old_file
    net = make([3, 9, 2], seed=2)
    net_bytes = net.to_bytes()
    monkeypatch.setattr(fio, "_write_all", half_then(exc))
    with pytest.raises(type(exc)):
        net.save(path)
    assert path.read_bytes() == before
    assert temp_files(path.parent) == []
    assert net.to_bytes() == net_bytes, "the network is unchanged"
    monkeypatch.undo()
    net.save(path)
    assert path.read_bytes() == net_bytes


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failing_fsync_or_rename_leaves_the_old_file(monkeypatch, old_file, step):
    path, before = old_file

    def fail(*args):
        raise OSError(5, f"{step} failed")

    monkeypatch.setattr(fio.os, step, fail)
    with pytest.raises(OSError, match=f"{step} failed"):
        make([3, 9, 2]).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert temp_files(path.parent) == []


def test_a_new_file_failing_midway_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(fio, "_write_all", half_then(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        make([3, 4, 2]).save(tmp_path / "new.safetensors")
    assert os.listdir(tmp_path) == []


def test_a_process_killed_midway_leaves_the_old_file(old_file):
    """A real crash: the child is SIGKILLed after writing half of the temporary file. The old
    file is intact (a crash cannot remove the temporary file: it stays beside it, hidden)."""
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("no SIGKILL here")
    path, before = old_file
    script = textwrap.dedent(
        f"""
        import os, signal, ferrinet
        from ferrinet import io
        def write_all(f, data):
            f.write(bytes(data[: len(data) // 2])); f.flush(); os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        io._write_all = write_all
        ferrinet.NeuralNetwork([3, 50, 2], seed=9).save({str(path)!r})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert path.read_bytes() == before
    leftovers = temp_files(path.parent)
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.safetensors.")
    assert same_weights(ferrinet.load(path), make([3, 4, 2], seed=1))


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_permissions_of_the_old_file_are_kept_and_a_symlink_is_followed(tmp_path):
    path = tmp_path / "model.safetensors"
    make([2, 3, 1]).save(path)
    os.chmod(path, 0o640)
    make([2, 5, 1]).save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    link = tmp_path / "link.safetensors"
    link.symlink_to(path)
    net = make([2, 7, 1])
    net.save(link)
    assert link.is_symlink()
    assert path.read_bytes() == net.to_bytes()


# ----------------------------------------------------------------------------------------------
# bad bytes
# ----------------------------------------------------------------------------------------------
def trained_bytes():
    X, y = blobs3(30)
    net = classifier()
    net.fit(X, y, epochs=1, batch_size=8, verbose=0, schedule=schedules.ExponentialLR(0.9))
    return net.to_bytes()


def test_every_truncation_is_a_model_format_error():
    data = trained_bytes()
    step = max(1, len(data) // 600)
    for end in list(range(0, len(data), step)) + [len(data) - 1]:
        with pytest.raises(ModelFormatError):
            ferrinet.from_bytes(data[:end])
    with pytest.raises(ModelFormatError, match="truncated"):
        ferrinet.from_bytes(data[:-1])


def test_flipped_bytes_are_refused_or_harmless():
    net = make([3, 4, 2], seed=6)
    data = net.to_bytes()
    n = 8 + struct.unpack("<Q", data[:8])[0]
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x04
        try:
            ferrinet.from_bytes(bad)
        except ModelFormatError:
            continue
        assert 8 <= i < n, f"a flip in the tensor data at byte {i} was not detected"


def test_sample_of_hostile_files_through_python(tmp_path):
    data = trained_bytes()
    cases = [
        (b"", "too short"),
        (struct.pack("<Q", 2**62) + b"{}", "only 2 bytes follow"),
        (with_metadata(data, format_version="2"), "format version 2 is not supported"),
        (with_metadata(data, format=None), "not a ferrinet file"),
        (
            with_metadata(
                data,
                architecture='{"sizes": [4, 16, 8, 3], "activations": ["tanh", '
                '"tanh", "swish"], "loss": "cross_entropy", "dtype": "float64", "seed": 1,'
                ' "n_threads": 1}',
            ),
            'unknown activation "swish"',
        ),
        (
            with_metadata(data, python='{"a": ' + "[" * 5000 + "]" * 5000 + "}"),
            "python metadata: not valid JSON",
        ),
    ]
    header, body = split(data)
    header["0.weight"]["dtype"] = "BF16"
    cases.append((assemble(header, body), "ferrinet files hold F64 or F32"))
    bad_body = bytearray(body)
    bad_body[-1] ^= 1
    cases.append((assemble(split(data)[0], bytes(bad_body), fix_crc=False), "corrupted"))
    for bad, match in cases:
        with pytest.raises(ModelFormatError, match=match):
            ferrinet.from_bytes(bad)
    # a plain PyTorch state dict is refused with a message that says so
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file(
        {"0.weight": torch.zeros(2, 3), "0.bias": torch.zeros(2)},
        str(tmp_path / "plain.safetensors"),
    )
    with pytest.raises(ModelFormatError, match="plain PyTorch state dict"):
        ferrinet.load(tmp_path / "plain.safetensors")


@pytest.mark.parametrize(
    "python, match",
    [
        ('{"fit": 3}', "fit must be an object"),
        ('{"other": null}', r"must have the keys \['fit'\]"),
        ('{"fit": {"epoch": -1, "schedule": null, "state": null}}', "epoch must be an integer"),
        (
            '{"fit": {"epoch": 1, "schedule": {"name": "warp", "options": {}}, "state": null}}',
            "unknown schedule 'warp'",
        ),
        (
            '{"fit": {"epoch": 1, "schedule": {"name": "step", "options": {"step_size": 0, '
            '"gamma": 0.5}}, "state": null}}',
            "the schedule cannot be rebuilt",
        ),
        (
            '{"fit": {"epoch": 1, "schedule": {"name": "exponential", "options": {"gamma": 0.5}}, '
            '"state": {"class": "_ClosedFormState", "values": {"lr": "0x1p-3", "lr0": 0.5}}}}',
            "lr0 must be a float in hex notation",
        ),
        (
            '{"fit": {"epoch": 1, "schedule": {"name": "exponential", "options": {"gamma": 0.5}}, '
            '"state": {"class": "_PlateauState", "values": {}}}}',
            "fit.state.class",
        ),
        (
            '{"fit": {"epoch": 1, "schedule": null, "state": {"class": "x", "values": {}}}}',
            "fit.state without fit.schedule",
        ),
    ],
)
def test_bad_python_metadata_is_a_model_format_error(python, match):
    X, y = blobs3(30)
    net = classifier()
    net.fit(X, y, epochs=1, verbose=0)
    with pytest.raises(ModelFormatError, match=match):
        ferrinet.from_bytes(with_metadata(net.to_bytes(), python=python))


def test_the_python_metadata_is_ignored_without_a_training_run():
    net = make([2, 3, 1])
    data = with_metadata(net.to_bytes(), python='{"fit": null}')
    assert ferrinet.from_bytes(data).training_state is None
