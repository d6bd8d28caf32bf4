"""The HTML report (compd_core.report): self-contained, readable numbers, honest when empty."""

from __future__ import annotations

import re
from html import escape as html_escape
from pathlib import Path

import torch

from compd_core.search.criterion import Criterion
from compd_core.search.profile import DeviationProfile, ProfilePoint
from compd_core.report import BRIGHTER, DARKER, SEED_SHADOW, build_report, diff_heatmap
from compd_core.search.results import ExitReason, Seed, SeedResult, Trigger
from compd_core.search.settings import SearchSettings
from compd_core.store import Store
from compd_core.strength import change_size, margin_text, summarize_strength
from dashboard_support import StoredRun


def test_difference_picture_colours_brighter_red_darker_blue_over_a_faint_seed() -> None:
    seed = torch.zeros(1, 4, 4)
    seed[0, 0, 0] = 1.0  # one white seed pixel, unchanged
    trigger = seed.clone()
    trigger[0, 1, 1] = 0.4  # brighter by the most: fully red
    trigger[0, 2, 2] = 0.0
    seed[0, 2, 2] = 0.2
    trigger[0, 3, 3] = 0.0  # unchanged black: white background
    picture = diff_heatmap(seed, trigger)
    assert picture.shape == (3, 4, 4)
    assert torch.allclose(picture[:, 1, 1], torch.round(BRIGHTER * 255) / 255)
    background = 1 - SEED_SHADOW * 0.2  # the faint seed under that pixel
    half_blue = background - 0.5 * (background - DARKER)  # darker by half the largest change
    assert torch.allclose(picture[:, 2, 2], torch.round(half_blue * 255) / 255)
    assert torch.allclose(picture[:, 3, 3], torch.ones(3))
    assert torch.allclose(picture[:, 0, 0], torch.full((3,), round((1 - SEED_SHADOW) * 255) / 255))
    unchanged = diff_heatmap(seed, seed)  # no change at all: only the faint seed remains
    assert torch.allclose(unchanged[:, 3, 3], torch.ones(3)) and (unchanged[0] == unchanged[2]).all()


def test_report_is_self_contained_and_states_the_runs_numbers(stored_run: StoredRun) -> None:
    with Store(stored_run.db) as store:
        html = build_report(store, stored_run.run_id)
        run = store.get_run(stored_run.run_id)
        found = [r for r in store.load_results(stored_run.run_id) if r.found]
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html and not re.search(r'(src|href)="https?:', html)
    assert f"found such an input for <b>{len(found)} of {run.seeds_done}</b>" in html
    assert html.count('src="data:image/png;base64,') == 3 * len(found)
    assert html.count('class="probs"') == len(found)  # one probability chart per trigger
    for result in found:
        t = result.trigger
        p_original = float(t.probs_original[t.label_original])
        assert f"original: <b>{t.label_original}</b> ({p_original:.0%})" in html
        size = change_size(result.seed.image, t.image)
        assert (f"image #{result.seed.index} · margins: original {margin_text(t.margin_original)}, compressed "
                f"{margin_text(t.margin_compressed)} · L2 {t.l2:.2f}; largest pixel change {size.max_levels}/255; "
                f"{size.pixels_changed} of 784 pixels changed") in html
    assert "int8 static post-training quantization" in html  # the zoo's description of the pair
    caveat = summarize_strength([r.trigger for r in found]).caveat()  # int8: the original hesitates
    assert caveat is not None and f"<b>{html_escape(caveat)}</b>" in html


def _store_one(db: Path, pair: str, found: bool) -> tuple[Store, str]:
    store = Store(db)
    run_id = store.create_run(pair, "compd", SearchSettings(max_queries=50), 1, 0, "mnist")
    image = torch.full((1, 28, 28), 0.5)
    seed = Seed(0, 7, image, 3, 3)
    trigger = None
    if found:
        changed = image.clone()
        changed[0, 0, 0] = 0.6
        probs_o = torch.full((10,), 0.05).index_fill(0, torch.tensor([3]), 0.55)
        probs_c = torch.full((10,), 0.05).index_fill(0, torch.tensor([8]), 0.55)
        trigger = Trigger(changed, probs_o, probs_c, 0.1, 0.1)
    reason = ExitReason.FOUND if found else ExitReason.QUERY_BUDGET
    store.save_result(run_id, SeedResult(seed, reason, 50, 12, 0.5, trigger))
    store.finish_run(run_id, "finished", 0.5)
    return store, run_id


def test_report_without_deviations_says_so_plainly(tmp_path: Path) -> None:
    store, run_id = _store_one(tmp_path / "r.sqlite", "lenet5-int8-static", found=False)
    with store:
        html = build_report(store, run_id)
    assert "no such input was found" in html and "does not prove the models always agree" in html
    assert "<img" not in html


def test_report_on_the_users_own_models_uses_their_class_names(tmp_path: Path) -> None:
    store, run_id = _store_one(tmp_path / "r.sqlite", "a.onnx vs b.onnx", found=True)
    names = tuple(f"class-{i}" for i in range(10))
    with store:
        html = build_report(store, run_id, class_names=names)
    assert "the user's own models" in html
    assert "original: <b>class-3</b> (55%)" in html and "compressed: <b>class-8</b>" in html


def test_report_shows_the_deviation_profile_and_a_stored_tie(tmp_path: Path) -> None:
    store, run_id = _store_one(tmp_path / "p.sqlite", "lenet5-int8-static", found=True)
    points = (ProfilePoint(8, 1, 0.25, 4, 400), ProfilePoint(32, 3, 0.75, 3, 250))
    profile = DeviationProfile("lenet5-int8-static", "compd", 4, 100, 0, Criterion(), points, (),
                               stopped=False)
    with store:
        html = build_report(store, run_id, profile=profile)
    assert ("With changes of at most 8/255 per pixel, 25% of 4 test digits (1) make the compressed "
            "model answer differently while the original keeps its answer.") in html
    assert "at most 32/255 (75%)" in html
    # The stored trigger's compressed model puts 0.55 on 8 against 0.05 on 3: strict, margins 0.50.
    assert "margins: original 0.50, compressed 0.50" in html
    assert "1 of 1 triggers (100%)" in html and "not a deviation under the strict criterion" not in html
