"""Every core by default (issue #15, item 7): a network whose ``n_threads`` was never set uses
``FERRINET_NUM_THREADS``, else ``OMP_NUM_THREADS`` (which joblib's loky workers set), else the
CPUs this process may use (its affinity mask, not the machine's count), at most
``ferrinet.max_threads()``; a count given to the constructor, the ``n_threads`` property or the
scikit-learn wrapper wins over all of them. The default is read once per process, so each case
runs in a child process with the environment it needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ferrinet
import numpy as np
import pytest

_VARS = ("FERRINET_NUM_THREADS", "OMP_NUM_THREADS")


def _child(code: str, **env: str):
    """Runs ``code`` in a fresh interpreter with FERRINET_NUM_THREADS and OMP_NUM_THREADS
    taken out of the environment, then ``env`` added; returns what it printed last, as JSON."""
    full = {k: v for k, v in os.environ.items() if k not in _VARS}
    full.update(env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_REPORT = """
    import json, os
    import ferrinet
    net = ferrinet.NeuralNetwork([3, 4, 2])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(json.dumps([net.n_threads, net._n_threads_setting, ferrinet.max_threads(), cpus]))
"""


def _usable(limit, cpus):
    """The CPUs the core counts as usable: ``max_threads()`` is 4 per usable CPU below its cap
    of 256 (the affinity mask, and a cgroup CPU quota where one is lower)."""
    usable = limit // 4 if limit < 256 else cpus
    assert 1 <= usable <= cpus
    return usable


def test_unset_the_default_is_the_cpus_this_process_may_use():
    n, setting, limit, cpus = _child(_REPORT)
    assert setting is None
    assert n == _usable(limit, cpus)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity mask here")
def test_the_default_follows_the_affinity_mask_not_the_machine():
    """Pinned to one CPU before ferrinet is imported, the process gets one thread by default
    (and a limit of 4), however many CPUs the machine has."""
    code = "import os\nos.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n" + (
        textwrap.dedent(_REPORT)
    )
    n, setting, limit, cpus = _child(code)
    assert (n, setting, limit, cpus) == (1, None, 4, 1)


def test_ferrinet_num_threads_sets_the_default_and_beats_omp_num_threads():
    n, setting, limit, _ = _child(_REPORT, FERRINET_NUM_THREADS="3", OMP_NUM_THREADS="1")
    assert (n, setting) == (min(3, limit), None)
    n, _, _, _ = _child(_REPORT, FERRINET_NUM_THREADS=" 1 ", OMP_NUM_THREADS="2")
    assert n == 1
    # more than the machine allows is capped at the limit (an environment set for a larger
    # machine still works here), while an explicit count above it is refused
    n, _, limit, _ = _child(_REPORT, FERRINET_NUM_THREADS="100000")
    assert n == limit


def test_omp_num_threads_sets_the_default_as_in_joblib_workers():
    n, setting, _, _ = _child(_REPORT, OMP_NUM_THREADS="1")
    assert (n, setting) == (1, None)
    n, _, limit, _ = _child(_REPORT, OMP_NUM_THREADS="2,1")  # OpenMP's nested form
    assert n == min(2, limit)
    # an OMP_NUM_THREADS that is not a positive integer is ignored, as OpenMP libraries do
    for bad in ("0", "many", "-3"):
        n, _, limit, cpus = _child(_REPORT, OMP_NUM_THREADS=bad)
        assert n == _usable(limit, cpus), bad


def test_an_explicit_count_wins_over_the_environment():
    code = """
        import json, warnings
        import numpy as np
        import ferrinet
        from ferrinet.sklearn import MLPClassifier
        warnings.simplefilter("ignore")
        a = ferrinet.NeuralNetwork([3, 4, 2], n_threads=2)
        b = ferrinet.NeuralNetwork([3, 4, 2])
        before = b.n_threads
        b.n_threads = 2
        X, y = np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
        c = MLPClassifier((4,), max_iter=2, n_threads=2).fit(X, y).network_
        d = MLPClassifier((4,), max_iter=2).fit(X, y).network_
        b.n_threads = None
        print(json.dumps([a.n_threads, before, c.n_threads, d.n_threads, d._n_threads_setting,
                          b.n_threads, b._n_threads_setting]))
    """
    got = _child(code, FERRINET_NUM_THREADS="1", OMP_NUM_THREADS="1")
    assert got == [2, 1, 2, 1, None, 1, None]


def test_an_invalid_ferrinet_num_threads_is_a_clear_value_error():
    """Our own variable set to something that is not a thread count is refused by every call
    that needs the default (never silently ignored); an explicit count still works."""
    code = """
        import json
        import ferrinet
        errors = []
        for make in (lambda: ferrinet.NeuralNetwork([3, 4, 2]),
                     lambda: ferrinet.from_bytes(saved)):
            try:
                make()
                errors.append(None)
            except ValueError as e:
                errors.append(str(e))
        net = ferrinet.NeuralNetwork([3, 4, 2], n_threads=1)
        try:
            net.n_threads = None
        except ValueError as e:
            errors.append(str(e))
        print(json.dumps(errors + [net.n_threads]))
    """
    code = "saved = bytes.fromhex(%r)\n" % ferrinet.NeuralNetwork([3, 4, 2]).to_bytes().hex() + (
        textwrap.dedent(code)
    )
    for bad in ("four", "0", "-2", "1.5"):
        *errors, n = _child(code, FERRINET_NUM_THREADS=bad)
        assert n == 1
        assert len(errors) == 3
        for e in errors:
            assert e is not None and "FERRINET_NUM_THREADS must be a positive integer" in e
            assert repr(bad).strip("'") in e


def test_a_file_saved_with_the_default_takes_the_loaders_default(tmp_path):
    """The file records ``n_threads: null`` for a network that follows the default, and the
    loading process's default applies; a count that was set travels with the file."""
    save = """
        import ferrinet
        ferrinet.NeuralNetwork([3, 4, 2]).save(%r)
        ferrinet.NeuralNetwork([3, 4, 2], n_threads=1).save(%r)
        print("[]")
    """ % (str(tmp_path / "default.fnet"), str(tmp_path / "pinned.fnet"))
    _child(save, FERRINET_NUM_THREADS="1")
    load = """
        import json
        import ferrinet
        a = ferrinet.load(%r)
        b = ferrinet.load(%r)
        print(json.dumps([a.n_threads, a._n_threads_setting, b.n_threads, b._n_threads_setting]))
    """ % (str(tmp_path / "default.fnet"), str(tmp_path / "pinned.fnet"))
    got = _child(load, FERRINET_NUM_THREADS="2")
    assert got == [min(2, ferrinet.max_threads()), None, 1, 1]


def test_old_files_keep_the_count_they_store():
    """Files written before the default changed record a count (1, the old default): they load
    with it, set, and save it again."""
    folder = Path(__file__).parent / "fixtures" / "saved_14a4727"
    for path in sorted(folder.glob("*.safetensors")):
        net = ferrinet.load(path)
        assert (net.n_threads, net._n_threads_setting) == (1, 1), path.name
        assert ferrinet.from_bytes(net.to_bytes())._n_threads_setting == 1


def test_copies_and_pickles_keep_whether_the_count_was_set():
    import copy
    import pickle

    default = ferrinet.NeuralNetwork([3, 4, 2])
    pinned = ferrinet.NeuralNetwork([3, 4, 2], n_threads=1)
    for make in (lambda n: n.copy(), copy.deepcopy, lambda n: pickle.loads(pickle.dumps(n))):
        assert make(default)._n_threads_setting is None
        assert make(pinned)._n_threads_setting == 1


def test_results_are_the_same_bits_for_a_given_count_default_or_set():
    """The default is only a count: a network on its default trains to the bits of one with
    that count set."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((512, 8)), rng.integers(0, 3, 512)
    a = ferrinet.NeuralNetwork([8, 16, 3], loss="cross_entropy", seed=1)
    b = ferrinet.NeuralNetwork([8, 16, 3], loss="cross_entropy", seed=1, n_threads=a.n_threads)
    for net in (a, b):
        net.train_epoch(X, y, batch_size=256, learning_rate=0.1, seed=0)
    for (wa, ba), (wb, bb) in zip(a.get_weights(), b.get_weights()):
        assert wa.tobytes() == wb.tobytes() and ba.tobytes() == bb.tobytes()


def _worker_report():
    return ferrinet.NeuralNetwork([3, 4, 2]).n_threads, os.environ.get("OMP_NUM_THREADS")


def test_a_joblib_loky_worker_sees_the_limit_joblib_sets(monkeypatch):
    """joblib's loky backend sets OMP_NUM_THREADS in its workers (cores / n_jobs, at least 1)
    so that parallel searches such as GridSearchCV(n_jobs=...) do not oversubscribe; a network
    built in a worker takes that as its default."""
    joblib = pytest.importorskip("joblib")
    for name in _VARS:
        monkeypatch.delenv(name, raising=False)
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # no worker started with another environment
    got = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_worker_report)() for _ in range(2)
    )
    for n, omp in got:
        assert omp is not None, "loky did not set OMP_NUM_THREADS in its worker"
        assert n == min(int(omp), ferrinet.max_threads())
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert all(n <= max(1, cpus // 2) for n, _ in got)
