"""Shared test set-up."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _same_random_state_in_every_test():
    # A model built before a test seeds anything takes its weights from torch's global generator;
    # seeding here makes each test's numbers independent of which tests ran before it.
    torch.manual_seed(0)
    yield
