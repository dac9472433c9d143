"""The benchmark scripts run (tiny sizes): the GPU suite runs here on the CPU so it cannot rot
between the rare runs on a GPU machine. Their timings are not checked: benchmarks, not tests."""
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script, *args):
    out = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_training_benchmark_runs_every_code_path_in_smoke_mode():
    out = _run("bench_training.py", "--smoke", "--gpu-suite", "--repeats", "1", "--epochs", "1", "--device", "cpu")
    assert "SMOKE RUN" in out
    for pattern in (r"tutorial DataLoader pipeline: +[\d.]+ s/epoch", r"gradflow resident tensors: +[\d.]+ s/epoch",
                    r"plain PyTorch, resident tensors: +[\d.]+ s/epoch", r"speed-up: [\d.]+x", r"ceiling: +[\d.]+x",
                    r"gradflow, recording off: +[\d.]+ s/epoch", r"gradflow train, whole command: +[\d.]+ s/epoch",
                    r"gradflow vs the plain loop, one model's epoch with validation: recording default [\d.]+x",
                    r"graph side: CPU stand-in for CUDA graphs",
                    *(rf"\b{n} models: eager +[\d.]+ ms, graph +[\d.]+ ms per model-epoch" for n in (1, 6, 12, 24)),
                    r"12 models, graph, tf32: [\d.]+ ms per model-epoch",
                    r"12 models as 6 torch.func vmaps of 2 seeds \(SeedBatch\): [\d.]+ s/epoch, [\d.]+x",
                    r"tutorial preset, 6 activations x 2 seeds, recording off: [\d.]+ s wall \(2 epochs",
                    r"tutorial preset, 6 activations x 2 seeds, recording default: [\d.]+ s wall \(2 epochs",
                    r"GPU busy, 12 models, one epoch, eager: n/a", r"GPU busy, 12 models, one epoch, graph: n/a"):
        assert re.search(pattern, out), (pattern, out)


def test_recorder_benchmark_runs():
    out = _run("bench_recorder.py", "--synthetic", "--steps", "6", "--block", "2")
    assert re.search(r"recorder at default schedule vs off: [\d.]+x \(target <= 1.05x: (met|missed)\); "
                     r"of its -?[\d.]+ %, the every-step NaN/Inf check is about -?[\d.]+ %", out), out
    assert re.search(r"default, no every-step check: +[\d.]+ ms/step", out), out
    assert re.search(r"recording every step vs off: +[\d.]+x", out), out


def test_cli_benchmark_runs():
    out = _run("bench_cli.py", "--repeats", "1")
    assert re.search(r"gradflow --help +[\d.]+ s", out) and re.search(r"slowest gradflow answer: [\d.]+ s", out), out
