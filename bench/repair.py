"""Repair benchmark: does fine-tuning on triggers remove deviations it never saw, without
making anything else worse?

For each pair and each of several seed sets (rng seeds): a run of the project's search
(strategy ``compd``), then ``repair_run`` with the default ``RepairSettings`` on every trigger
(half trained on, half held out; nothing registered), judged on the held-out triggers, the
clean and corrupted test data, the run's search and the deviation profile, before and after.
Every finished repair is appended to a JSON-lines file first, so a stopped benchmark keeps
what it measured; bench/REPAIR.md is written from that file (``--table-only`` rewrites it).

Run from the repository root:
    python -m bench.repair [--threads 1] [--seeds 200] [--budget 2000] [--rng-seeds 0 2 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
PAIRS = ("lenet5-int8-static", "lenet5-int8-qat", "lenet5-prune90", "lenet5-distilled",
         "lenet5-bf16", "lenet1-int8-static")
MIN_TRIGGERS = 8  # fewer cannot be split into trained-on, validation and held-out parts
HELDOUT_TARGET = 0.90
ACCURACY_DROP_LIMIT = 0.003


# What the tables cannot say; each number was measured (tuning: 100-seed runs, rng seed 1).
NOTES = [
    "- The results above were measured at commit f520aaa, where the search's default criterion "
    "had no distance budget (strict, unbounded); the default is now L-inf 64/255, so a re-run "
    "searches, mines and re-searches closer to the seeds than these runs did.",
    "- Missed: held-out triggers repaired is 66-87% on average, below the 90% target on every "
    "pair (one bf16 seed set reached 92%). Test accuracy stayed within 0.3 points everywhere "
    "(int8 LeNet-5 pairs gained 0.05-0.2 points). Only lenet5-prune90 is better by every "
    "threshold (clean disagreements 26 -> 16, corrupted 2448 -> 1629 on average); "
    "lenet5-distilled lowers its corrupted disagreements (3936 -> 3433) but not its clean ones "
    "(36 -> 40); the int8 and bf16 pairs, rounded copies of the original, gain disagreements "
    "on clean and corrupted digits, and their verdict is `worse` in every seed set.",
    "- The run's own search after repair: fewer seeds deviate on the int8 pairs (lenet5 "
    "int8-static 99% -> 62%, int8-qat 94% -> 74%, lenet1 int8-static 74% -> 50%), none fewer on "
    "the pruned and distilled pairs (100% of seeds deviate before and after), and more on the "
    "bf16 pair (71% -> 82%).",
    "- The two processes: seed sets 0 and 2 ran in one process, seed set 3 in a second one "
    "started later (`--rng-seeds 3 --rows bench/out/repair-rows-3.jsonl`); the table reads both "
    "row files. Mining depends on the repair's own seed and the training digits, not on the "
    "run, so each pair mined the same deviations in every seed set.",
    "- Tuning (lenet5-int8-static, rng seed 1, 100 seeds, 8 epochs): held-out repaired 52% "
    "with no mined deviations (16 variants per trigger), 82% with 512 mined training digits "
    "and 82% with 1024; lenet5-prune90: 76% with 256, 88% with 1024. Mining is what "
    "generalises: the held-out triggers come from other digits than the trained-on ones, and "
    "a few dozen triggers show too few of the compressed model's weak spots.",
    "- The int8 pairs start from a handful of test disagreements because they are rounded "
    "copies of the original, and every fine-tuning tried moved other digits across a boundary: "
    "over nine tuning runs, clean test disagreements went 6 -> 7..13 and corrupted ones "
    "374 -> 498..945. Gentler updates traded held-out repair for fewer new disagreements "
    "(256 mined, lr 2e-4, 90% teacher images: 66% held-out, 6 -> 7, 374 -> 602; 256 mined, "
    "KL weight 3 at temperature 4: 52%, 6 -> 9, 374 -> 553); training only the fully connected "
    "layers: 66%, 6 -> 12, 374 -> 759. Quantizing the fine-tuned weights again with fresh "
    "observers (`recalibrate`) gave 82% held-out, 6 -> 12, 374 -> 859 against 6 -> 9, "
    "374 -> 780 with the scales kept, so it is off by default. On the int8 pairs the verdict "
    "is therefore `worse`, and neither the CLI nor the dashboard registers such a repair "
    "without being told to.",
    "- The pruned and distilled models differ from the original everywhere (tens of test "
    "disagreements, thousands on corrupted digits); the original as teacher on clean and "
    "corrupted training digits lowers the corrupted counts of both and the clean count of the "
    "pruned model while the triggers are repaired.",
    "- The deviation profile point (strict deviation within L-inf 16/255, 500 queries of "
    "`compd`) is 0% before repair on the int8 pairs: the search finds no deviation that close, "
    "so 'at most half of before' holds trivially there (0% -> 0%) and says nothing. The run's "
    "own unbounded re-search (`research_success`) is where the int8 repairs show: fewer seeds "
    "deviate at all after repair.",
]


def _targets(r: dict) -> dict[str, bool | None]:
    """The repair targets, judged for one repair; None where a target says nothing (a profile
    share of 0% before repair cannot be halved)."""
    return {
        "held-out >= 90%": r["heldout_repaired_rate"] >= HELDOUT_TARGET,
        "accuracy drop <= 0.3 pt": r["accuracy_before"] - r["accuracy_after"] <= ACCURACY_DROP_LIMIT + 1e-12,
        "test disagreements not higher": r["disagreements_after"] <= r["disagreements_before"],
        "corrupted disagreements not higher":
            r["corrupted_disagreements_after"] <= r["corrupted_disagreements_before"],
        "profile share at most half": None if not r["profile_share_before"]
            else r["profile_share_after"] is not None
            and r["profile_share_after"] <= r["profile_share_before"] / 2,
    }


def _mean_range(values: list[float], fmt) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.mean(values))} ({fmt(min(values))}–{fmt(max(values))})"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _pct2(v: float) -> str:
    return f"{100 * v:.2f}%"


def _int(v: float) -> str:
    return f"{v:.1f}" if v != int(v) else f"{int(v)}"


def _pair_rows(rows: list[dict]) -> list[str]:
    lines = [
        "| pair | seed sets | triggers (train/held-out) | mined | held-out repaired | "
        "test accuracy | test disagreements | corrupted disagreements | within L-inf 16/255 | "
        "re-search success | verdicts | repair s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in dict.fromkeys(r["pair"] for r in rows):
        mine = [r for r in rows if r["pair"] == pair]
        col = lambda key: [r[key] for r in mine if r.get(key) is not None]  # noqa: E731
        lines.append(
            f"| {pair} | {', '.join(str(r['rng_seed']) for r in mine)} "
            f"| {_mean_range([len(r['train_positions']) for r in mine], _int)}/"
            f"{_mean_range([len(r['heldout_positions']) for r in mine], _int)} "
            f"| {_mean_range(col('mined_triggers'), _int)} "
            f"| **{_mean_range(col('heldout_repaired_rate'), _pct)}** "
            f"| {_mean_range(col('accuracy_before'), _pct2)} → {_mean_range(col('accuracy_after'), _pct2)} "
            f"| {_mean_range(col('disagreements_before'), _int)} → "
            f"{_mean_range(col('disagreements_after'), _int)} "
            f"| {_mean_range(col('corrupted_disagreements_before'), _int)} → "
            f"{_mean_range(col('corrupted_disagreements_after'), _int)} "
            f"| {_mean_range(col('profile_share_before'), _pct)} → "
            f"{_mean_range(col('profile_share_after'), _pct)} "
            f"| {_mean_range(col('research_success_before'), _pct)} → "
            f"{_mean_range(col('research_success_after'), _pct)} "
            f"| {sum(r['verdict'] == 'better' for r in mine)} better, "
            f"{sum(r['verdict'] == 'worse' for r in mine)} worse "
            f"| {_mean_range(col('seconds'), lambda v: f'{v:.0f}')} |"
        )
    return lines


def _target_rows(rows: list[dict]) -> list[str]:
    names = list(_targets(rows[0]))
    lines = ["| pair | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for pair in dict.fromkeys(r["pair"] for r in rows):
        judged = [_targets(r) for r in rows if r["pair"] == pair]
        cells = []
        for name in names:
            judged_here = [j[name] for j in judged if j[name] is not None]
            met, vacuous = sum(judged_here), len(judged) - len(judged_here)
            note = f", {vacuous} with 0% before" if vacuous else ""
            if not judged_here:
                cells.append(f"says nothing (0% before in {vacuous}/{len(judged)})")
            else:
                cells.append(f"met ({met}/{len(judged_here)}{note})" if met == len(judged_here)
                             else f"**missed** ({met}/{len(judged_here)} met{note})")
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    return lines


def markdown(rows: list[dict], skipped: list[dict], meta: dict) -> str:
    from compd_core.repair import RepairSettings

    settings = RepairSettings()
    lines = [
        "# Repair benchmark (held-out triggers, clean and corrupted agreement, deviation profile)",
        "",
        "Written by `bench/repair.py`; every number below was measured by running it:",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"Machine: {meta['machine']}; {meta['finished']} of {meta['planned']} repairs finished; "
        f"{meta['minutes']:.0f} min of search and repair in all.",
        "",
        "## What was done",
        "",
        f"1. For each pair and each seed set (rng seed): a {meta['seeds']}-seed run of strategy "
        f"`compd` ({meta['budget']} queries per seed, the search's default criterion); its "
        "triggers are the repair's material, and mining uses the same criterion.",
        "2. `repair_run` with the default `RepairSettings` on every trigger: a seeded half is held "
        "out and never touches training, mining, checkpoint choice or stopping. A quarter of the "
        "other half (and of the deviations mined on training digits) is the validation part "
        "that picks the epoch; the rest is trained on.",
        "3. Judged on the served models (int8 as converted). A trigger is repaired when the "
        "compressed model now strictly gives the original's label on it (a tie is not a repair).",
        "4. Test numbers on the MNIST test split minus the seed images of the training triggers; "
        "corrupted: every corruption of `characterize` at severity 3 on the same images "
        "(18 copies of each).",
        "5. Re-search: the run's own search (strategy, budget, criterion, rng seed) on the same "
        "seeds, on both pairs: the share of seeds that still deviate.",
        "6. Deviation profile: the share of the run's seeds (minus those trained on) where strategy "
        "`compd` finds a strict deviation within L-inf 16/255 in 500 queries, before and after.",
        "",
        "Cells: mean over the seed sets (min–max).",
        "",
        "## Results",
        "",
        *_pair_rows(rows),
        "",
        "## Targets (per seed set)",
        "",
        *_target_rows(rows),
        "",
    ]
    if skipped:
        lines += ["Not repaired (too few triggers to split): " + ", ".join(
            f"{s['pair']} rng seed {s['rng_seed']} ({s['found']} triggers)" for s in skipped), ""]
    lines += ["## Reading the results", "", *meta.get("notes", []), "",
              "## Settings (RepairSettings defaults)", "", "| setting | value |", "|---|---|"]
    lines += [f"| {f.name} | {getattr(settings, f.name)} |" for f in fields(settings)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--budget", type=int, default=2000, help="queries per seed of the run")
    parser.add_argument("--rng-seeds", type=int, nargs="+", default=[0, 2, 3],
                        help="one seed set per value (the defaults were tuned on rng seed 1)")
    parser.add_argument("--pairs", nargs="*", default=list(PAIRS))
    parser.add_argument("--db", type=Path, default=ROOT / "out" / "repair.sqlite")
    parser.add_argument("--rows", type=Path, nargs="+", default=[ROOT / "out" / "repair-rows.jsonl"],
                        help="JSON-lines results: measurements go to the first; the table "
                             "reads them all (seed sets measured by separate processes)")
    parser.add_argument("--output", type=Path, default=ROOT / "REPAIR.md")
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from --rows")
    args = parser.parse_args()
    os.environ.setdefault("COMPD_USER_ZOO", str(ROOT / "out" / "pairs"))
    torch.set_num_threads(args.threads)
    command = (f"python -m bench.repair --threads {args.threads} --seeds {args.seeds} --budget "
               f"{args.budget} --rng-seeds {' '.join(map(str, args.rng_seeds))}")
    started = time.perf_counter()
    if not args.table_only:
        _measure(args)
    records = [json.loads(line) for path in args.rows
               for line in path.read_text().splitlines() if line.strip()]
    records.sort(key=lambda r: (args.pairs.index(r["pair"]) if r["pair"] in args.pairs
                                else len(args.pairs), r["rng_seed"]))
    rows = [r for r in records if not r.get("skipped")]
    skipped = [r for r in records if r.get("skipped")]
    meta = {"command": command, "notes": NOTES, "seeds": args.seeds, "budget": args.budget,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), torch "
                       f"{torch.__version__}, {args.threads} torch thread(s)",
            "finished": len(rows) + len(skipped), "planned": len(args.pairs) * len(args.rng_seeds),
            "minutes": sum(r.get("total_seconds", 0) for r in records) / 60
            if args.table_only else (time.perf_counter() - started) / 60}
    args.output.write_text(markdown(rows, skipped, meta))
    print(f"wrote {args.output}", file=sys.stderr)


def _measure(args: argparse.Namespace) -> None:
    from compd_core.campaign import CampaignSpec, run_campaign
    from compd_core.repair import repair_run
    from compd_core.search.settings import SearchSettings
    from compd_core.store import Store

    args.db.parent.mkdir(parents=True, exist_ok=True)
    rows_path = args.rows[0]
    rows_path.write_text("")
    with Store(args.db) as store:
        for rng_seed in args.rng_seeds:
            for pair_id in args.pairs:
                t0 = time.perf_counter()
                spec = CampaignSpec(pair=pair_id, strategy="compd", seeds=args.seeds,
                                    settings=SearchSettings(max_queries=args.budget),
                                    rng_seed=rng_seed)
                summary = run_campaign(spec, store)
                row: dict = {"pair": pair_id, "rng_seed": rng_seed, "found": summary.found,
                             "search_seconds": time.perf_counter() - t0}
                if summary.found < MIN_TRIGGERS:
                    row["skipped"] = True
                else:
                    row.update(asdict(repair_run(store, summary.run_id, register="never")))
                row["total_seconds"] = time.perf_counter() - t0
                with rows_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(f"{pair_id} rng {rng_seed}: {summary.found} triggers; " + ", ".join(
                    f"{k}={v}" for k, v in row.items()
                    if k not in ("train_positions", "heldout_positions")), flush=True)


if __name__ == "__main__":
    main()
