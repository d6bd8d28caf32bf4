"""``compd search`` and ``compd profile`` ask for strong, close deviations from the command
line: margin minimums and an L2 budget reach the criterion, every stored trigger meets them when
replayed through the pair, and the run says what it asked for."""

from __future__ import annotations

import json

import torch

from compd_core.report import build_report
from compd_core.store import Store
from compd_core.zoo import load_pair
from cli_support import compd

PAIR = "lenet5-distilled"  # a student: its deviations can be strong for both models


def test_a_search_for_strong_close_deviations_stores_only_triggers_that_are(tmp_path):
    db = str(tmp_path / "r.sqlite")
    result = compd("search", "--pair", PAIR, "--seeds", "8", "--budget", "2000", "--seed-order",
                   "balanced", "--min-margin-original", "0.5", "--min-margin-compressed", "0.2",
                   "--max-l2", "5", "--db", db, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    with Store(db, read_only=True) as store:
        run = store.get_run(summary["run_id"])
        found = [r for r in store.load_results(run.id) if r.found]
    criterion = run.settings.criterion
    assert (criterion.min_margin_original, criterion.min_margin_compressed, criterion.max_l2) == (0.5, 0.2, 5.0)
    assert len(found) >= 5  # measured: all 8 seeds have such a deviation within 2,000 queries
    images = torch.stack([r.trigger.image for r in found])
    replayed = load_pair(PAIR).predict(images)
    labels = torch.tensor([r.seed.label for r in found])
    seeds = torch.stack([r.seed.image for r in found])
    assert bool(criterion.met(replayed.original, replayed.compressed, labels, images, seeds).all())
    for r in found:
        margin_original, margin_compressed = r.trigger.margins
        assert margin_original > 0.5 and margin_compressed > 0.2 and r.trigger.l2 <= 5.0

    shown = compd("runs", "show", run.id, "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert "max L2 5, margins at least 0.5 (original) and 0.2 (compressed)" in shown.stdout
    assert "hesitates" not in shown.stdout  # the original is sure on every one of them
    with Store(db, read_only=True) as store:
        report = build_report(store, run.id)
    assert "<th>Largest L2 distance allowed</th><td>5 (pixel values in [0, 1])</td>" in report
    assert "<th>Smallest margins (original, compressed)</th><td>0.5, 0.2 " in report


def test_a_profile_with_margins_counts_them_and_says_so():
    strict = compd("profile", "--pair", PAIR, "--seeds", "6", "--budgets", "16,64", "--budget",
                   "300", "--json")
    strong = compd("profile", "--pair", PAIR, "--seeds", "6", "--budgets", "16,64", "--budget",
                   "300", "--min-margin-original", "0.5", "--min-margin-compressed", "0.2", "--json")
    assert strict.returncode == 0 and strong.returncode == 0, strict.stderr + strong.stderr
    strict_report, strong_report = json.loads(strict.stdout), json.loads(strong.stdout)
    assert (strong_report["min_margin_original"], strong_report["min_margin_compressed"]) == (0.5, 0.2)
    assert (strict_report["min_margin_original"], strict_report["min_margin_compressed"]) == (0.0, 0.0)
    # a deviation strong enough for the margins is a strict one too: never more seeds solved
    for weak, hard in zip(strict_report["points"], strong_report["points"]):
        assert hard["solved"] <= weak["solved"]
    assert strong_report["points"][-1]["solved"] >= 1
    assert "(by a margin of at least 0.2) while the original keeps its answer (by a margin of at " \
           "least 0.5)" in strong_report["sentence"]
    assert "by a margin" not in strict_report["sentence"]


def test_an_int8_search_says_the_original_itself_hesitates_on_its_triggers(tmp_path):
    """int8 static deviations lie on the original's own boundary: the summary and `runs show`
    say so in their words, before a sceptic does."""
    db = str(tmp_path / "r.sqlite")
    result = compd("search", "--pair", "lenet5-int8-static", "--seeds", "4", "--budget", "2000",
                   "--seed-order", "balanced", "--db", db)
    assert result.returncode == 0, result.stderr
    with Store(db, read_only=True) as store:
        run = store.list_runs()[0]
        found = [r for r in store.load_results(run.id) if r.found]
    assert found and max(r.trigger.margins[0] for r in found) < 0.2
    flat = " ".join(result.stdout.split())  # the console wraps long lines
    assert "The original itself hesitates on most of these triggers" in flat
    shown = compd("runs", "show", run.id, "--db", db)
    assert "The original itself hesitates on most of these triggers" in " ".join(shown.stdout.split())
