"""Shared test set-up."""
from types import SimpleNamespace

import pytest
import torch

from gradflow.data import load_fashion_mnist


@pytest.fixture(autouse=True)
def _same_random_state_in_every_test():
    # A model built before a test seeds anything takes its weights from torch's global generator;
    # seeding here makes each test's numbers independent of which tests ran before it.
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def fmnist():
    """2,048 normalised FashionMNIST training images, flat (N, 784), and their labels (a module may
    define its own, larger one)."""
    d = load_fashion_mnist()
    return SimpleNamespace(x=d.train_x[:2048], y=d.train_y[:2048])


def one_clear_line(capsys, *words) -> str:
    """stderr is one `gradflow: error:` line holding ``words``; no traceback anywhere."""
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gradflow: error:"), err
    assert "Traceback" not in out + err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def practitioner_loop(model, data, optimizer, steps: int, batch: int = 128, every=None, shuffle: bool = False):
    """A user's own loop inside a Recorder: zero_grad, cross-entropy, backward, step, rec.step(loss=...);
    batches in order through ``data`` (x, y), or drawn at random (seeded) with ``shuffle``."""
    import torch.nn.functional as F

    from gradflow import Recorder
    g = torch.Generator().manual_seed(0)
    with Recorder(model, every=every) as rec:
        for s in range(steps):
            if shuffle:
                idx = torch.randint(len(data.y), (batch,), generator=g)
            else:
                i = (s * batch) % len(data.y)
                idx = slice(i, i + batch)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data.x[idx]), data.y[idx])
            loss.backward()
            optimizer.step()
            rec.step(loss=loss)
    return rec


def alarms(findings):
    """The findings a user is warned by: warnings and errors (info notes are not alarms)."""
    return [f for f in findings if f.severity in ("warning", "error")]
