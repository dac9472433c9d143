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
