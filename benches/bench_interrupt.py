"""Ctrl-C latency: how long after a SIGINT a long call raises KeyboardInterrupt.

Issue #15's target: a SIGINT at any moment 0.01-3 s into ``fit`` on 200,000 x 64 data
(64-128-128-10), and 0.05-1 s into ``predict`` / ``compute_loss`` / ``evaluate`` on 2,000,000 x 64,
lands with p95 <= 50 ms and max <= 100 ms of wall-clock time, signal sent by another process to
KeyboardInterrupt caught. The moments are spread evenly over those ranges (trial i of n at
lo + (hi - lo) * (i + 0.5) / n after the call starts). Two older modes, ``train`` (per-sample,
784-64-10) and ``fit`` (batch 16, 2,000 x 784), keep the README's p95 < 100 ms.

That time includes however long other jobs keep the process off the cores, which no code
controls, so it is measured here, on a machine you know the load of (printed: the 1-minute load
average before and after), and not asserted by ``make test``; the test suite asserts what the
code controls (counts of looks for signals; the training thread's CPU time from the signal to
the exception, tests/test_concurrency.py), which the cpu column shows too. Every library runs
as called by default (ferrinet's ``n_threads``: every usable CPU).

    .venv/bin/python benches/bench_interrupt.py                 # 20 trials of each mode, ~3 min
    .venv/bin/python benches/bench_interrupt.py --trials 5      # a smoke run
    .venv/bin/python benches/bench_interrupt.py --modes predict-2M,fit-200k

Exit status 1 when a mode misses its target.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

# mode: (the moments' range in s after the call starts, p95 target, max target or None)
MODES = {
    "train": ((0.5, 0.5), 0.100, None),
    "fit": ((0.5, 0.5), 0.100, None),
    "fit-200k": ((0.01, 3.0), 0.050, 0.100),
    "predict-2M": ((0.05, 1.0), 0.050, 0.100),
    "compute_loss-2M": ((0.05, 1.0), 0.050, 0.100),
    "evaluate-2M": ((0.05, 1.0), 0.050, 0.100),
}

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    import numpy as np
    from ferrinet import NeuralNetwork

    def on_sigint(signum, frame):  # runs on the calling thread when it polls
        raise KeyboardInterrupt(time.thread_time())

    signal.signal(signal.SIGINT, on_sigint)
    trials, mode = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    if mode in ("train", "fit"):
        X, y = rng.random((2000, 784)), rng.integers(0, 10, size=2000)
        net = NeuralNetwork([784, 64, 10], loss="cross_entropy", seed=0)
    else:
        n = 200_000 if mode == "fit-200k" else 2_000_000
        X, y = rng.standard_normal((n, 64)), rng.integers(0, 10, size=n)
        net = NeuralNetwork([64, 128, 128, 10], loss="cross_entropy", seed=0)
    calls = {
        "train": lambda: net.train(X, y, 250, 1e-3),
        "fit": lambda: net.fit(X, y, epochs=200, batch_size=16, optimizer="sgd",
                               learning_rate=1e-3, verbose=0, warm_start=True),
        "fit-200k": lambda: net.fit(X, y, epochs=50, verbose=0),
        "predict-2M": lambda: net.predict(X),
        "compute_loss-2M": lambda: net.compute_loss(X, y),
        "evaluate-2M": lambda: net.evaluate(X, y),
    }
    net.train(X[:20], y[:20], 1, 1e-3)  # warm up
    net.predict(X[:1000])
    print("ready", flush=True)
    for i in range(trials):
        print("start", i, flush=True)
        try:
            calls[mode]()
            print("finished", i, flush=True)
        except KeyboardInterrupt as err:
            print("caught", i, repr(time.monotonic()), repr(err.args[0]), flush=True)
    """
)


def cpu_time_of(pid: int) -> float:
    """The CPU time (user + system) of the process's main thread, from /proc (Linux)."""
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def run(mode: str, trials: int):
    (lo, hi), _, _ = MODES[mode]
    wall, cpu = [], []
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(trials), mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["ready"]
        for i in range(trials):
            assert proc.stdout.readline().split()[:2] == ["start", str(i)]
            time.sleep(lo + (hi - lo) * (i + 0.5) / trials)
            cpu_sent = cpu_time_of(proc.pid)  # clock-tick resolution (10 ms): indicative
            sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock in both processes
            proc.send_signal(signal.SIGINT)
            words = proc.stdout.readline().split()
            assert words[:2] == ["caught", str(i)], f"{mode}: the call ended first: {words}"
            wall.append(float(words[2]) - sent)
            cpu.append(max(0.0, float(words[3]) - cpu_sent))
        proc.wait(timeout=60)
    return wall, cpu


def p95(values):
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma separated, of {', '.join(MODES)}"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= set(MODES):
        parser.error(f"--modes takes {', '.join(MODES)}")
    load = os.getloadavg()[0]
    print(f"Ctrl-C latency, {args.trials} trials per mode, {os.cpu_count()} CPUs, load {load:.2f}")
    print(
        f"{'mode':16} {'moments (s)':>12} {'wall p50':>9} {'wall p95':>9} {'wall max':>9} "
        f"{'cpu p95':>8}  (ms)  target"
    )
    ok = True
    for mode in modes:
        (lo, hi), p95_target, max_target = MODES[mode]
        wall, cpu = run(mode, args.trials)
        w = sorted(wall)
        met = p95(w) <= p95_target and (max_target is None or w[-1] <= max_target)
        target = f"p95 <= {p95_target * 1e3:.0f}" + (
            f", max <= {max_target * 1e3:.0f}" if max_target else ""
        )
        print(
            f"{mode:16} {f'{lo:g}-{hi:g}':>12} {w[len(w) // 2] * 1e3:9.1f} "
            f"{p95(w) * 1e3:9.1f} {w[-1] * 1e3:9.1f} {p95(cpu) * 1e3:8.1f}        "
            f"{target}  {'met' if met else 'MISSED'}"
        )
        ok &= met
    print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")
    print("targets met" if ok else "target MISSED (is the machine busy? see the cpu column)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
