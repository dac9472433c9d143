"""The sweep page's sentences, from planted results tables whose answers are known."""
import pandas as pd

from gradflow import sweep_narrate as sn

AXES = ["act", "init"]


def _table(acc: dict, codes: dict | None = None, seeds=(42, 43, 44)) -> pd.DataFrame:
    """acc -- {(act, init): [test accuracy per seed]}; codes -- {(act, init): "CODE,CODE"} for every seed."""
    rows = []
    for (act, init), values in acc.items():
        for seed, v in zip(seeds, values):
            rows.append({"run": f"{act}-{init}", "act": act, "init": init, "seed": seed, "status": "ok",
                         "test_acc": v, "finding_codes": (codes or {}).get((act, init), "")})
    return pd.DataFrame(rows)


PLANTED = _table({("relu", "default"): [0.84, 0.85, 0.86], ("relu", "kaiming"): [0.845, 0.855, 0.85],
                  ("sigmoid", "default"): [0.10, 0.10, 0.10], ("sigmoid", "kaiming"): [0.60, 0.62, 0.61]},
                 {("sigmoid", "default"): "NOT_LEARNING,VANISHING_GRADIENT", ("sigmoid", "kaiming"): "VANISHING_GRADIENT"})


CELLS = sn.cell_table(PLANTED, AXES)


def test_pairs_tell_apart_only_what_exceeds_the_seeds_spread():
    pairs = sn.one_setting_pairs(sn.cell_table(PLANTED, AXES), AXES)
    assert len(pairs) == 4  # a 2 x 2 grid has four one-setting pairs
    told = {(r["axis"], r["where"]): r for r in pairs.to_dict("records")}
    assert told[("init", "act=sigmoid")]["told apart"] and abs(told[("init", "act=sigmoid")]["change (pp)"] - 51) < 1e-6
    assert not told[("init", "act=relu")]["told apart"]  # 85.0 vs 85.0: within the seeds


def test_pair_sentences_say_the_largest_change_and_what_is_within_the_seeds():
    pairs = sn.one_setting_pairs(sn.cell_table(PLANTED, AXES), AXES)
    text = " ".join(sn.pair_sentences(pairs, CELLS, AXES, 3, preview=True, epochs=4))
    assert "**init**: after 4 epochs, 1 of 2 one-setting changes are told apart by 3 seeds" in text
    assert "default → kaiming (act=sigmoid), moves test accuracy by +51.0 points" in text
    assert "Not told apart: default vs kaiming (act=relu)" in text
    assert "after 4 epochs" not in " ".join(sn.pair_sentences(pairs, CELLS, AXES, 3, preview=False))


def test_the_tally_says_which_changes_it_leaves_out():
    """A pair with a split cell is counted by seeds at chance, so the per-axis tally says it left it out
    (a reader counting the table's rows would otherwise find one more than the sentence)."""
    split = PLANTED.copy()
    split.loc[(split["run"] == "sigmoid-default") & (split["seed"] == 44), "test_acc"] = 0.79
    cells = sn.cell_table(split, AXES)
    text = " ".join(sn.pair_sentences(sn.one_setting_pairs(cells, AXES), cells, AXES, 3, preview=False))
    assert "**init**: 0 of 1 one-setting changes are told apart by 3 seeds (leaving out the 1 with a split cell" in text
    assert "leaving out" not in " ".join(sn.pair_sentences(sn.one_setting_pairs(CELLS, AXES), CELLS, AXES, 3,
                                                          preview=False))


def test_one_seed_says_nothing_can_be_told_apart():
    one = _table({("relu", "default"): [0.8], ("sigmoid", "default"): [0.1]}, seeds=(42,))
    pairs = sn.one_setting_pairs(sn.cell_table(one, AXES), AXES)
    assert "nothing can be told apart" in sn.pair_sentences(pairs, sn.cell_table(one, AXES), AXES, 1, preview=False)[0]


def test_finding_sentences_name_the_cells_and_what_a_change_clears():
    counts = sn.finding_counts(PLANTED, AXES)
    text = " ".join(sn.finding_sentences(counts, 3, AXES))
    assert "**sigmoid | init=default**: NOT_LEARNING and VANISHING_GRADIENT, each in 3 of 3 seeds." in text
    assert "**sigmoid | init=kaiming**: VANISHING_GRADIENT in 3 of 3 seeds." in text
    assert "No finding in relu | init=default and relu | init=kaiming." in text
    assert ("Changing init from default to kaiming (act=sigmoid) clears NOT_LEARNING; VANISHING_GRADIENT stays."
            in text)
    assert "not a verdict" not in text  # without the cells' accuracies nothing is said of them
    with_cells = " ".join(sn.finding_sentences(counts, 3, AXES, sn.cell_table(PLANTED, AXES)))
    kaiming = sn.cell_table(PLANTED, AXES).set_index(["act", "init"]).loc[("sigmoid", "kaiming"), "mean"]
    assert (f"not a verdict on it: sigmoid | init=kaiming ({100 * kaiming:.1f} %, VANISHING_GRADIENT) learns all the "
            "same") in with_cells
    assert "sigmoid | init=default (" not in with_cells  # at chance: its findings are the story, not a footnote
    three = _table({("relu", "default"): [0.84, 0.85, 0.86], ("tanh", "default"): [0.84, 0.85, 0.86],
                    ("sigmoid", "default"): [0.10, 0.10, 0.10]}, {("sigmoid", "default"): "NOT_LEARNING"})
    said = sn.finding_sentences(sn.finding_counts(three, AXES), 3, AXES)
    assert said[-1] == "Changing act from sigmoid to relu or tanh (init=default) clears NOT_LEARNING."  # one sentence


def test_clean_grid_and_callouts():
    clean = _table({("relu", "default"): [0.8, 0.81, 0.82]})
    assert sn.finding_sentences(sn.finding_counts(clean, AXES), 3, AXES) == ["The diagnosis flags no cell of the grid."]
    plan = {"grid": {"axes": {"act": ["relu"], "preset": ["quick"]}, "seeds": [42, 43, 44]},
            "configs": [{"max_epochs": 4}]}
    assert "Preview sweep" in sn.sweep_callout(plan) and "up to 4 epochs" in sn.sweep_callout(plan)
    plan["grid"]["axes"]["preset"] = ["tutorial"]
    assert "Preview" in sn.sweep_callout(plan)  # the tutorial preset cut to 4 epochs is not the recipe
    plan["configs"] = [{"max_epochs": 50}]
    assert "Results" in sn.sweep_callout(plan) and "Preview" not in sn.sweep_callout(plan)
    assert "Training:" not in sn.sweep_callout(plan)  # the configs do not say
    recipe = {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 256, "max_epochs": 50}
    plan["configs"] = [dict(recipe), dict(recipe)]
    assert "Training: SGD (learning rate 0.01, momentum 0.9), batches of 256." in sn.sweep_callout(plan)
    plan["configs"][1]["lr"] = 0.1  # the rate is an axis: no one recipe to state
    assert "Training:" not in sn.sweep_callout(plan)


def test_curve_sentence_quotes_the_last_common_epoch():
    m = pd.DataFrame([{"act": a, "seed": s, "epoch": e, "val_acc": v}
                      for a, v in (("relu", 0.85), ("sigmoid", 0.1)) for s in (42, 43) for e in (1, 2, 3)])
    assert sn.curve_sentences(m, "val_acc") == [
        "At epoch 3 the validation accuracy is 85.0 % for relu and 10.0 % for sigmoid, mean over seeds (chance: 10 %)."]


def test_a_split_cell_is_compared_by_seeds_at_chance_not_by_its_interval():
    split = _table({("sigmoid", "default"): [0.10, 0.10, 0.79], ("sigmoid", "kaiming"): [0.86, 0.863, 0.861],
                    ("relu", "default"): [0.884, 0.886, 0.883], ("relu", "kaiming"): [0.885, 0.884, 0.886]})
    cells = sn.cell_table(split, AXES)
    pairs = sn.one_setting_pairs(cells, AXES)
    assert not pairs[pairs["split"]]["told apart"].any()  # a ±99-point interval decides nothing
    text = " ".join(sn.pair_sentences(pairs, cells, AXES, 3, preview=False))
    assert "**sigmoid | init=default**'s seeds split: 2 of 3 end at chance (10.0 %), the best at 79.0 %" in text
    assert ("**sigmoid | init=default** ends at chance in 2 of 3 seeds; with one setting changed (init → kaiming "
            "or act → relu), 0 of 3 do.") in text
    lead = sn.conclusion(pairs, sn.finding_counts(split, AXES), 3, preview=False)[0]
    # init -> kaiming and act -> relu each rescue both stuck seeds: a tie, said as one, not a winner
    assert lead == ("Counted in seeds, 2 changes matter equally here: changing init from default to kaiming "
                    "(act=sigmoid) or act from sigmoid to relu (init=default) each take the seeds that end at chance "
                    "from 2 of 3 to 0 of 3.")
    one = pairs[~((pairs["axis"] == "act") & (pairs["where"] == "init=default"))]  # the act change taken away
    alone = sn.conclusion(one, sn.finding_counts(split, AXES), 3, preview=False)[0]
    assert alone.startswith("Counted in seeds, the change that matters most here: changing init from default to kaiming")


def test_curve_sentence_says_when_stopped_seeds_are_in_the_mean():
    m = pd.DataFrame([{"act": "sigmoid", "seed": s, "epoch": e, "val_acc": 0.5, "past_stop": s == 42 and e > 2}
                      for s in (42, 43) for e in (1, 2, 3)])
    text = " ".join(sn.curve_sentences(m, "val_acc"))
    assert "For sigmoid that mean includes seeds that early stopping had already ended" in text
    m.loc[(m["seed"] == 42) & (m["epoch"] > 2), "val_acc"] = 0.9  # the stopped seed rose after its stop
    text = " ".join(sn.curve_sentences(m, "val_acc"))
    assert "is 70.0 % for sigmoid" in text and "only up to its own early stop, the mean is 50.0 % for sigmoid" in text


def test_the_conclusion_says_when_the_rescued_seeds_were_plateau_stops():
    """Page 3 shows sigmoid's stopped seeds learning when trained on; page 7 must not say Kaiming made a
    network learn that could not."""
    plateau = _table({("relu", "default"): [0.84, 0.85, 0.86], ("relu", "kaiming"): [0.845, 0.855, 0.85],
                      ("sigmoid", "default"): [0.10, 0.10, 0.79], ("sigmoid", "kaiming"): [0.86, 0.862, 0.861]},
                     {("sigmoid", "default"): "NOT_LEARNING,PLATEAU_STOP"})
    pairs = sn.one_setting_pairs(sn.cell_table(plateau, AXES), AXES)
    text = " ".join(sn.conclusion(pairs, sn.finding_counts(plateau, AXES), 3, preview=False))
    assert "takes the seeds that end at chance from 3 of 3 to 0 of 3" not in text
    assert "from 2 of 3 to 0 of 3" in text and "ended by early stopping on their initial plateau" in text
    plain = sn.conclusion(sn.one_setting_pairs(CELLS, AXES), sn.finding_counts(PLANTED, AXES), 3, preview=False)
    assert "plateau" not in " ".join(plain)  # stuck for good (no PLATEAU_STOP): nothing to add


def test_one_cell_at_chance_is_one_sentence_and_pairs_read_upwards():
    """relu -> sigmoid and sigmoid -> tanh are one fact (sigmoid ends at chance): one sentence, with the
    changes that help, settings first; each pair reads from the lower cell to the higher, so a change is
    said as what it gains ("sigmoid -> tanh: +74 points", not "tanh -> sigmoid: -74")."""
    grid = _table({("relu", "default"): [0.84, 0.85, 0.86], ("tanh", "default"): [0.84, 0.845, 0.85],
                   ("sigmoid", "default"): [0.10, 0.10, 0.10], ("sigmoid", "kaiming"): [0.60, 0.62, 0.61]})
    cells = sn.cell_table(grid, AXES)
    pairs = sn.one_setting_pairs(cells, AXES)
    assert [(r["from"], r["to"]) for r in pairs[pairs["axis"] == "act"].to_dict("records")] == [
        ("tanh", "relu"), ("sigmoid", "relu"), ("sigmoid", "tanh")]
    assert (pairs["change (pp)"] >= 0).all()
    text = sn.pair_sentences(pairs, cells, AXES, 3, preview=False)
    chance = [t for t in text if "at chance" in t]
    assert chance == ["**sigmoid | init=default** ends at chance in 3 of 3 seeds; with one setting changed (init → "
                      "kaiming, act → relu or act → tanh), 0 of 3 do."]
    partly = _table({("relu", "default"): [0.84, 0.85, 0.86], ("sigmoid", "default"): [0.10, 0.10, 0.10],
                     ("sigmoid", "kaiming"): [0.10, 0.62, 0.61]})
    cells = sn.cell_table(partly, AXES)
    text = " ".join(sn.pair_sentences(sn.one_setting_pairs(cells, AXES), cells, AXES, 3, preview=False))
    # the change that moves more seeds comes first, whatever its axis
    assert "ends at chance in 3 of 3 seeds; with act → relu, 0 of 3; with init → kaiming, 1 of 3." in text


def test_findings_are_counted_when_the_activation_is_the_only_axis():
    """One axis: the counts were reindexed against a one-level MultiIndex and all read 0 ("No finding in
    relu and tanh", "flags 0 of 2 cells") while results.parquet had NOT_LEARNING on 3 of 4 seeds."""
    rows = [{"run": a, "act": a, "seed": s, "status": "ok", "test_acc": acc, "finding_codes": codes}
            for a, s, acc, codes in (("relu", 42, 0.10, "NOT_LEARNING"), ("relu", 43, 0.10, "NOT_LEARNING"),
                                     ("tanh", 42, 0.099, "NOT_LEARNING"), ("tanh", 43, 0.174, ""))]
    ok = pd.DataFrame(rows)
    counts = sn.finding_counts(ok, ["act"])
    assert counts["NOT_LEARNING"].to_dict() == {"relu": 2, "tanh": 1}
    text = " ".join(sn.finding_sentences(counts, 2, ["act"]))
    assert "**relu**: NOT_LEARNING in 2 of 2 seeds." in text and "No finding" not in text
    pairs = sn.one_setting_pairs(sn.cell_table(ok, ["act"]), ["act"])
    conclusion = " ".join(sn.conclusion(pairs, counts, 2, preview=True))
    assert "flags 2 of 2 cells" in conclusion
    assert "(–)" not in conclusion  # a one-axis grid has no other settings to name


def _plan(preset="tutorial", max_epochs=50, train_subset=None, lr=(0.01,)):
    configs = [{"preset": preset, "max_epochs": max_epochs, "train_subset": train_subset, "optimizer": "sgd",
                "lr": x, "momentum": 0.9, "batch_size": 256, "dataset": "fashion_mnist"} for x in lr]
    return {"grid": {"axes": {"act": ["relu", "tanh"], "preset": [preset]}, "seeds": [42, 43]}, "configs": configs}


def test_a_shortened_tutorial_sweep_is_a_preview():
    """--preset tutorial --max-epochs 1 --train-subset 1000 is not the recipe: the page must not call it results."""
    full = _plan()
    assert not sn.is_preview_sweep(full) and "Results: a full-recipe sweep" in sn.sweep_callout(full)
    short = _plan(max_epochs=1, train_subset=1000)
    box = sn.sweep_callout(short)
    assert sn.is_preview_sweep(short) and "Preview sweep" in box and "full-recipe" not in box
    assert "up to 1 epoch " in box and "1 epochs" not in box and "so its one epoch is 3 steps" in box
    assert "--max-epochs 1" in box and "--train-subset 1000" in box
    assert sn.is_preview_sweep(_plan(max_epochs=10)) and sn.is_preview_sweep(_plan(train_subset=5000))
    # the train subset is said even when no single recipe line is (the learning rate is an axis)
    quick = sn.sweep_callout(_plan("quick", 4, 1000, lr=(0.01, 0.05)))
    assert "Training:" not in quick and "first 1,000 training images" in quick and "--train-subset 1000" in quick


def test_a_seed_the_diagnosis_calls_not_learning_is_not_rescued_and_matters_most_is_counted():
    """The reviewer's page: init default -> kaiming (act=sigmoid) 'rescued' a seed at 15.86 % that the same
    page flagged NOT_LEARNING, while sigmoid -> relu moved 2 of 2 seeds off chance and was ranked last."""
    grid = _table({("sigmoid", "default"): [0.10, 0.10], ("sigmoid", "kaiming"): [0.10, 0.1586],
                   ("relu", "default"): [0.80, 0.81], ("relu", "kaiming"): [0.82, 0.83]},
                  {("sigmoid", "default"): "NOT_LEARNING", ("sigmoid", "kaiming"): "NOT_LEARNING"}, seeds=(42, 43))
    cells = sn.cell_table(grid, AXES)
    assert cells.set_index(["act", "init"]).loc[("sigmoid", "kaiming"), "at_chance"] == 2
    pairs = sn.one_setting_pairs(cells, AXES)
    lead = sn.conclusion(pairs, sn.finding_counts(grid, AXES), 2, preview=True)[0]
    assert "from default to kaiming" not in lead
    assert "act from sigmoid to relu" in lead and "from 2 of 2 to 0 of 2" in lead
    # without the diagnosis' word, 15 % stays the line; and more seeds moved outranks a setting change
    plain = _table({("sigmoid", "default"): [0.10, 0.10], ("sigmoid", "kaiming"): [0.10, 0.60],
                    ("relu", "default"): [0.80, 0.81], ("relu", "kaiming"): [0.82, 0.83]}, seeds=(42, 43))
    pairs = sn.one_setting_pairs(sn.cell_table(plain, AXES), AXES)
    lead = sn.conclusion(pairs, sn.finding_counts(plain, AXES), 2, preview=True)[0]
    assert lead.startswith("Counted in seeds, the change that matters most here: changing act from sigmoid to relu")


def test_changes_that_move_as_many_seeds_in_different_cells_are_a_tie():
    """sigmoid -> relu (init=kaiming) and default -> kaiming (act=relu) each move 2 of 2 seeds off chance:
    neither 'matters most'."""
    grid = _table({("sigmoid", "default"): [0.10, 0.10], ("sigmoid", "kaiming"): [0.10, 0.10],
                   ("relu", "default"): [0.10, 0.10], ("relu", "kaiming"): [0.45, 0.50]}, seeds=(42, 43))
    pairs = sn.one_setting_pairs(sn.cell_table(grid, AXES), AXES)
    lead = sn.conclusion(pairs, sn.finding_counts(grid, AXES), 2, preview=True)[0]
    assert lead == ("Counted in seeds, 2 changes matter equally here: changing init from default to kaiming (act=relu) "
                    "or act from sigmoid to relu (init=kaiming) each take the seeds that end at chance from 2 of 2 to "
                    "0 of 2.")
    text = " ".join(sn.pair_sentences(pairs, sn.cell_table(grid, AXES), AXES, 2, preview=True, epochs=1))
    assert "after 1 epoch, " in text and "1 epochs" not in text


def test_a_cell_still_improving_at_the_epoch_cap_is_named():
    import pandas as pd

    from gradflow import sweep_narrate as sn
    rows = [{"act": "sigmoid", "init": "kaiming", "seed": s, "best_epoch": b, "epochs_trained": 50}
            for s, b in ((42, 46), (43, 50), (44, 49))]
    rows += [{"act": "tanh", "init": "kaiming", "seed": s, "best_epoch": 20, "epochs_trained": 27} for s in (42, 43, 44)]
    said = sn.still_improving(pd.DataFrame(rows), ["act", "init"], 50)
    assert len(said) == 1 and said[0].startswith("**sigmoid | init=kaiming** was still improving when the 50 epochs")
    assert "best epoch is 46–50" in said[0]
    assert sn.still_improving(pd.DataFrame(rows), ["act", "init"], None) == []
    assert sn.capped_cells(pd.DataFrame(rows), ["act", "init"], 50) == {"sigmoid | init=kaiming": (46, 50)}


def test_the_conclusion_says_when_its_largest_change_involves_a_capped_cell():
    import pandas as pd

    from gradflow import sweep_narrate as sn
    accs = {"sigmoid": (0.861, 0.862, 0.863), "tanh": (0.885, 0.887, 0.886)}
    ok = pd.DataFrame([{"act": a, "init": "kaiming", "seed": s, "test_acc": acc, "best_epoch": 48 if a == "sigmoid" else 20,
                        "epochs_trained": 50 if a == "sigmoid" else 27, "finding_codes": "", "status": "ok"}
                       for a, vals in accs.items() for s, acc in zip((42, 43, 44), vals)])
    axes = ["act", "init"]
    cells = sn.cell_table(ok, axes)
    pairs = sn.one_setting_pairs(cells, axes)
    counts = sn.finding_counts(ok, axes)
    said = " ".join(sn.conclusion(pairs, counts, 3, False, sn.capped_cells(ok, axes, 50)))
    assert "sigmoid | init=kaiming was still improving at the epoch cap: part of this may be the cap" in said
    assert "epoch cap" not in " ".join(sn.conclusion(pairs, counts, 3, False))
