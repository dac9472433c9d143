"""The README's Python examples run as written: a reader copies them first, so an API change that
breaks one fails here. Each block gets the names it leaves to the reader (a model, a loader, data);
the training example runs the smoke preset instead of the quick one, to stay fast."""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, x):
        return self.layers(x)


def _reader_names() -> dict:
    """What the examples assume the reader already has: a model, its optimizer and loss, a loader."""
    torch.manual_seed(0)
    x, y = torch.randn(256, 20), torch.randint(0, 4, (256,))
    model = MyNet()
    return {"torch": torch, "model": model, "MyNet": MyNet, "device": "cpu",
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.05), "loss_fn": nn.CrossEntropyLoss(),
            "loader": [(x[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)], "x_train": x,
            "x_test": x[:64], "y_test": y[:64]}


def test_the_readme_has_the_examples_this_file_runs():
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost a Python example: update this test with it"
    assert "gradflow.Recorder(model)" in blocks[0] and "SeedBatch" in blocks[1] and "train.compare" in blocks[2]


def test_the_recorder_example_records_diagnoses_and_saves(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    names = _reader_names()
    exec(python_blocks()[0], names)  # noqa: S102 -- the README's own text
    assert names["rec"].steps == 4 and (tmp_path / "my_run" / "recording").is_dir()
    from gradflow.recording import load_recording
    assert not load_recording(tmp_path / "my_run" / "recording").tables()["scalars"].empty


def test_the_seed_batch_example_trains_five_members():
    names = _reader_names()
    exec(python_blocks()[1], names)  # noqa: S102
    assert names["acc"].shape == (5,) and names["n"] == 5
    assert isinstance(names["model_2"], MyNet)


def test_the_training_example_returns_runs_to_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = python_blocks()[2]
    assert 'preset="quick"' in code
    names = {}
    exec(code.replace('preset="quick"', 'preset="smoke"'), names)  # noqa: S102
    runs = names["runs"]
    assert [r.activation for r in runs] == ["sigmoid", "relu"]
    assert {"train_loss", "val_acc"} <= set(runs[0].metrics.columns) and len(runs[0].results) == 3
    assert isinstance(names["net"], nn.Module)


def test_the_readme_names_runs_that_make_report_trains():
    """The README's `gradflow report --page ... -p run_a NAME` lines name runs by their config hash:
    they must be the runs `make report` stores (the quick comparison and the sweep's kaiming column)."""
    from gradflow.config import make_config
    text = README.read_text()
    for act, init in (("sigmoid", "default"), ("sigmoid", "kaiming"), ("relu", "kaiming")):
        assert make_config(act, init=init).run_name() in text, (act, init)
