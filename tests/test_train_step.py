"""The training step's eager/graph dispatch, the in-graph NaN/Inf check, device-side data orders
and the precision setting -- everything of the GPU path that a CPU can run. The CUDA capture
itself is compared with eager in tests/test_train_graph_cuda.py, on machines with a GPU."""
import copy

import pytest
import torch
import torch.optim.optimizer as optimizer_module

from gradflow import BaseNetwork, train
from gradflow.config import RunConfig, make_config
from gradflow.data import synthetic
from gradflow.data_order import MemberOrders
from gradflow.graph_sentinel import SentinelFeed
from gradflow.quantities import ACTIVATION_LOC
from gradflow.record import Recorder
from gradflow.stacked import StackedMLP
from gradflow.train_step import WARMUP_STEPS, InlineGraphs, TrainStep, capture_blocker, use_graph


def _setup(members=3, seed=0):
    torch.manual_seed(seed)
    nets = []
    for s in range(members):
        torch.manual_seed(s)
        nets.append(BaseNetwork("tanh", input_size=784, hidden_sizes=[32, 16]))
    model = StackedMLP(nets)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, opt


def _train(model, opt, data, graph, steps=14, schedule=(0, 1, 9), graphs=None):
    rec = Recorder(model, schedule=lambda s: s in schedule, member_seeds=list(range(model.members)))
    graphs = graphs or InlineGraphs()
    step = TrainStep(model, opt, data.train_x, data.train_y, 32, graph=graph, recorder=rec, graphs=graphs)
    orders = MemberOrders(range(model.members), "cpu")
    perms = orders.next_epoch(len(data.train_y))
    with rec:
        rec.epoch = 1
        step.new_epoch()
        for s in range(steps):
            losses = step.run(perms[:, s * 32:(s + 1) * 32], bool(rec.schedule(rec.steps)))
            rec.step(loss=losses)
    return step, graphs, rec


def test_graph_dispatch_replays_unrecorded_steps_and_gives_the_eager_numbers():
    data = synthetic(n_train=512, n_val=64, n_test=64)
    model, opt = _setup()
    model_g, opt_g = copy.deepcopy(model), None
    opt_g = torch.optim.SGD(model_g.parameters(), lr=0.05, momentum=0.9)
    eager, _, rec_e = _train(model, opt, data, graph=False)
    graphed, graphs, rec_g = _train(model_g, opt_g, data, graph=True)

    # recorded steps 0, 1, 9 eager; then warm-up steps until WARMUP_STEPS eager steps; one capture
    assert eager.eager_steps == 14 and eager.replayed_steps == 0
    assert graphs.captures == 1
    assert graphs.warm_ups == WARMUP_STEPS - 2  # steps 2 (and on), after the two recorded ones
    assert graphed.replayed_steps == 14 - graphed.eager_steps and graphed.replayed_steps >= 9
    for (k, a), b in zip(model.state_dict().items(), model_g.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(eager.loss_sum, graphed.loss_sum) and torch.equal(eager.correct, graphed.correct)
    loss_e = rec_e.tables()["scalars"].query("quantity == 'loss'").reset_index(drop=True)
    loss_g = rec_g.tables()["scalars"].query("quantity == 'loss'").reset_index(drop=True)
    assert len(loss_e) == 14 * 3 and loss_e.equals(loss_g)  # a loss row per step and member, as eager


def test_sentinel_feed_alone_finds_the_first_nonfinite_place_the_recorder_finds():
    """The feed taps what a replayed graph computes, without the recorder's hooks: the first
    non-finite step, layer and place per member must be those of the recorder's own check."""
    data = synthetic(n_train=256, n_val=64, n_test=64)
    model, opt = _setup(members=2)
    x, y = data.train_x[:64], data.train_y[:64]

    def poison(m):  # member 1's second linear layer starts producing NaN at step 2
        with torch.no_grad():
            m.layers[2].weight[1, 0, 0] = float("nan")

    logs = []
    for use_feed in (False, True):
        m, o = copy.deepcopy(model), torch.optim.SGD(model.parameters(), lr=0.0)
        o = torch.optim.SGD(m.parameters(), lr=0.0)  # lr 0: the poisoned weight stays where it is
        rec = Recorder(m, schedule=lambda s: False)
        step = TrainStep(m, o, x.expand(2, *x.shape).reshape(-1, x.shape[-1]), y.repeat(2), 32, recorder=rec)
        feed = SentinelFeed(rec, "cpu")
        idx = torch.arange(64).view(2, 32)
        if use_feed:  # no recorder hooks at all: only the feed looks, as in a replayed graph
            for s in range(4):
                if s == 2:
                    poison(m)
                feed.before_replay(s, 1)
                with feed.taps() as tapped:
                    step.idx.copy_(idx)
                    losses = step.body()
                feed.check(tapped, losses)
            rec.sentinel.flush()
            logs.append(dict(rec.sentinel.log.first))
        else:
            with rec:
                rec.epoch = 1
                for s in range(4):
                    if s == 2:
                        poison(m)
                    rec.step(loss=step.run(idx))
                rec.tables()
            logs.append(dict(rec.sentinel.log.first))
    recorder_log, feed_log = logs
    assert recorder_log and recorder_log == feed_log
    assert min(v[0] for v in feed_log.values()) == 2  # first seen at step 2, when the weight was poisoned
    assert feed_log[(1, "layers.3", ACTIVATION_LOC)][:2] == (2, 1)  # the output after the poisoned Linear
    assert all(k[0] != 0 for k in feed_log)  # member 0 stays finite


def test_capture_switch():
    model, opt = _setup(members=2)
    reason = capture_blocker(model, opt, "cpu")
    assert reason and "CUDA" in reason
    assert use_graph("auto", reason) is False and use_graph("off", None) is False and use_graph("auto", None)
    with pytest.raises(ValueError, match="cannot be captured as a CUDA graph: CUDA graphs need a CUDA device"):
        use_graph("on", reason)
    with pytest.raises(ValueError, match="unknown graph mode 'sometimes'; accepted: auto, on, off"):
        use_graph("sometimes", None)
    adam = torch.optim.Adam(model.parameters())
    assert "capturable" in capture_blocker(model, adam, "cuda")
    assert capture_blocker(model, opt, "cuda") is None
    assert capture_blocker(model, opt, "cuda", Recorder(model)) is None
    torch.manual_seed(0)
    dropout = StackedMLP([BaseNetwork("relu", hidden_sizes=[8], dropout=0.2)])
    assert "dropout" in capture_blocker(dropout, torch.optim.SGD(dropout.parameters(), lr=0.1), "cuda")


def test_member_orders_host_is_todays_order_and_device_orders_are_per_member_and_reproducible():
    seeds = [42, 7, 3]
    host = MemberOrders(seeds, "cpu", method="host")
    legacy = [torch.Generator().manual_seed(s) for s in seeds]  # what every CPU run used
    for _ in range(2):
        assert torch.equal(host.next_epoch(1000), torch.stack([torch.randperm(1000, generator=g) for g in legacy]))
    assert MemberOrders(seeds, "cpu").method == "host"  # auto on the CPU: CPU numbers unchanged

    dev = MemberOrders(seeds, "cpu", method="device")  # the CUDA path's arithmetic, run on the CPU
    first, second = dev.next_epoch(1000), dev.next_epoch(1000)
    for p in (first, second):
        assert torch.equal(p.sort(dim=1).values, torch.arange(1000).expand(3, -1))  # permutations
    assert not torch.equal(first, second)  # a new order each epoch
    again = MemberOrders(seeds, "cpu", method="device")
    assert torch.equal(again.next_epoch(1000), first)  # reproducible from the seeds
    alone = MemberOrders([7], "cpu", method="device").next_epoch(1000)
    assert torch.equal(alone[0], first[1])  # a member's order depends on its own seed only
    with pytest.raises(ValueError, match="unknown data order method 'gpu'; accepted: auto, host, device"):
        MemberOrders(seeds, "cpu", method="gpu")


def test_precision_setting_keeps_fp32_names_and_bf16_trains_on_the_cpu(tmp_path):
    fp32 = make_config("relu", "smoke")
    assert fp32.run_name() == "relu-smoke-2fcc01aeff"  # the name this run had before the setting existed
    assert "precision" not in fp32.to_dict() and RunConfig.from_dict(fp32.to_dict()) == fp32
    bf16 = make_config("relu", "smoke", precision="bf16")
    assert bf16.to_dict()["precision"] == "bf16" and bf16.run_name() != fp32.run_name()
    assert bf16.batch_key() != fp32.batch_key()  # never trained in one batch with fp32 members
    with pytest.raises(ValueError, match="unknown precision 'fp16'; accepted: fp32, tf32, bf16"):
        make_config("relu", "smoke", precision="fp16")

    data = synthetic(n_train=512, n_val=128, n_test=128)
    runs = {p: train.fit([make_config("relu", "smoke", precision=p, record="off")], data, "cpu", progress=False)
            for p in ("fp32", "tf32", "bf16")}
    rows = {p: [r["train_loss"] for m in f.members for r in m.rows] for p, f in runs.items()}
    assert rows["tf32"] == rows["fp32"]  # TF32 is a CUDA mode: nothing changes on the CPU
    assert "no effect on cpu" in runs["tf32"].precision
    assert rows["bf16"] != rows["fp32"] and all(0 < v < 10 for v in rows["bf16"])  # autocast took effect
    assert runs["bf16"].model.layers[0].weight.dtype == torch.float32  # weights stay float32
    assert "autocast(bfloat16) on cpu" in runs["bf16"].precision


def test_fit_through_the_graph_dispatch_matches_eager_fit_with_recording():
    """The whole fit (epochs, recorded and replayed steps, validation, recording) through the graph
    dispatch on the CPU stand-in gives eager's metrics and recording, bit for bit."""
    data = synthetic(n_train=1024, n_val=128, n_test=128)
    configs = [make_config(a, "smoke", max_epochs=2) for a in ("relu", "tanh")]  # record: default schedule
    eager = train.fit(configs, data, "cpu", progress=False, graph="off")
    graphs = InlineGraphs()
    graphed = train.fit(configs, data, "cpu", progress=False, graph="on", graphs=graphs)
    assert eager.step == "eager" and graphed.step.startswith("cuda graph") and graphs.captures == 1
    assert graphs.replays > 0
    for a, b in zip(eager.members, graphed.members):
        strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
        assert strip(a.rows) == strip(b.rows) and a.result == b.result
    te, tg = eager.recording.tables(), graphed.recording.tables()
    for name in ("scalars", "histograms", "nonfinite", "dead_units"):
        assert te[name].equals(tg[name]), name


class PythonlessReplays(InlineGraphs):
    """As a CUDA graph: the capture runs the step's Python once (the optimizer's post-step hooks fire,
    nothing is computed), a replay computes without running any Python hook."""
    replays_run_python = False

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer

    def capture(self, fn):
        super().capture(fn)
        for hook in list(optimizer_module._global_optimizer_post_hooks.values()):
            hook(self.optimizer, (), {})

    def replay(self):
        hooks = optimizer_module._global_optimizer_post_hooks
        kept = dict(hooks)
        hooks.clear()
        try:
            super().replay()
        finally:
            hooks.update(kept)


def test_replayed_steps_count_as_optimizer_steps():
    """A replayed graph runs no Python, so the Recorder's optimizer watch would see no step there and
    read every replay as a step the optimizer skipped; the step reports each replay instead."""
    data = synthetic(n_train=512, n_val=64, n_test=64)
    model, opt = _setup()
    step, graphs, rec = _train(model, opt, data, graph=True, graphs=PythonlessReplays(opt))
    assert graphs.replays >= 9
    summary = rec.summary()
    assert summary["optimizer_watch"]["optimizers"][0]["steps"] == 14
    assert summary["skipped_steps"] is None


class FailingGraphs(InlineGraphs):
    def capture(self, fn):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


def test_a_failed_capture_falls_back_to_eager_in_auto_and_is_an_error_when_required():
    data = synthetic(n_train=512, n_val=64, n_test=64)
    model, opt = _setup()
    reference = copy.deepcopy(model)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    idx = MemberOrders(range(3), "cpu").next_epoch(512)
    auto = TrainStep(model, opt, data.train_x, data.train_y, 32, graph=True, graphs=FailingGraphs())
    eager = TrainStep(reference, ref_opt, data.train_x, data.train_y, 32)
    for s in range(8):
        assert torch.equal(auto.run(idx[:, s * 32:(s + 1) * 32]), eager.run(idx[:, s * 32:(s + 1) * 32]))
    assert auto.replayed_steps == 0 and auto.eager_steps == 8
    assert auto.describe() == ("eager (CUDA graph capture failed: RuntimeError: operation not permitted when "
                               "stream is capturing)")
    required = TrainStep(*_setup(), data.train_x, data.train_y, 32, graph=True, graphs=FailingGraphs(),
                         graph_required=True)
    with pytest.raises(RuntimeError, match="operation not permitted"):
        for s in range(8):
            required.run(idx[:, s * 32:(s + 1) * 32])


def test_runs_listing_shows_fp32_for_runs_that_leave_the_default_out(tmp_path, capsys):
    from gradflow.cli import main
    data = synthetic(n_train=256, n_val=64, n_test=64)
    train.train_runs([make_config("relu", "smoke", max_epochs=1, record="off", precision=p) for p in ("fp32", "bf16")],
                     runs_dir=tmp_path, progress=False, data=data)
    assert main(["runs", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("relu-")]
    assert sorted(r[3] for r in rows) == ["bf16", "fp32"], out  # the precision column, never "none"
    assert "settings that differ between these runs: precision" in out


def test_single_member_linear_is_the_batched_arithmetic_bit_for_bit():
    """One member takes F.linear on squeezed views instead of the batched autograd.Function: same
    outputs and the same weight, bias and input gradients, bit for bit, at the tutorial's shapes."""
    from gradflow.stacked import StackedLinear, _StackedAffine
    torch.manual_seed(0)
    for fan_in, fan_out in ((784, 512), (512, 256), (128, 10)):
        layer = StackedLinear([torch.nn.Linear(fan_in, fan_out)])
        x = torch.randn(1, 256, fan_in, requires_grad=True)
        g = torch.randn(1, 256, fan_out)
        fast = layer(x)
        fast.backward(g)
        grads_fast = [t.grad.clone() for t in (x, layer.weight, layer.bias)]
        for t in (x, layer.weight, layer.bias):
            t.grad = None
        batched = _StackedAffine.apply(x, layer.weight, layer.bias)
        batched.backward(g)
        assert torch.equal(fast, batched)
        for a, t in zip(grads_fast, (x, layer.weight, layer.bias)):
            assert torch.equal(a, t.grad) and a.shape == t.grad.shape and a.is_contiguous()
