"""Arithmetic precision of a run, an explicit choice: fp32 (default), tf32 or bf16.

- ``fp32``: float32 everywhere, the tutorial's numbers.
- ``tf32``: float32 tensors, but CUDA matmuls may use TensorFloat-32 (10-bit mantissa inputs,
  float32 accumulation). Nothing changes on a CPU: torch's CPU matmuls stay float32 here, and
  the run's description says so rather than pretending otherwise.
- ``bf16``: the forward pass (and so the backward's matmuls) under ``torch.autocast`` with
  bfloat16, on CUDA and on the CPU alike; weights, optimizer state and the loss stay float32.

The setting is part of a run's config (a tf32 run is another run than an fp32 one), but the
default is left out of the config's hash, so the names of every fp32 run stay what they were.
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT_PRECISION = "fp32"


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    return precision


def describe(precision: str, device) -> str:
    """One line for the run's description: what the setting did on this device."""
    device = torch.device(device)
    if precision == "fp32":
        return "fp32: float32 everywhere"
    if precision == "tf32":
        if device.type == "cuda":
            return "tf32: float32 tensors, CUDA matmuls in TensorFloat-32"
        return f"tf32 asked for, no effect on {device.type}: TensorFloat-32 is a CUDA matmul mode; float32 everywhere"
    return (f"bf16: forward pass under torch.autocast(bfloat16) on {device.type}; "
            "weights, optimizer state and loss in float32")


@contextlib.contextmanager
def matmul_precision(precision: str, device):
    """For the whole fit: TF32 matmuls on CUDA when asked, restored afterwards (a global switch)."""
    device = torch.device(device)
    if check(precision) != "tf32" or device.type != "cuda":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # "high": TF32 allowed in float32 matmuls
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def autocast(precision: str, device):
    """Around a forward pass: bfloat16 autocast for bf16, nothing otherwise."""
    device = torch.device(device)
    if check(precision) == "bf16":
        # no cast cache: a CUDA graph must not capture casts cached outside it (each weight is cast
        # once per forward anyway, so the cache saves nothing here)
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
