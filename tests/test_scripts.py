"""The scripts a user runs first: the demo (`make demo`) and the benchmarks' smoke runs. They
must run to the end and say what the README says they show."""

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


def test_benchmarks_quick_runs_check_their_answers():
    # Each script exits non-zero when an implementation disagrees with ferrinet's weights.
    assert "total" in run("benches/bench_sgd.py", "--quick")
    out = run("benches/bench_epochs.py", "--quick", "--only", "5")
    assert "answer check" in out
    # The summary's columns: ratio of medians, of minimums, median of the per-round ratios and
    # the rounds that met the target. --quick times one round, so the three ratios are one.
    line = re.search(
        r"5\. digits ferrinet/NumPy float64\s+([0-9.]+)x\s+([0-9.]+)x\s+([0-9.]+)x"
        r"\s+([01])/1\s+target <= 0\.30x\s+(PASS|MISS)",
        out,
    )
    assert line, out[-1500:]
    medians, minimums, rounds, met, verdict = line.groups()
    assert medians == minimums == rounds
    assert (met == "1") == (verdict == "PASS")
