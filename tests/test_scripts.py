"""The scripts a user runs first: the demo (`make demo`) and the benchmarks' smoke runs. They
must run to the end and say what the README says they show."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*args, timeout=300):
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_demo_shows_the_article_failing_and_ferrinet_passing(tmp_path):
    out = run("-m", "ferrinet.demo", "--out", str(tmp_path))
    checks = re.findall(r"gradcheck (passed|FAILED): max relative error ([0-9.e+-]+)", out)
    assert [verdict for verdict, _ in checks] == ["FAILED", "passed"], checks
    assert float(checks[0][1]) > 1e-2 and float(checks[1][1]) < 1e-6
    assert "parity passed" in out
    accuracy = float(re.search(r"Test accuracy after \d+ epochs: ([0-9.]+)%", out).group(1))
    assert accuracy >= 95.0
    assert "Wrote 3 pictures to" in out
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "decision_boundary.png",
        "digits.png",
        "loss_curve.png",
    ]


def test_bench_sgd_quick_checks_every_answer_and_judges_the_targets():
    # The script exits non-zero when an implementation disagrees with ferrinet's weights.
    out = run("benches/bench_sgd.py", "--quick")
    assert "total" in out
    # every case's answer check covers backward over rows (b) and with X[k] (b'), the C
    # yardstick (e) and gradients (f), and passes
    impls = ("(b) ferrinet net.backward", "(b') the same, X[k]", "(e) C yardstick")
    for impl in impls + ("(f) ferrinet net.gradients",):
        verdicts = re.findall(re.escape(impl) + r".*steps .*max rel diff +\S+ +(\S+)", out)
        assert len(verdicts) == 5, (impl, verdicts)
        assert set(verdicts) <= {"ok", "bit-identical"}, verdicts
    # the #15 targets: per-round values against the yardstick; the verdict (median of the
    # rounds) agrees with the rounds that met the target (3 rounds: PASS iff >= 2 met)
    lines = re.findall(
        r"^  ((?:train/sample|backward/call) \S+ float(?:64|32)) .*? ([0-9.]+)(x| µs) +"
        r"([0-3])/3  target <= ([0-9.]+)(?:x| µs)  (PASS|MISS)",
        out,
        re.M,
    )
    assert sorted(what for what, *_ in lines) == sorted(
        f"{kind} {net} {dtype}"
        for kind in ("train/sample", "backward/call")
        for net in ("2-8-1", "784-128-10")
        for dtype in ("float64", "float32")
    ), out[-3000:]
    for what, value, _unit, met, limit, verdict in lines:
        assert (float(value) <= float(limit)) == (verdict == "PASS"), what
        assert (int(met) >= 2) == (verdict == "PASS"), what
    assert re.search(r"\d of 8 targets met", out)


def test_bench_sgd_says_clearly_when_there_is_no_c_compiler():
    env = dict(os.environ, CC="no-such-compiler-ferrinet")
    result = subprocess.run(
        [sys.executable, "benches/bench_sgd.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 1
    assert "needs a C compiler: 'no-such-compiler-ferrinet' was not found" in result.stdout


def test_bench_epochs_quick_checks_answers_and_reports_fit_defaults_and_loss_rows():
    out = run("benches/bench_epochs.py", "--quick", "--only", "1,5,8,9")
    assert "answer check" in out
    # fit trains what train_epoch trains: checked for every config, both dtypes, and digits
    fit_checks = re.findall(
        r"^  fit +(float64|float32) .*max rel diff +\S+  (ok|MISMATCH)", out, re.M
    )
    assert len(fit_checks) == 7 and {v for _, v in fit_checks} == {"ok"}, fit_checks
    assert re.search(
        r"its training accuracy as fit reports it .*float64 0\.\d+, float32 0\.\d+", out
    )
    # The summary's columns: ratio of medians, of minimums, median of the per-round ratios and
    # the rounds that met the target. --quick times one round, so the three ratios are one,
    # and the verdict (the per-round median) agrees with the round's count.
    lines = re.findall(
        r"^  (\d\. .+?)\s+([0-9.]+)x\s+([0-9.]+)x\s+([0-9.]+)x\s+([01])/1\s+"
        r"target (?:<=|>=) ([0-9.]+)x\s+(PASS|MISS)",
        out,
        re.M,
    )
    names = [what for what, *_ in lines]
    expected = [
        f"1. {kind} {dtype}"
        for dtype in ("float64", "float32")
        for kind in ("ferrinet/NumPy", "fit/train_epoch", "fit/NumPy")
    ]
    expected += ["5. digits ferrinet/NumPy float64", "5. digits fit/NumPy float64"]
    expected += [
        f"8. default fit/NumPy b{bs} {dtype}"
        for bs in (64, 256)
        for dtype in ("float64", "float32")
    ]
    expected += [
        f"9. {what}/predict {shape} {dtype}"
        for shape in ("6000x784", "20000x64")
        for dtype in ("float64", "float32")
        for what in ("compute_loss", "evaluate")
    ]
    assert names == expected, out[-3000:]
    targets = {
        "1. ferrinet/NumPy": "0.80",
        "1. fit/train_epoch": "1.05",
        "1. fit/NumPy": "0.75",
        "5. digits": "0.30",
        "8.": "0.75",
        "9. compute_loss": "1.10",
        "9. evaluate": "1.15",
    }
    for what, medians, minimums, rounds, met, target, verdict in lines:
        assert medians == minimums == rounds, what
        assert (met == "1") == (verdict == "PASS"), what
        assert target == next(t for k, t in targets.items() if what.startswith(k)), what
    for row in ("ferrinet fit float64", "NumPy float64, default: ", "evaluate float32"):
        assert row in out, row
