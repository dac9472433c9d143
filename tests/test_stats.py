"""gradflow.stats against slow, obvious references (numpy.histogram, explicit Python loops)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradflow import stats


def _values(members=3, n=400, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(members, n, generator=g) * scale
    x[0, :5] = torch.tensor([float("nan"), float("inf"), -float("inf"), 100.0, -100.0]) * scale  # tails, non-finite
    x[1, :3] = 0.0
    return x


def _reference_histogram(row: np.ndarray, edges: np.ndarray, log=False) -> np.ndarray:
    """Explicit loop over values, in the documented layout."""
    n = len(edges)
    counts = np.zeros(n + 2, dtype=np.int64)
    for v in row:
        if not math.isfinite(v):
            counts[n + 1] += 1
            continue
        if log and v == 0:
            counts[0] += 1
            continue
        t = math.log10(abs(v)) if log else v
        if t < edges[0]:
            counts[0] += 1
        elif t >= edges[-1]:
            counts[n] += 1
        else:
            i = 1
            while not (edges[i - 1] <= t < edges[i]):
                i += 1
            counts[i] += 1
    return counts


@pytest.mark.parametrize("kind,scale_of_data", [("act", 2.0), ("grad", 0.02)])
def test_linear_histogram_matches_numpy_and_loop(kind, scale_of_data):
    x = _values(scale=scale_of_data)
    edges = stats.histogram_edges(kind, "linear")
    counts = stats.histogram(x, edges, "linear").numpy()
    assert counts.shape == (3, len(edges) + 2)
    edges32 = edges.astype(np.float32).astype(np.float64)  # the edges as compared in float32
    for m in range(3):
        row = x[m].numpy().astype(np.float64)
        np.testing.assert_array_equal(counts[m], _reference_histogram(row, edges32))
        finite = row[np.isfinite(row)]
        inside = finite[(finite >= edges32[0]) & (finite < edges32[-1])]
        np.testing.assert_array_equal(counts[m, 1:-2], np.histogram(inside, bins=edges32)[0])
        assert counts[m].sum() == row.size  # nothing is lost
    assert counts[0, -1] == 3  # nan, +inf, -inf


def test_log10_histogram_matches_loop_and_counts_zeros_as_underflow():
    x = _values(scale=1e-3)
    edges = stats.LOG10_EDGES
    counts = stats.histogram(x, edges, "log10").numpy()
    for m in range(3):
        row = x[m].numpy().astype(np.float64)
        np.testing.assert_array_equal(counts[m], _reference_histogram(row, edges.astype(np.float32).astype(np.float64), log=True))
    assert counts[1, 0] >= 3  # the three exact zeros


def test_histogram_per_member_equals_separate():
    x = torch.randn(4, 7, 9)
    together = stats.histogram(x, stats.ACT_LINEAR_EDGES)
    for m in range(4):
        alone = stats.histogram(x[m:m + 1], stats.ACT_LINEAR_EDGES)
        assert torch.equal(together[m], alone[0])


def test_histograms_through_a_reused_workspace_match_the_loop():
    """The recorder's scratch buffers are reused by tensors of other sizes and dtypes: every call
    must still give the reference counts (a stale buffer would leak the previous tensor's bins)."""
    ws = stats.Workspace()
    for scale_of_data, members, dtype in [(2.0, 3, torch.float32), (0.02, 1, torch.float64), (1e-3, 3, torch.float32)]:
        x = _values(scale=scale_of_data).to(dtype)[:members]
        for kind in ("act", "grad"):
            got = stats.histograms(x, kind, ws)
            for scale in ("linear", "log10"):
                edges = stats.histogram_edges(kind, scale)
                edges = edges.astype(np.float32).astype(np.float64) if dtype == torch.float32 else edges
                for m in range(members):
                    row = x[m].numpy().astype(np.float64)
                    np.testing.assert_array_equal(got[scale][m].numpy(),
                                                  _reference_histogram(row, edges, log=scale == "log10"))
    assert ws.out("values", torch.zeros(1, device="meta")) is None  # off the CPU: the allocator's own memory


def test_nonfinite_count_and_saturation_through_a_reused_workspace_match_plain_torch():
    """Both write into the workspace's scratch buffers, which held larger tensors before: the counts
    and fractions must be those of plain torch on the tensor itself, for float32, float64 and bf16."""
    ws = stats.Workspace()
    stats.histograms(torch.randn(2, 5000), "grad", ws)  # leave larger, stale buffers behind
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.randn(3, 40, 7, generator=g).to(dtype)
        x[0, 1, 2], x[2, 0, 0], x[2, 5, 1] = float("nan"), float("inf"), -float("inf")
        want = (~torch.isfinite(x)).reshape(3, -1).sum(dim=1).float()
        assert torch.equal(stats.nonfinite_count(x, ws), want) and torch.equal(stats.nonfinite_count(x), want)
        peak = torch.tensor([1.0, 2.0, 0.5])
        frac = (x.float().abs() < stats.SATURATION_DERIV_FRACTION * peak.reshape(-1, 1, 1)).reshape(3, -1).float().mean(1)
        torch.testing.assert_close(stats.saturation(x, peak, workspace=ws), frac)
        torch.testing.assert_close(stats.saturation(x, peak), frac)
    ints, cplx = torch.arange(12).reshape(2, 6), torch.tensor([[1 + 1j, complex("nan+1j")], [complex("1+infj"), 0j]])
    assert stats.nonfinite_count(ints, ws).tolist() == [0.0, 0.0]
    assert stats.nonfinite_count(cplx, ws).tolist() == [1.0, 1.0]


def test_histogram_rejects_unknown_scale_and_kind():
    with pytest.raises(ValueError, match="scale"):
        stats.histogram(torch.zeros(1, 3), stats.LOG10_EDGES, "log2")
    with pytest.raises(ValueError, match="accepted kinds"):
        stats.histogram_edges("weights", "linear")


def test_edges_are_fixed_sorted_and_shared():
    for e in stats.HIST_EDGES.values():
        assert np.all(np.diff(e) > 0)
    assert stats.histogram_edges("act", "log10") is stats.histogram_edges("grad", "log10")
    assert len(stats.bin_centers(stats.LOG10_EDGES)) == len(stats.LOG10_EDGES) - 1


def test_moments_and_ratios_match_numpy():
    g = torch.Generator().manual_seed(1)
    grad, w = torch.randn(3, 20, 30, generator=g) * 1e-3, torch.randn(3, 20, 30, generator=g) * 0.05
    w_new = w - 0.1 * grad
    for m in range(3):
        gn, wn, wn2 = grad[m].double().numpy(), w[m].double().numpy(), w_new[m].double().numpy()
        assert stats.mean(grad)[m].item() == pytest.approx(gn.mean(), rel=1e-5, abs=1e-12)
        assert stats.std(grad)[m].item() == pytest.approx(gn.std(), rel=1e-5)
        assert stats.norm(grad)[m].item() == pytest.approx(math.sqrt((gn ** 2).sum()), rel=1e-5)
        assert stats.grad_data_ratio(grad, w)[m].item() == pytest.approx(gn.std() / wn.std(), rel=1e-5)
        assert stats.update_data_ratio(w_new, w)[m].item() == pytest.approx((wn2 - wn).std() / wn.std(), rel=1e-3)
    zero = torch.zeros(1, 5)
    assert math.isnan(stats.grad_data_ratio(torch.ones(1, 5), zero).item())  # zero-initialised weight: no ratio
    assert stats.std(torch.ones(1, 1)).item() == 0.0  # one element: 0, not NaN


def test_nonfinite_count_matches_loop():
    x = _values()
    counts = stats.nonfinite_count(x)
    for m in range(3):
        assert counts[m].item() == sum(1 for v in x[m].tolist() if not math.isfinite(v))


def test_derivative_matches_closed_forms():
    x = torch.linspace(-6, 6, 101)
    assert torch.allclose(stats.derivative(torch.tanh, x), 1 - torch.tanh(x) ** 2, atol=1e-6)
    assert torch.allclose(stats.derivative(torch.sigmoid, x), torch.sigmoid(x) * (1 - torch.sigmoid(x)), atol=1e-6)
    def elu(t):
        return torch.where(t > 0, t, torch.exp(t) - 1)
    ref = torch.where(x > 0, torch.ones_like(x), torch.exp(x))
    assert torch.allclose(stats.derivative(elu, x), ref, atol=1e-6)
    relu_inplace = torch.nn.ReLU(inplace=True)
    assert torch.equal(stats.derivative(relu_inplace, x), (x > 0).float())
    assert torch.equal(x, torch.linspace(-6, 6, 101))  # the caller's tensor is untouched


@pytest.mark.parametrize("fn,peak,flat", [(torch.sigmoid, 0.25, True), (torch.tanh, 1.0, True), (F.relu, 1.0, False),
                                          (F.silu, 1.0998, False), (F.gelu, 1.1289, False)])
def test_probe_derivative_finds_maximum_and_flat_ends(fn, peak, flat):
    got, flat_ends = stats.probe_derivative(fn, 1, False)
    assert got.item() == pytest.approx(peak, rel=1e-3)
    assert bool(flat_ends.item()) is flat


def test_probe_derivative_stacked_members_get_their_own_activation():
    def stacked(x):  # member 0 tanh, member 1 sigmoid, member 2 relu, on (M, B, F)
        return torch.stack([torch.tanh(x[0]), torch.sigmoid(x[1]), F.relu(x[2])])
    got, flat = stats.probe_derivative(stacked, 3, True)
    assert got.tolist() == pytest.approx([1.0, 0.25, 1.0], rel=1e-3)
    assert flat.tolist() == [True, True, False]


def test_saturation_equals_tanh_097_rule_by_loop():
    x = torch.randn(2, 64, 50) * 2.5
    d = stats.derivative(torch.tanh, x)
    got = stats.saturation(d, torch.ones(2))
    for m in range(2):
        y = torch.tanh(x[m]).flatten().tolist()
        flat = sum(1 for v in y if 1 - v * v < stats.SATURATION_DERIV_FRACTION)
        assert got[m].item() == pytest.approx(flat / len(y))
        # the classic |tanh| > 0.97 rule (threshold sqrt(1 - 0.06) = 0.9695) agrees to within its boundary
        classic = sum(1 for v in y if abs(v) > 0.97) / len(y)
        assert abs(got[m].item() - classic) < 0.01


def test_alive_units_match_loops():
    torch.manual_seed(0)
    pre = torch.randn(1, 32, 6)
    pre[0, :, 1] = -torch.rand(32) - 0.1  # ReLU never fires: dead (output 0, derivative 0)
    pre[0, :, 3] = 40 + torch.rand(32)  # saturated for tanh on every example
    for fn, peak, expect_dead in [(F.relu, 1.0, {1}), (torch.tanh, 1.0, {3})]:
        out, d = fn(pre), stats.derivative(fn, pre)
        passes, carries = stats.alive_units(out, d, torch.tensor([peak]))
        dead = set(torch.nonzero(~(passes & carries)[0]).flatten().tolist())
        ref = set()
        for u in range(6):
            grads = [abs(d[0, b, u].item()) for b in range(32)]
            outs = [abs(out[0, b, u].item()) for b in range(32)]
            if all(v <= stats.DEAD_DERIV_FRACTION * peak for v in grads) or all(v <= stats.DEAD_OUTPUT_TOL for v in outs):
                ref.add(u)
        assert dead == ref == expect_dead


def test_alive_units_take_a_nan_as_no_evidence_from_the_batch():
    """A NaN in a unit's column makes its max |x| NaN, and every comparison with NaN is False: the
    batch shows nothing about that unit (before, its finite examples still counted). Units with
    finite columns keep the plain rule."""
    out = torch.tensor([[[1.0, 1.0], [float("nan"), 2.0]]])  # (M=1, B=2, U=2): unit 0 holds a NaN
    passes, carries = stats.alive_units(out, out.clone(), torch.tensor([1.0]))
    assert passes.tolist() == [[False, True]] and carries.tolist() == [[False, True]]
    assert stats.largest_magnitude(torch.tensor([[-3.0, 2.0]])).tolist() == [3.0]


def test_unit_spread_tells_copies_from_distinct_units():
    torch.manual_seed(0)
    random = torch.empty(2, 64, 32).uniform_(-1, 1)  # two members, 64 units of 32 inputs
    copies = torch.randn(1, 1, 32).expand(2, 64, 32)  # every unit the same row
    spread = stats.unit_spread(random)
    assert spread.shape == (2,) and (spread > 0.5).all()  # a uniform draw: std/mean|w| = (1/sqrt(3))/(1/2)
    assert torch.equal(stats.unit_spread(copies), torch.zeros(2))
    assert torch.equal(stats.unit_spread(torch.zeros(1, 8, 4)), torch.zeros(1))  # all zero: copies too
    blown = random.clone()
    blown[1, 3, 0] = float("nan")
    assert stats.unit_spread(blown)[1].isnan() and stats.unit_spread(blown)[0] > 0.5  # NaN weights: no verdict
    conv = torch.randn(1, 16, 3, 5, 5)  # a convolution's output channels are its units
    assert stats.unit_spread(conv).item() > 0.5
