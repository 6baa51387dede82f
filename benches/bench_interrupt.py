"""Ctrl-C latency: how long after a SIGINT a long ``train`` / ``fit`` raises KeyboardInterrupt.

The target (README: "stop within a few tens of milliseconds on Ctrl-C") is a p95 under 100 ms
of wall-clock time, signal sent by another process to KeyboardInterrupt caught. That time
includes however long other jobs keep the process off the cores, which no code controls, so it
is measured here, on a machine you know the load of, and not asserted by ``make test``; the
test suite asserts what the code controls, the training thread's CPU time from the signal to
the exception (tests/test_concurrency.py), which this prints too.

    .venv/bin/python benches/bench_interrupt.py            # 20 trials of each mode, ~30 s
    .venv/bin/python benches/bench_interrupt.py --trials 5 # a smoke run

Exit status 1 when a p95 of wall-clock time misses the 100 ms target.
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

TARGET_S = 0.100

CHILD = textwrap.dedent(
    """
    import signal, sys, time
    import numpy as np
    from ferrinet import NeuralNetwork

    def on_sigint(signum, frame):  # runs on the training thread when it polls
        raise KeyboardInterrupt(time.thread_time())

    signal.signal(signal.SIGINT, on_sigint)
    trials, mode = int(sys.argv[1]), sys.argv[2]
    rng = np.random.default_rng(0)
    X, y = rng.random((2000, 784)), rng.integers(0, 10, size=2000)
    net = NeuralNetwork([784, 64, 10], loss="cross_entropy", seed=0)
    net.train(X[:20], y[:20], 1, 1e-3)  # warm up
    print("ready", flush=True)
    for i in range(trials):
        print("start", i, flush=True)
        try:
            if mode == "train":
                net.train(X, y, 250, 1e-3)
            else:
                net.fit(X, y, epochs=200, batch_size=16, optimizer="sgd", learning_rate=1e-3,
                        verbose=0, warm_start=True)
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
            time.sleep(0.5)
            cpu_sent = cpu_time_of(proc.pid)  # clock-tick resolution (10 ms): indicative
            sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock in both processes
            proc.send_signal(signal.SIGINT)
            words = proc.stdout.readline().split()
            assert words[:2] == ["caught", str(i)], words
            wall.append(float(words[2]) - sent)
            cpu.append(max(0.0, float(words[3]) - cpu_sent))
        proc.wait(timeout=30)
    return wall, cpu


def p95(values):
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    print(f"Ctrl-C latency, {args.trials} trials per mode; target: wall p95 < 100 ms")
    print(f"{'mode':6} {'wall p50':>9} {'wall p95':>9} {'wall max':>9} {'cpu p95':>8}  (ms)")
    ok = True
    for mode in ("train", "fit"):
        wall, cpu = run(mode, args.trials)
        w = sorted(wall)
        print(
            f"{mode:6} {w[len(w) // 2] * 1e3:9.1f} {p95(w) * 1e3:9.1f} {w[-1] * 1e3:9.1f} "
            f"{p95(cpu) * 1e3:8.1f}"
        )
        ok &= p95(w) < TARGET_S
    print("target met" if ok else "target MISSED (is the machine busy? see the cpu column)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
