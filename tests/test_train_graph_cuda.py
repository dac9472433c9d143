"""The training step captured as a CUDA graph gives the eager step's numbers, on a real GPU.

Runs only where CUDA is available (CI has none; the CPU half of the graph path is in
test_train_step.py). What it checks could fail: a captured step that read a stale buffer, lost the
optimizer state or replayed a recorded step would change the metrics or the recording."""
import pytest
import torch

from gradflow import train
from gradflow.config import make_config
from gradflow.data import synthetic

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CUDA graphs)")


def _fit(graph, record, **settings):
    data = synthetic(n_train=2048, n_val=256, n_test=256)
    configs = [make_config(a, "smoke", seeds=(0, 1, 2), max_epochs=3, patience=5, record=record, **settings)
               for a in ("relu", "tanh")]
    return train.fit(configs, data, device="cuda", progress=False, graph=graph)


@pytest.mark.parametrize("record", ["off", "default"])
def test_graph_and_eager_give_the_same_numbers(record):
    eager, graphed = _fit("off", record), _fit("on", record)
    assert eager.step == "eager" and graphed.step.startswith("cuda graph")
    assert "0 of" not in graphed.step  # some steps really were replayed
    for a, b in zip(eager.members, graphed.members):
        keys = ("train_loss", "train_acc", "val_loss", "val_acc")
        assert [[r[k] for k in keys] for r in a.rows] == [[r[k] for k in keys] for r in b.rows]
        assert a.result["test_acc"] == b.result["test_acc"]
    if record == "default":
        te, tg = eager.recording.tables(), graphed.recording.tables()
        assert te["scalars"].drop(columns=["value"]).equals(tg["scalars"].drop(columns=["value"]))
        assert torch.allclose(torch.tensor(te["scalars"]["value"].to_numpy()),
                              torch.tensor(tg["scalars"]["value"].to_numpy()), equal_nan=True)


def test_graph_keeps_the_first_nonfinite_step_exact():
    """lr 50 blows the tanh net up between recorded steps: replayed steps must find the same first
    non-finite step and layer as the eager, hooked steps do."""
    eager, graphed = _fit("off", "default", lr=50.0), _fit("on", "default", lr=50.0)
    ne, ng = eager.recording.tables()["nonfinite"], graphed.recording.tables()["nonfinite"]
    assert len(ne) and ne.reset_index(drop=True).equals(ng.reset_index(drop=True))


def test_tf32_and_bf16_train_on_the_gpu():
    for precision in ("tf32", "bf16"):
        fit = _fit("auto", "off", precision=precision)
        assert all(0 < r["train_loss"] < 10 for m in fit.members for r in m.rows)
        assert precision in fit.precision
