"""Saving and loading ``ferrinet.NeuralNetwork``: safetensors files that PyTorch reads as they are.

``net.save(path)`` / ``ferrinet.load(path)`` and ``net.to_bytes()`` / ``ferrinet.from_bytes(data)``
(also ``NeuralNetwork.load`` / ``NeuralNetwork.from_bytes``, which build the class they are
called on). The Rust core writes and reads the bytes (``rust/ferrinet-core/src/io.rs``); this
module adds what is Python's own:

- files: ``path`` is a ``str`` or an ``os.PathLike`` (anything else is a TypeError); writes are
  atomic (a temporary file in the same directory, written, flushed and fsynced, then renamed
  over the target, then the directory fsynced), so a crash or an error mid-save leaves the old
  file as it was, and an error removes the temporary file;
- the ``python`` metadata: what ``fit`` keeps for ``warm_start`` (its learning-rate schedule, the
  schedule's running state and epoch counter), as a JSON object;
- rebuilding the ``ferrinet.optim`` object of the training run from the file's optimizer.

The layout of a file (tensor names ``0.weight``, ``0.bias``, ``2.weight``, ... as in a PyTorch
``nn.Sequential``; the metadata keys) is described in docs/saving.md. Loading never executes code
from the file (there is no pickle in it); anything wrong with the bytes raises
``ferrinet.ModelFormatError`` (a ValueError) saying what.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
import secrets
from typing import Any, Dict, Optional

from . import _core, optim, schedules
from ._core import ModelFormatError

__all__ = ["ModelFormatError", "from_bytes", "load", "read_file", "write_atomic"]


def load(path):
    """The ``ferrinet.NeuralNetwork`` saved at ``path`` (a str or os.PathLike) by ``net.save``:
    architecture, dtype, weights, ``n_threads`` and, when it was saved, the training run
    (optimizer moments, learning rate, generator, counters and fit's schedule), so that training
    continues exactly as it would have. ``ModelFormatError`` for a file that is not a valid
    ferrinet file; OSError (FileNotFoundError, ...) when it cannot be read."""
    from .network import NeuralNetwork

    return NeuralNetwork.load(path)


def from_bytes(data):
    """The ``ferrinet.NeuralNetwork`` held by ``data`` (bytes, bytearray or memoryview: what
    ``net.to_bytes()`` returned, or a file's contents). ``ModelFormatError`` if they are not a
    valid ferrinet file."""
    from .network import NeuralNetwork

    return NeuralNetwork.from_bytes(data)


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------
def fspath(path, what="path") -> str:
    """``path`` as a str: a str or an os.PathLike giving a str; TypeError otherwise (bytes are
    refused with a pointer to ``from_bytes``, as they are more likely a file's contents)."""
    if isinstance(path, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"{what} must be a str or an os.PathLike, got {type(path).__name__} (to read a "
            "model from its bytes, use ferrinet.from_bytes)"
        )
    try:
        text = os.fspath(path)
    except TypeError:
        raise TypeError(
            f"{what} must be a str or an os.PathLike, got {type(path).__name__}"
        ) from None
    if not isinstance(text, str):
        raise TypeError(
            f"{what} must be a str or an os.PathLike giving a str, got a path of "
            f"{type(text).__name__}"
        )
    return text


def as_bytes(data) -> bytes:
    """The contents of a file as bytes: bytes as they are, bytearray / memoryview copied."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    hint = ""
    if isinstance(data, (str, os.PathLike)):
        hint = " (to read a file, use ferrinet.load(path))"
    raise TypeError(
        "data must be bytes (the contents of a ferrinet file, as net.to_bytes() returns), got "
        f"{type(data).__name__}{hint}"
    )


def check_flag(value, what) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
_CHUNK = 1 << 20


def read_file(path) -> bytes:
    """The bytes of the file at ``path`` (str or os.PathLike). Read 1 MiB at a time with a look
    for Ctrl-C before each, without the GIL, straight into the bytes returned
    (``_core._read_all``; one ``read`` of a large file runs to its end before Ctrl-C lands).
    Elsewhere than POSIX, chunks read in Python."""
    with open(fspath(path), "rb") as f:
        read_all = getattr(_core, "_read_all", None)
        if read_all is not None:
            return read_all(f.fileno())
        chunks: list = []  # pragma: no cover - Windows
        while True:  # pragma: no cover
            chunk = f.read(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _write_all(f, data) -> None:
    """Writes ``data`` to the open file ``f`` in chunks (tests make this fail midway)."""
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        f.write(view[start : start + _CHUNK])


def write_atomic(path, data) -> None:
    """Writes ``data`` to ``path`` so that the file is, at every moment, either the old one or
    the new one in full: a temporary file in the same directory (``.NAME.XXXXXXXXXXXX.tmp``,
    created with the permissions a plain ``open`` would give, or the old file's), written,
    flushed and fsynced, then renamed over ``path`` (``os.replace``: atomic on POSIX and
    Windows), then the directory fsynced where the platform allows. A symlink at ``path`` is
    followed (the file it points to is replaced).

    An exception at any point, KeyboardInterrupt included, leaves no temporary file and no open
    descriptor, and says which file is in place: before the rename, the old file (untouched;
    the exception is raised as it was, a KeyboardInterrupt with that message); after it, the
    new, complete file (a KeyboardInterrupt during the directory fsync says so)."""
    # Everything inside the try, the names first, so that an interrupt at any line is handled
    # (the handler reads what was set so far). No `try` nests in this one: the helpers have
    # their own.
    try:
        target = f = None
        made: list = []  # the temporary file's name, once this call may have created it
        renaming = renamed = False
        target = os.path.realpath(fspath(path))
        directory, name = os.path.split(target)
        f = _create_temporary(directory, name, made)
        with f:
            _copy_mode(target, f)
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        renaming = True
        os.replace(made[0], target)
        renamed = True
        _fsync_directory(directory)
    except BaseException as err:
        seen = locals()  # the names an interrupt at the first line has not set yet are absent
        made = seen.get("made") or [None]
        target, f, tmp = seen.get("target"), seen.get("f"), made[0]
        if f is None and len(made) > 1:
            f = made[1]
        renaming, renamed = seen.get("renaming", False), seen.get("renamed", False)
        # `seen` holds `err`, whose traceback holds this frame: break the cycle, which would
        # keep what the frame holds (the open file) alive until the garbage collector runs.
        seen.clear()
        del seen
        if f is not None:
            f.close()  # now, not when the traceback (which holds this frame) is dropped
        # Did the rename happen? `renamed` is set just after it; an interrupt between the two
        # leaves it False with the temporary file already gone.
        replaced = renamed or (renaming and not os.path.lexists(tmp))
        if tmp is not None and not replaced:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if replaced:
            where = (
                f"the new file is in place at {target!r} (complete; the rename may not be "
                "synced to disk yet)"
            )
        else:
            where = f"{target or path!r} was not changed (the old file, if any, is in place)"
        if isinstance(err, KeyboardInterrupt):
            raise KeyboardInterrupt(f"save interrupted: {where}") from err
        if hasattr(err, "add_note"):  # Python 3.11+
            err.add_note(f"ferrinet save: {where}")
        raise


def _create_temporary(directory, name, made: list):
    """A new file ``.NAME.XXXXXXXXXXXX.tmp`` in ``directory``, open for writing. ``made`` gets
    its name before it is created and the open file after, so that the caller can close and
    remove it whatever happens."""
    for _ in range(100):
        candidate = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        made[:] = [candidate]
        f = None
        try:
            # A file object, not a bare descriptor: an interrupt that lands as the call returns
            # drops the object, which closes the descriptor. "x": O_CREAT | O_EXCL, mode
            # 0o666 & ~umask (a plain open's), not inherited by child processes.
            f = open(candidate, "xb")
            made.append(f)  # the caller closes it if this is interrupted on its way back
        except FileExistsError:
            made.clear()  # another writer's file: not ours to remove
            continue
        except BaseException:
            if f is not None:
                f.close()
            raise
        return f
    raise FileExistsError(  # pragma: no cover - 100 collisions of 48 random bits
        f"could not create a temporary file next to {os.path.join(directory, name)!r}"
    )


def _copy_mode(target, f) -> None:
    """Gives the open file ``f`` the permissions of the file ``target`` it will replace."""
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        return
    if hasattr(os, "fchmod"):
        os.fchmod(f.fileno(), mode)


def _fsync_directory(directory) -> None:
    """Makes the rename durable (POSIX); a no-op where directories cannot be opened or synced.
    The directory is opened, synced and closed in one native call (``_core._fsync_directory``):
    its descriptor never exists in Python, so no interrupt can leave it open (an ``os.open``
    here could return the descriptor and have the interrupt raised before it was stored)."""
    if os.name == "nt":  # pragma: no cover
        return
    try:
        _core._fsync_directory(directory)
    except OSError:  # pragma: no cover - some file systems refuse it
        pass


# --------------------------------------------------------------------------------------------
# The training run's Python side: the optimizer object and fit's schedule
# --------------------------------------------------------------------------------------------
def optimizer_from_config(config: Dict[str, Any]):
    """The ``ferrinet.optim`` object whose ``to_dict()`` is ``config`` (the core's optimizer)."""
    name = config.get("name")
    cls = optim.OPTIMIZERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelFormatError(f"the file's optimizer {name!r} is unknown")
    kwargs: Dict[str, Any] = {}
    try:
        for option in cls.options():
            if option == "betas":
                kwargs["betas"] = (config["beta1"], config["beta2"])
            else:
                kwargs[option] = config[option]
        opt = cls(**kwargs)
    except (KeyError, TypeError, ValueError, ArithmeticError) as err:
        raise ModelFormatError(
            f"the file's optimizer cannot be rebuilt: {type(err).__name__}: {err}"
        ) from None
    if opt.to_dict() != config:
        raise ModelFormatError(
            f"the file's optimizer {config!r} does not rebuild exactly (got {opt.to_dict()!r})"
        )
    return opt


class _UnsavedSchedule:
    """Stands for a schedule a file could not keep (not one of ``ferrinet.schedules``' classes):
    equal to nothing, so that ``fit(warm_start=True, schedule=...)`` starts the one given."""

    def __init__(self, name: str):
        self._unsaved_name = name

    def __eq__(self, other):
        return False

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self):
        return f"<unsaved schedule {self._unsaved_name}>"


class _UnsavedState:
    """The running state of an unsaved schedule: continuing it raises a clear error."""

    def __init__(self, name: str):
        self._unsaved_name = name

    def _refuse(self):
        raise ValueError(
            "fit(warm_start=True) cannot continue the learning-rate schedule of this training "
            f"run: it was a {self._unsaved_name}, not one of ferrinet.schedules' classes, and "
            "saved files keep only those. Pass schedule=... to start a schedule from the current "
            "learning rate, or warm_start=False to start a new run."
        )

    @property
    def lr(self):
        self._refuse()

    def end_epoch(self, epoch, monitored_loss=None):
        self._refuse()


def _type_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _encode_value(value):
    """A schedule state's number: floats as float.hex (exact, inf and nan included), ints as
    they are; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, int):
        return value
    return None


def encode_python_state(net) -> Optional[str]:
    """The ``python`` metadata of ``net``: fit's record of the current training run (schedule,
    its state, its epoch counter) as JSON, or None when there is nothing to keep."""
    run = net.training_state  # refreshes the run from the core; None without one
    record = net.__dict__.get("_fit_record")
    if run is None or record is None or getattr(record, "run", None) is not run:
        return None
    schedule, state = record.schedule, record.state
    fit: Dict[str, Any] = {"epoch": int(record.epoch), "schedule": None, "state": None}
    if schedule is not None:
        unsaved = getattr(schedule, "_unsaved_name", None)
        values = None
        if unsaved is None and type(schedule) in schedules.SCHEDULES.values() and state is not None:
            values = {k: _encode_value(v) for k, v in vars(state).items() if k != "schedule"}
            if any(v is None for v in values.values()):
                values = None
        if values is None:
            fit["schedule"] = {"unsupported": unsaved or _type_name(schedule)}
        else:
            fit["schedule"] = {
                "name": schedule.name,
                "options": {k: getattr(schedule, k) for k in schedule.options()},
            }
            fit["state"] = {"class": type(state).__name__, "values": values}
    return json.dumps({"fit": fit}, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _bad(msg) -> ModelFormatError:
    return ModelFormatError(f"the file's python metadata: {msg}")


def _keys(obj, where, keys):
    if not isinstance(obj, dict):
        raise _bad(f"{where} must be an object, got {type(obj).__name__}")
    if set(obj) != set(keys):
        raise _bad(f"{where} must have the keys {sorted(keys)}, got {sorted(obj)}")


def decode_python_state(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """The ``fit`` record of a file's ``python`` metadata (checked), or None."""
    if text is None:
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _bad(f"not valid JSON ({err})") from None
    _keys(obj, "the metadata", ["fit"])
    fit = obj["fit"]
    if fit is None:
        return None
    _keys(fit, "fit", ["epoch", "schedule", "state"])
    epoch = fit["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= _MAX_COUNT:
        raise _bad(f"fit.epoch must be an integer in [0, 2**63 - 1], got {_brief(epoch)}")
    return fit


_MAX_COUNT = 2**63 - 1


def _brief(value) -> str:
    """A value for a message: at most 60 characters (a 400-digit integer is not news)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print (sys.int_info.default_max_str_digits)
        return f"an integer of {value.bit_length()} bits"
    return text if len(text) <= 60 else text[:57] + "..."


def fit_record(run, fit: Dict[str, Any]):
    """fit's ``_FitRecord`` for ``run`` from a checked ``fit`` (``decode_python_state``)."""
    from .training import _FitRecord

    sched_json, state_json = fit["schedule"], fit["state"]
    schedule: Any
    state: Any
    if sched_json is None:
        if state_json is not None:
            raise _bad("fit.state without fit.schedule")
        schedule = state = None
    elif isinstance(sched_json, dict) and set(sched_json) == {"unsupported"}:
        name = sched_json["unsupported"]
        if not isinstance(name, str):
            raise _bad(f"fit.schedule.unsupported must be a name, got {name!r}")
        schedule, state = _UnsavedSchedule(name), _UnsavedState(name)
    else:
        _keys(sched_json, "fit.schedule", ["name", "options"])
        cls = (
            schedules.SCHEDULES.get(sched_json["name"])
            if isinstance(sched_json["name"], str)
            else None
        )
        if cls is None:
            raise _bad(f"unknown schedule {sched_json['name']!r}")
        options = sched_json["options"]
        _keys(options, "fit.schedule.options", cls.options())
        try:
            schedule = cls(**options)
        except (TypeError, ValueError, ArithmeticError) as err:
            raise _bad(f"the schedule cannot be rebuilt: {type(err).__name__}: {err}") from None
        state = schedule.start(1.0)
        fresh = {k: v for k, v in vars(state).items() if k != "schedule"}
        _keys(state_json, "fit.state", ["class", "values"])
        if state_json["class"] != type(state).__name__:
            raise _bad(
                f"fit.state.class is {state_json['class']!r}, a {cls.__name__} runs a "
                f"{type(state).__name__}"
            )
        values = state_json["values"]
        _keys(values, "fit.state.values", list(fresh))
        for key, like in fresh.items():
            setattr(state, key, _decode_value(values[key], like, f"fit.state.values.{key}"))
        _check_continues(state, fit["epoch"])
    record = _FitRecord(run, schedule, state)
    record.epoch = fit["epoch"]
    return record


def _check_continues(state, epoch) -> None:
    """Refuses a schedule state that ``fit(warm_start=True)`` could not continue: its learning
    rate, now and after the next epoch, must be one the core accepts (finite, >= 0), and
    computing it must not fail (an epoch or an option too large for a float, say). A copy is
    run, so the state loaded is the one in the file."""
    probe = copy.deepcopy(state)
    try:
        for _ in range(2):
            lr = probe.lr
            if (
                isinstance(lr, bool)
                or not isinstance(lr, float)
                or not (math.isfinite(lr) and lr >= 0.0)
            ):
                raise _bad(
                    f"the schedule's learning rate would be {_brief(lr)}, not a finite number >= 0"
                )
            probe.end_epoch(epoch, 1.0)
            epoch += 1
    except ModelFormatError:
        raise
    except (TypeError, ValueError, ArithmeticError, RecursionError) as err:
        raise _bad(
            f"the schedule's state cannot be continued: {type(err).__name__}: {err}"
        ) from None


def _decode_value(value, like, where):
    if isinstance(like, float):
        if not isinstance(value, str):
            raise _bad(f"{where} must be a float in hex notation, got {value!r}")
        try:
            return float.fromhex(value)
        except (ValueError, OverflowError):
            raise _bad(f"{where} must be a float in hex notation, got {value[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _bad(f"{where} must be an integer, got {_brief(value)}")
    value = int(value)
    if not -_MAX_COUNT <= value <= _MAX_COUNT:
        raise _bad(f"{where} must be an integer in [-(2**63 - 1), 2**63 - 1], got {_brief(value)}")
    return value
