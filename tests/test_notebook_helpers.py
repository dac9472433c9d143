"""Notebook parameters as papermill users pass them, and reports that read stored runs only."""
import pytest

from gradflow import notebook_helpers as nh


@pytest.mark.parametrize("value, expected", [
    ("relu,tanh", ["relu", "tanh"]), ("relu tanh", ["relu", "tanh"]), (["relu", "tanh"], ["relu", "tanh"]),
    ("[relu, tanh]", ["relu", "tanh"]), ("relu", ["relu"]), ("", []), ([], [])])
def test_names(value, expected):
    assert nh.as_list(value, "activations") == expected


@pytest.mark.parametrize("value, expected", [
    (42, [42]), ("42", [42]), ("42,43", [42, 43]), ("[42, 43]", [42, 43]), ([42, 43], [42, 43]), ("", [])])
def test_seeds(value, expected):
    assert nh.as_list(value, "seeds", item=int, distinct=True) == expected


@pytest.mark.parametrize("value", ["4x", [1.5], [True], "42,42", "[42, "])
def test_bad_seeds_fail_in_one_line(value):
    with pytest.raises(nh.ParameterError) as err:
        nh.as_list(value, "seeds", item=int, distinct=True)
    assert "\n" not in str(err.value) and "seeds" in str(err.value)


def test_scalars():
    assert nh.as_int("7", "points") == 7 and nh.as_bool("false", "interactive") is False
    assert nh.as_float("-5", "x_min") == -5.0
    with pytest.raises(nh.ParameterError, match="at least 3"):
        nh.as_int(1, "points", minimum=3)
    with pytest.raises(nh.ParameterError, match="true or false"):
        nh.as_bool("maybe", "interactive")
    with pytest.raises(nh.ParameterError, match="accepted: tutorial, quick, smoke"):
        nh.as_preset("fast")


def test_missing_runs_name_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        nh.stored_comparison(["sigmoid", "relu"], "smoke", [], str(tmp_path))
    msg = str(err.value)
    assert "sigmoid, relu" in msg and f"gradflow train --act sigmoid,relu --preset smoke --out {tmp_path}" in msg
    assert not any(tmp_path.iterdir())  # nothing was trained


def test_no_widgets_outside_a_live_kernel():
    assert nh.live_kernel(True) is False  # pytest is not a Jupyter front end
    assert nh.live_kernel(False) is False


def test_figures_are_described_for_screen_readers():
    """The alt text says what the figure says about itself: title, panels, axes, legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    axes[0].plot([0, 1], label="relu")
    axes[0].plot([1, 0], label="sigmoid")
    axes[0].legend()
    axes[0].set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    axes[1].set(title="Training loss")
    text = nh.figure_description(fig)
    assert text == ("Figure with panels: Validation accuracy, Training loss. Horizontal axis: epoch. "
                    "Vertical axis: accuracy. Legend: relu, sigmoid.")
    fig.suptitle("Learning curves")
    assert nh.figure_description(fig).startswith("Figure: Learning curves. Panels: Validation accuracy, Training loss.")
    axes[1].set_ylabel("loss (nats)")  # panels with different axes: each is named
    assert "Vertical axes: accuracy; loss (nats)." in nh.figure_description(fig)
    plt.close(fig)


def test_a_page_asking_for_fewer_seeds_reads_them_from_the_stored_run(tmp_path):
    """Seed 1 of a run trained on seeds 0 and 1 is there already: read, not trained again (a student's
    `seeds=[42]` on page 3 asked for two minutes of training before)."""
    from gradflow.cli import main
    runs = tmp_path / "runs"
    assert main(["train", "--act", "sigmoid,relu", "--preset", "smoke", "--out", str(runs), "--no-progress"]) == 0
    before = sorted(p.name for p in runs.iterdir())
    whole = nh.stored_comparison(["relu"], "smoke", [], str(runs))[0]
    sigmoid, relu = nh.stored_comparison(["sigmoid", "relu"], "smoke", [1], str(runs))
    assert sorted(p.name for p in runs.iterdir()) == before  # nothing trained, nothing written
    assert whole.seeds == [0, 1] and relu.seeds == [1] and sigmoid.seeds == [1]
    assert relu.results["seed"].tolist() == [1] and set(relu.metrics["seed"]) == {1}
    assert relu.results["test_acc"].iloc[0] == whole.results.set_index("seed").loc[1, "test_acc"]
    assert relu.recordings.summary()["member_seeds"] == [1]
    assert set(relu.recordings.tables()["scalars"]["member"]) == {0}  # renumbered: one member
    assert all(f.get("of_seeds") in (None, 1) for f in relu.findings)  # diagnosed for seed 1 alone
    with pytest.raises(FileNotFoundError, match="no quick-preset run|has no smoke-preset run"):
        nh.stored_comparison(["relu"], "smoke", [7], str(runs))  # a seed it was not trained on: train it


def test_a_notebook_opened_away_from_the_repository_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADFLOW_RUNS", raising=False)
    with pytest.raises(FileNotFoundError) as err:
        nh.stored_comparison(["relu"], "quick", [])
    msg = str(err.value)
    assert f"no run store at {tmp_path / 'checkpoints'}" in msg and "runs_dir" in msg and "gradflow train" not in msg
