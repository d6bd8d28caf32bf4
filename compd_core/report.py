"""One self-contained HTML file per run: a report a non-specialist can read and forward.

Everything is inside the file: images are PNG data URIs (shown enlarged with pixelated
scaling, so a 28x28 digit stays sharp), and charts are small inline SVGs drawn here, so the
report opens offline, in a mail client's preview, and without any script.
"""

from __future__ import annotations

import base64
import html
import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from compd_core import __version__
from compd_core.errors import CompdError
from compd_core.export import png_bytes, run_summary
from compd_core.search.results import ExitReason, SeedResult
from compd_core.store import RunRecord, Store
from compd_core.strength import TIE_TEXT, change_size, margin_text, summarize_strength

if TYPE_CHECKING:
    from compd_core.search.profile import DeviationProfile

ORIGINAL_COLOUR = "#1f5fa8"  # the same two colours as the dashboard's charts
COMPRESSED_COLOUR = "#e07b00"
BRIGHTER = torch.tensor([0.84, 0.19, 0.15])  # red: the trigger is brighter than the seed there
DARKER = torch.tensor([0.13, 0.40, 0.75])  # blue: darker
SEED_SHADOW = 0.22  # how dark the seed shows behind its difference picture
MAX_CLASSES_SHOWN = 10  # probability charts of larger label sets show the most likely classes


def diff_heatmap(seed: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
    """(3, H, W) picture of trigger minus seed: red where brighter, blue where darker, scaled so
    that the largest change is fully saturated, over a faint grey copy of the seed.

    A change of a few grey levels is invisible unamplified, so the largest change is fully
    coloured; the faint seed shows where on the image the change sits. In a colour image each
    pixel shows its most changed channel, so a change that raises red and lowers blue by the
    same amount does not cancel out.
    """
    seed = seed.to(torch.float32)
    change = trigger.to(torch.float32) - seed
    delta = change.gather(0, change.abs().argmax(0, keepdim=True))[0]  # (H, W)
    scale = float(delta.abs().max())
    strength = (delta.abs() / scale) if scale > 0 else torch.zeros_like(delta)
    colour = torch.where(delta[None] >= 0, BRIGHTER[:, None, None], DARKER[:, None, None])
    background = (1.0 - SEED_SHADOW * seed.mean(0))[None].expand(3, -1, -1)
    picture = background - strength[None] * (background - colour)
    return torch.round(picture.clamp(0.0, 1.0) * 255.0) / 255.0


def report_filename(run_id: str) -> str:
    return f"compd-report-{run_id}.html"


@dataclass(frozen=True)
class _PairFacts:
    """What the zoo knows about a shipped pair (nothing, for a user's own models)."""

    description: str
    accuracy_original: float
    accuracy_compressed: float
    disagreements: int
    size_original: int
    size_compressed: int
    test_images: str
    dataset: str


_TEST_IMAGES = {"mnist": "the 2,000 digits of the MNIST test split",
                "fashion-mnist": "the 2,000 clothes of the Fashion-MNIST test split"}


def _pair_facts(pair: str) -> _PairFacts | None:
    try:
        from compd_core.zoo import find_entry

        _, manifest, entry = find_entry(pair)
        original = manifest.originals[entry.original]
    except (CompdError, KeyError):
        return None
    return _PairFacts(entry.description, entry.accuracy_original, entry.accuracy_compressed,
                      entry.disagreements, original.size_bytes, entry.size_bytes,
                      _TEST_IMAGES.get(original.dataset, original.dataset), original.dataset)


def _class_names(pair: str, results: Sequence[SeedResult]) -> tuple[str, ...]:
    found = next((r.trigger for r in results if r.trigger is not None), None)
    count = 10 if found is None else found.probs_original.numel()
    facts = _pair_facts(pair)
    if facts is not None:
        from compd_core.data.named import named_classes

        return named_classes(facts.dataset)
    return tuple(str(i) for i in range(count))


def build_report(
    store: Store,
    run_id: str,
    *,
    class_names: Sequence[str] | None = None,
    max_triggers: int = 48,
    profile: DeviationProfile | None = None,
) -> str:
    """The whole report for one run as an HTML document (a string; save it with UTF-8).

    ``profile``, when given, adds the pair's deviation profile: how many seeds deviate within
    each per-pixel budget.
    """
    run = store.get_run(run_id)
    results = store.load_results(run_id, details=True)
    names = tuple(class_names) if class_names else _class_names(run.pair, results)
    found = [r for r in results if r.trigger is not None]
    facts = _pair_facts(run.pair)
    sections = [
        _summary_section(run, results, facts),
        _pair_section(run, facts),
        _search_section(run, results, names),
        _triggers_section(found[:max_triggers], len(found), names),
        _profile_section(profile),
        _settings_section(run),
    ]
    title = f"compd report: run {run.id}"
    generated = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        "<header><h1>Where the compressed model disagrees with the original</h1>"
        f"<p class=\"sub\">Run <code>{_e(run.id)}</code> · pair <b>{_e(run.pair)}</b> · "
        f"strategy {_e(run.strategy)} · started {_e(_when(run.created))}</p></header>"
        + "".join(sections)
        + f"<footer>Made by compd {_e(__version__)} on {_e(generated)}. The images are the exact "
        f"inputs found: <code>compd runs export {_e(run.id)}</code> writes them as PNG files, "
        "and giving one to the two models reproduces the disagreement.</footer>"
        "</main></body></html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Sections


def _summary_section(run: RunRecord, results: Sequence[SeedResult], facts: _PairFacts | None) -> str:
    summary = run_summary(results)
    found, done = summary["found"], summary["seeds_done"]
    things = "handwritten digits" if facts is not None else "images"
    text = (
        f"We took {done} {things} on which both models give the same, correct answer and "
        "searched for changes to each that make the <b>compressed</b> model answer "
        "differently while the <b>original</b> model keeps its answer; how large the changes "
        "are is said in numbers below. "
    )
    if found:
        linf = summary["median_linf"] * 255
        strength = summarize_strength([r.trigger for r in results if r.trigger is not None])
        text += (
            f"We found such an input for <b>{found} of {done}</b> ({found / done:.0%}). "
            f"In the typical one, the largest change to any single pixel was {linf:.0f} of 255 "
            f"grey levels (L2 distance {summary['median_l2']:.2f} on pixel values in [0, 1]), "
            f"and finding it took about {summary['median_queries_found']:.0f} "
            "queries of the two models "
            f"({_seconds(summary['median_seconds_found'])}). "
            f"How sure each model is (probability margins): {_e(strength.describe())}."
        )
        caveat = strength.caveat()
        if caveat:
            text += f" <b>{_e(caveat)}</b>"
    else:
        text += (
            f"Within the budget of {run.settings.max_queries:,} queries per image, no such input "
            "was found. That does not prove the models always agree: a larger budget or other "
            "kinds of changes may still find some."
        )
    stopped = sum(r.exit_reason is ExitReason.STOPPED for r in results)
    if run.status == "stopped" or stopped:
        text += " The search was stopped before it had finished" + (
            f" ({stopped} of the images were still being searched)." if stopped else ".")
    elif run.status == "running":
        text += " The search was still running when this report was made."
    tiles = [
        (f"{done}", f"{things} searched" + ("" if done == run.seed_count else f" of {run.seed_count}")),
        (f"{found}", f"deviations found ({found / done:.0%})" if done else "deviations found"),
        (_num(summary["median_queries_found"], ".0f"), "median queries per deviation"),
        (_num(None if summary["median_linf"] is None else summary["median_linf"] * 255, ".0f"),
         "median largest pixel change (of 255)"),
        (_seconds(run.wall_seconds), "search time"),
    ]
    tile_html = "".join(f"<div class=\"tile\"><b>{_e(v)}</b><span>{_e(k)}</span></div>"
                        for v, k in tiles)
    why = (
        "<p class=\"note\">A compressed model (quantized, pruned or distilled so that it runs on "
        "a phone, a robot or a factory sensor) is meant to be a faithful copy of its original. "
        "Each input below is one where it is not: the two models see the same picture and "
        "give different answers. Such inputs are what a test set misses and what a repair "
        "(fine-tuning the compressed model on them) starts from.</p>"
    )
    return (f"<section><h2>In short</h2><p class=\"lead\">{text}</p>"
            f"<div class=\"tiles\">{tile_html}</div>{why}</section>")


def _pair_section(run: RunRecord, facts: _PairFacts | None) -> str:
    if facts is None:
        return (
            f"<section><h2>The two models</h2><p>{_e(run.pair)}: the user's own models, "
            f"searched on the dataset <code>{_e(run.dataset)}</code>.</p>"
            f"{_files_table(run)}</section>"
        )
    rows = [
        ("How it was compressed", _e(facts.description)),
        ("Accuracy, original → compressed",
         f"{facts.accuracy_original:.2%} → {facts.accuracy_compressed:.2%}"),
        ("Disagreements on the test set", f"{facts.disagreements} of {_e(facts.test_images)}"),
        ("File size, original → compressed",
         f"{facts.size_original / 1024:.0f} KiB → {facts.size_compressed / 1024:.0f} KiB"),
        ("Searched images from", f"<code>{_e(run.dataset)}</code>"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        f"<section><h2>The two models</h2><p>Pair <b>{_e(run.pair)}</b>. Accuracy alone hides "
        "the problem: the two models score almost the same, yet they disagree on particular "
        f"inputs.</p><table class=\"facts\">{body}</table></section>"
    )


def _files_table(run: RunRecord) -> str:
    """The own model files a run searched, with the SHA-256 recorded when it started."""
    rows = []
    for role, path, digest in [] if run.pair_spec is None else run.pair_spec.model_files():
        recorded = "" if digest is None else f" (SHA-256 <code>{_e(digest[:16])}…</code>)"
        rows.append(f"<tr><th>{role.capitalize()} model</th><td><code>{_e(path)}</code>"
                    f"{recorded}</td></tr>")
    return f"<table class=\"facts\">{''.join(rows)}</table>" if rows else ""


def _search_section(run: RunRecord, results: Sequence[SeedResult], names: Sequence[str]) -> str:
    if not results:
        return "<section><h2>How the search went</h2><p>No image has been searched yet.</p></section>"
    reasons = Counter(r.exit_reason.value for r in results)
    outcome = _svg_hbars([(reason, count) for reason, count in reasons.most_common()],
                         colour="#5b6b7f")
    triggers = [r.trigger for r in results if r.trigger is not None]
    found = [r for r in results if r.trigger is not None]
    charts = [_figure("What happened to each image", outcome)]
    if found:
        queries = [r.queries for r in found]
        median = statistics.median(queries)
        charts.append(_figure(f"Queries needed per deviation (median {median:.0f})",
                              _svg_histogram(queries)))
        switches = Counter((names[t.label_original], names[t.label_compressed]) for t in triggers)
        switch_bars = _svg_hbars([(f"{a} → {b}", n) for (a, b), n in switches.most_common(8)],
                                 colour=COMPRESSED_COLOUR)
        charts.append(_figure("Original's answer → compressed model's answer", switch_bars))
        operators = Counter(step.operator for r in found for step in r.chain)
        if operators:
            charts.append(_figure("Changes used in the deviations' chains",
                                  _svg_hbars(operators.most_common(8), colour="#6a8f3a")))
    return (f"<section><h2>How the search went</h2><div class=\"charts\">{''.join(charts)}</div>"
            "</section>")


def _triggers_section(found: Sequence[SeedResult], total: int, names: Sequence[str]) -> str:
    if not found:
        return ""
    more = "" if total <= len(found) else f" The first {len(found)} of {total} are shown."
    legend = (
        f"<span class=\"key\" style=\"background:{ORIGINAL_COLOUR}\"></span> original model "
        f"<span class=\"key\" style=\"background:{COMPRESSED_COLOUR}\"></span> compressed model"
    )
    cards = "".join(_trigger_card(r, names) for r in found)
    return (
        "<section><h2>The deviations</h2><p>Each card shows the original image, the changed "
        "image the models disagree on, and where it was changed (red: brighter, blue: darker, "
        f"amplified so the largest change is fully coloured).{more}</p>"
        f"<p class=\"legend\">{legend}</p><div class=\"cards\">{cards}</div></section>"
    )


def _trigger_card(result: SeedResult, names: Sequence[str]) -> str:
    trigger = result.trigger
    if trigger is None:
        return ""
    p_o, p_c = trigger.probs_original, trigger.probs_compressed
    lo, lc = trigger.label_original, trigger.label_compressed
    images = "".join(
        f"<figure>{_img(image)}<figcaption>{caption}</figcaption></figure>"
        for image, caption in (
            (result.seed.image, "original image"),
            (trigger.image, "changed image"),
            (diff_heatmap(result.seed.image, trigger.image), "what changed"),
        )
    )
    m_o, m_c = trigger.margins
    size = change_size(result.seed.image, trigger.image)
    strength = (f"margins: original {margin_text(m_o)}, compressed {margin_text(m_c)}" if trigger.is_strict
                else f"<b>{_e(TIE_TEXT)}</b> (margins {m_o:.2f}, {m_c:.2f})")
    verdict = (
        f"<p class=\"verdict\"><span style=\"color:{ORIGINAL_COLOUR}\">original: "
        f"<b>{_e(names[lo])}</b> ({float(p_o[lo]):.0%})</span> · "
        f"<span style=\"color:{COMPRESSED_COLOUR}\">compressed: <b>{_e(names[lc])}</b> "
        f"({float(p_c[lc]):.0%})</span></p>"
    )
    details = (
        f"<p class=\"small\">image #{result.seed.index} · {strength} · {_e(size.describe())} · "
        f"{result.queries} queries · {len(result.chain)} changes</p>"
    )
    return (
        f"<div class=\"card\"><div class=\"imgs\">{images}</div>{verdict}"
        f"{_svg_probabilities(p_o, p_c, names)}{details}</div>"
    )


def _profile_section(profile: DeviationProfile | None) -> str:
    if profile is None or not profile.points:
        return ""
    bars = _svg_hbars([(f"at most {p.budget}/255 ({p.share:.0%})", p.solved) for p in profile.points],
                      colour=COMPRESSED_COLOUR, peak=profile.seeds)
    return (
        "<section><h2>How close deviations are: the deviation profile</h2>"
        f"<p class=\"lead\">{_e(profile.sentence())}</p>"
        + _figure(f"Seeds of {profile.seeds} with a deviation within each largest pixel change "
                  f"({profile.strategy}, {profile.max_queries:,} queries per seed and budget)", bars)
        + "</section>"
    )


def _settings_section(run: RunRecord) -> str:
    s = run.settings
    rows = [
        ("Strategy", run.strategy),
        ("Images planned", f"{run.seed_count} from {run.dataset}"),
        ("Query budget per image", f"{s.max_queries:,}"),
        ("Time budget per image", "none" if s.time_budget is None else f"{s.time_budget:g} s"),
        ("Largest pixel change allowed",
         "no limit" if s.max_linf is None else f"{s.max_linf * 255:.0f}/255"),
        ("Largest L2 distance allowed",
         "no limit" if s.criterion.max_l2 is None else f"{s.criterion.max_l2:g} (pixel values in [0, 1])"),
        ("Counts as a deviation", "the original keeps its answer" if s.criterion.kind == "valid"
         else "any disagreement"),
        ("Smallest margins (original, compressed)",
         f"{s.criterion.min_margin_original:g}, {s.criterion.min_margin_compressed:g} "
         "(0: strict, a tie never counts)"),
        ("Kinds of change", s.operators),
        ("Random seed", str(run.rng_seed)),
        ("Status", run.status + (f" ({run.note})" if run.note else "")),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (f"<section><h2>Settings (to reproduce the run)</h2><table class=\"facts\">{body}"
            "</table></section>")


# ---------------------------------------------------------------------------------------------
# Pictures and charts


def _img(image: torch.Tensor) -> str:
    data = base64.b64encode(png_bytes(image)).decode("ascii")
    return f"<img alt=\"\" src=\"data:image/png;base64,{data}\">"


def _figure(title: str, svg: str) -> str:
    return f"<figure class=\"chart\"><figcaption>{_e(title)}</figcaption>{svg}</figure>"


def _svg_probabilities(p_o: torch.Tensor, p_c: torch.Tensor, names: Sequence[str]) -> str:
    """Grouped bars, one pair per class; for many classes, only the most likely ones."""
    k = p_o.numel()
    classes = list(range(k))
    if k > MAX_CLASSES_SHOWN:
        top = torch.maximum(p_o, p_c).topk(MAX_CLASSES_SHOWN).indices
        classes = sorted(int(i) for i in top)
    width, height, base, left = 300, 120, 96, 34
    slot = (width - left) / len(classes)
    bar = slot * 0.36
    parts = [f"<svg class=\"probs\" viewBox=\"0 0 {width} {height}\" role=\"img\" "
             "aria-label=\"probabilities of both models per class\">"]
    for level in (0.0, 0.5, 1.0):
        y = base - level * (base - 8)
        parts.append(f"<line x1=\"{left}\" x2=\"{width}\" y1=\"{y:.1f}\" y2=\"{y:.1f}\" class=\"grid\"/>"
                     f"<text x=\"{left - 4}\" y=\"{y + 3:.1f}\" class=\"tick\" text-anchor=\"end\">"
                     f"{level:.0%}</text>")
    for i, c in enumerate(classes):
        x = left + i * slot + slot * 0.14
        for value, colour, offset in ((float(p_o[c]), ORIGINAL_COLOUR, 0.0),
                                      (float(p_c[c]), COMPRESSED_COLOUR, bar)):
            h = max(value, 0.0) * (base - 8)
            parts.append(f"<rect x=\"{x + offset:.1f}\" y=\"{base - h:.1f}\" width=\"{bar:.1f}\" "
                         f"height=\"{h:.1f}\" fill=\"{colour}\"><title>{_e(names[c])}: "
                         f"{value:.1%}</title></rect>")
        parts.append(f"<text x=\"{x + bar:.1f}\" y=\"{base + 14}\" class=\"tick\" "
                     f"text-anchor=\"middle\">{_e(_short(names[c]))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _svg_hbars(items: Sequence[tuple[str, int]], colour: str, peak: int | None = None) -> str:
    """Horizontal bars with their counts: readable category names of any length.

    ``peak`` is the count of a full-width bar (default: the largest count).
    """
    if not items:
        return ""
    row, label_w, width = 22, 190, 420
    peak = peak or max(count for _, count in items) or 1
    height = row * len(items) + 4
    parts = [f"<svg viewBox=\"0 0 {width} {height}\" role=\"img\">"]
    for i, (name, count) in enumerate(items):
        y = i * row + 2
        w = (width - label_w - 40) * count / peak
        parts.append(
            f"<text x=\"{label_w - 6}\" y=\"{y + 15}\" text-anchor=\"end\" class=\"label\">"
            f"{_e(_short(name, 28))}</text><rect x=\"{label_w}\" y=\"{y + 3}\" width=\"{w:.1f}\" "
            f"height=\"{row - 7}\" fill=\"{colour}\" rx=\"2\"/><text x=\"{label_w + w + 5:.1f}\" "
            f"y=\"{y + 15}\" class=\"label\">{count}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_histogram(values: Sequence[int], bins: int = 12) -> str:
    """Counts of values in equal-width bins, with the median marked."""
    low, high = min(values), max(values)
    span = max(high - low, 1)
    width_bin = span / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / width_bin), bins - 1)] += 1
    width, height, base, left = 420, 150, 122, 30
    peak = max(counts)
    slot = (width - left - 10) / bins
    parts = [f"<svg viewBox=\"0 0 {width} {height}\" role=\"img\">"]
    for i, count in enumerate(counts):
        h = (base - 10) * count / peak
        parts.append(f"<rect x=\"{left + i * slot + 1:.1f}\" y=\"{base - h:.1f}\" width=\"{slot - 2:.1f}\" "
                     f"height=\"{h:.1f}\" fill=\"{ORIGINAL_COLOUR}\" opacity=\"0.8\"><title>"
                     f"{low + i * width_bin:.0f}–{low + (i + 1) * width_bin:.0f}: {count}</title></rect>")
    median = statistics.median(values)
    mx = left + (median - low) / span * (width - left - 10)
    parts.append(f"<line x1=\"{mx:.1f}\" x2=\"{mx:.1f}\" y1=\"6\" y2=\"{base}\" stroke=\"#222\" "
                 f"stroke-dasharray=\"3 3\"><title>median {median:.0f}</title></line>")
    parts.append(f"<text x=\"{left}\" y=\"{base + 16}\" class=\"tick\">{low}</text>"
                 f"<text x=\"{width - 10}\" y=\"{base + 16}\" class=\"tick\" text-anchor=\"end\">"
                 f"{high} queries</text><text x=\"{left - 4}\" y=\"{base - (base - 10) + 4}\" "
                 f"class=\"tick\" text-anchor=\"end\">{peak}</text>")
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Text


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _short(text: str, limit: int = 6) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, fmt)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


_CSS = """
:root{--ink:#1d2430;--muted:#5d6776;--line:#e3e7ee;--bg:#f6f8fb}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1080px;margin:0 auto;padding:28px 24px 40px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px}
.sub{color:var(--muted);margin:0 0 20px}code{font-size:13px;background:#eef1f6;padding:1px 4px;border-radius:3px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:0 0 18px}
.lead{font-size:16px}.note{color:var(--muted);font-size:14px;margin-bottom:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:14px 0}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile b{display:block;font-size:24px}.tile span{color:var(--muted);font-size:13px}
table.facts{border-collapse:collapse;width:100%}table.facts th,table.facts td{text-align:left;
padding:6px 8px;border-top:1px solid var(--line);vertical-align:top}table.facts th{width:36%;color:var(--muted);font-weight:500}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
figure{margin:0}figure.chart figcaption{font-weight:600;font-size:14px;margin-bottom:4px}
svg{width:100%;height:auto}svg .label{font-size:12px;fill:var(--ink)}svg .tick{font-size:10px;fill:var(--muted)}
svg .grid{stroke:var(--line);stroke-width:1}
.legend{font-size:13px;color:var(--muted)}.key{display:inline-block;width:11px;height:11px;border-radius:2px;margin:0 4px 0 10px;vertical-align:-1px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px}
.imgs{display:flex;gap:8px;justify-content:space-between}.imgs figure{text-align:center;flex:1}
.imgs img{width:100%;max-width:92px;image-rendering:pixelated;border:1px solid var(--line);border-radius:3px}
.imgs figcaption{font-size:11px;color:var(--muted)}
.verdict{margin:6px 0 2px;font-size:14px}.small{font-size:12px;color:var(--muted);margin:2px 0 0}
footer{color:var(--muted);font-size:13px;margin-top:8px}
"""
