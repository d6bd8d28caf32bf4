"""Repair settings compared on the same runs: which variant repairs more held-out triggers
without adding disagreements?

For each pair: one run of strategy ``compd`` (reused from the database when it exists), then
``repair_run`` with each named variant of ``RepairSettings`` (the defaults with a few fields
changed; no re-search, nothing registered). Mining depends only on the pair, the repair seed
and the mining settings, so its deviations are searched once per pair and reused by every
variant (kept in a file next to the database). Both depend on the search code, so a folder
whose runs and deviations another version of it searched is refused (``SEARCH_CODE``). One
JSON line per finished repair.

Run from the repository root:
    python -m bench.repair_variants --pairs lenet5-int8-static --variants defaults lr2e-4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from compd_core.repair.settings import BLEND_SHARES

ROOT = Path(__file__).resolve().parent

# Name -> RepairSettings fields that differ from the defaults.
DENSE_BLENDS = tuple(round(0.05 * k, 2) for k in range(1, 11))  # every 5% from 5% to 50%
PREVIOUS_BLENDS = (0.1, 0.25, 0.5)  # the default blends before BLEND_SHARES

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "lr2e-4": {"lr": 2e-4},
    "epochs4": {"epochs": 4},
    "teacher90": {"mix_ratio": 0.9},
    "anchor0.01": {"anchor_weight": 0.01},
    "anchor0.1": {"anchor_weight": 0.1},
    "anchor1": {"anchor_weight": 1.0},
    "no-rise+anchor0.1": {"checkpoint": "no-rise", "anchor_weight": 0.1},
    "no-rise+lr2e-4": {"checkpoint": "no-rise", "lr": 2e-4},
    "no-rise+lr5e-5": {"checkpoint": "no-rise", "lr": 5e-5},
    "no-rise+lr2e-5": {"checkpoint": "no-rise", "lr": 2e-5},
    "no-rise+lr1e-5": {"checkpoint": "no-rise", "lr": 1e-5},
    "no-rise+teacher95": {"checkpoint": "no-rise", "mix_ratio": 0.95},
    "no-rise+kl-only": {"checkpoint": "no-rise", "ce_weight": 0.0},
    "no-rise+lr5e-5+teacher95": {"checkpoint": "no-rise", "lr": 5e-5, "mix_ratio": 0.95},
    "no-rise+lr2e-5+epochs16": {"checkpoint": "no-rise", "lr": 2e-5, "epochs": 16},
    "no-rise+ce0.25": {"checkpoint": "no-rise", "ce_weight": 0.25},
    "no-rise+ce0.5": {"checkpoint": "no-rise", "ce_weight": 0.5},
    "no-rise+T1": {"checkpoint": "no-rise", "temperature": 1.0},
    "no-rise+ce0.25+T1": {"checkpoint": "no-rise", "ce_weight": 0.25, "temperature": 1.0},
    "no-rise+kl-only+T1": {"checkpoint": "no-rise", "ce_weight": 0.0, "temperature": 1.0},
    "no-rise+kl-only+T1+lr1e-3": {"checkpoint": "no-rise", "ce_weight": 0.0, "temperature": 1.0,
                                  "lr": 1e-3},
    "no-rise+kl-only+T1+mix0.5": {"checkpoint": "no-rise", "ce_weight": 0.0, "temperature": 1.0,
                                  "mix_ratio": 0.5},
    "no-rise+kl-only+T1+epochs16": {"checkpoint": "no-rise", "ce_weight": 0.0, "temperature": 1.0,
                                    "epochs": 16},
    "no-rise+ce0.1+T1": {"checkpoint": "no-rise", "ce_weight": 0.1, "temperature": 1.0},
    "no-rise": {"checkpoint": "no-rise"},
    "fewest": {"checkpoint": "fewest"},
    "no-blends": {"blend_shares": ()},
    "fine-blends": {"rank_by": "failures", "blend_shares": BLEND_SHARES},
    "blends+0.75": {"blend_shares": (0.1, 0.25, 0.5, 0.75)},
    "fewest+no-blends": {"checkpoint": "fewest", "blend_shares": ()},
    "kl-only": {"ce_weight": 0.0},
    "kl-only+T1": {"ce_weight": 0.0, "temperature": 1.0},
    "mined1024": {"mined_seeds": 1024},
    "lr1e-3": {"lr": 1e-3},
    "lr5e-4": {"lr": 5e-4},  # every pair's default before bf16 got its own
    "lr1e-4": {"lr": 1e-4},
    "lr5e-5": {"lr": 5e-5},
    "lr2e-5": {"lr": 2e-5},
    "epochs16": {"epochs": 16},
    "epochs24": {"epochs": 24},
    "epochs32": {"epochs": 32},
    "no-change-scales": {"change_scales": ()},
    "wide-change-scales": {"change_scales": (0.25, 0.5, 0.75, 1.25, 1.5, 2.0)},
    "change-scales": {"change_scales": (0.5, 0.75, 1.25, 1.5)},  # the float models' default
    "teacher60": {"mix_ratio": 0.6},
    "no-head-grid": {"head_grid": False},
    "rank-failures": {"rank_by": "failures"},
    "rank-triggers": {"rank_by": "triggers", "blend_shares": PREVIOUS_BLENDS},
    "previous-choice": {"rank_by": "failures", "blend_shares": PREVIOUS_BLENDS},  # the defaults before the finer blends
    "dense-blends": {"rank_by": "failures", "blend_shares": DENSE_BLENDS},
    "rank-triggers+dense-blends": {"rank_by": "triggers", "blend_shares": DENSE_BLENDS},
    "rank-triggers+fine-blends": {"rank_by": "triggers", "blend_shares": BLEND_SHARES},  # the defaults, spelled out
    "variants16": {"variants_per_trigger": 16},
    "lr2e-3": {"lr": 2e-3},
    "lr1e-3+epochs16": {"lr": 1e-3, "epochs": 16},
    "validation0.1": {"validation_fraction": 0.1},
    "validation0.15": {"validation_fraction": 0.15},
    "ce2": {"ce_weight": 2.0},
    "with-research": {"research": True},  # the defaults, with the re-search and the profile
}


SEARCH_CODE = ("compd_core/search", "compd_core/mutations", "compd_core/models")
FINGERPRINT_FILE = "search-code.sha1"


def search_fingerprint() -> str:
    """A hash of the code that decides which triggers a run and the mining find."""
    digest = hashlib.sha1()
    for folder in SEARCH_CODE:
        for path in sorted((ROOT.parent / folder).rglob("*.py")):
            digest.update(path.relative_to(ROOT.parent).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def check_folder(folder: Path) -> None:
    """Refuse a folder whose runs or mined deviations another version of the search code
    found: reusing them would compare repairs on other triggers than this code finds."""
    marker = folder / FINGERPRINT_FILE
    current = search_fingerprint()
    searched = any(folder.glob("*.sqlite")) or any(folder.glob("mined-*.pkl"))
    if searched and (not marker.exists() or marker.read_text().strip() != current):
        raise SystemExit(f"{folder} holds runs or mined deviations of other search code than this "
                         "checkout's; pass a --db in a fresh folder")
    marker.write_text(current + "\n")


def _compact(result):
    """A mined result with its own small tensors: a seed image is a view of the whole training
    split, which pickle would otherwise copy once per result."""
    seed = replace(result.seed, image=result.seed.image.clone())
    trigger = replace(result.trigger, image=result.trigger.image.clone(),
                      probs_original=result.trigger.probs_original.clone(),
                      probs_compressed=result.trigger.probs_compressed.clone())
    return replace(result, seed=seed, trigger=trigger, chain=[], trace=[])


def _cached_mining(cache: Path):
    """``mine_triggers`` that searches once per (pair, count, queries, seed, criterion margin)
    and then reads a file."""
    from compd_core.repair import run as repair_module

    search = repair_module.mine_triggers

    def mine(pair, dataset, count, settings, rng_seed, stop):
        margin = settings.criterion.min_margin_original
        sure = f"-sure{margin:g}" if margin else ""  # the default criterion keeps its old names
        path = cache / f"mined-{pair.name}-{count}-{settings.max_queries}-{rng_seed}{sure}.pkl"
        if path.exists():
            return pickle.loads(path.read_bytes())
        found = [_compact(r) for r in search(pair, dataset, count, settings, rng_seed, stop)]
        path.write_bytes(pickle.dumps(found))
        return found

    repair_module.mine_triggers = mine


def _full_counts() -> None:
    """Count every candidate on all its validation images, as before candidates were counted
    only as far as they could still be kept: the same choice, to time what that saves."""
    from compd_core.repair import checkpoint

    def consider(self, epoch, compressed, validation, model, share=1.0):
        return self.offer(epoch, validation.counts(compressed), model, share)

    checkpoint.BestCheckpoint.consider = consider


def _logged_checkpoints() -> None:
    """Print every candidate's validation counts, to see why one was or was not kept (every
    candidate counted in full, or those out early would not be printed)."""
    from compd_core.repair import checkpoint

    _full_counts()
    offer = checkpoint.BestCheckpoint.offer

    def logged(self, epoch, counts, model, share=1.0):
        kept = offer(self, epoch, counts, model, share)
        print(f"  epoch {epoch} share {share:g}: {counts}{' kept' if kept else ''}",
              file=sys.stderr, flush=True)
        return kept

    checkpoint.BestCheckpoint.offer = logged


def table(rows: list[dict]) -> str:
    """One markdown line per (pair, variant): the last measurement of each."""
    last = {(r["pair"], r["variant"]): r for r in rows}
    lines = ["| pair | variant | triggers (train/held-out) | held-out repaired | test accuracy | "
             "test disagreements | corrupted disagreements | epoch kept | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (pair, name), r in last.items():
        held = r.get("heldout_count") or min(max(round(r["triggers"] * 0.5), 1), r["triggers"] - 1)
        lines.append(
            f"| {pair} | {name} | {r['triggers'] - held}/{held} "
            f"| {100 * r['heldout_repaired_rate']:.1f}% "
            f"| {100 * r['accuracy_before']:.2f}% → {100 * r['accuracy_after']:.2f}% "
            f"| {r['disagreements_before']} → {r['disagreements_after']} "
            f"| {r['corrupted_disagreements_before']} → {r['corrupted_disagreements_after']} "
            f"| {r['best_epoch']} of {r['epochs_run']} | {r['verdict']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["lenet5-int8-static", "lenet1-int8-static"])
    parser.add_argument("--variants", nargs="+", default=["defaults"], choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, default=80)
    parser.add_argument("--budget", type=int, default=2000, help="queries per seed of the run")
    parser.add_argument("--rng-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="print the table of --rows and stop")
    parser.add_argument("--log-epochs", action="store_true",
                        help="print every candidate's validation counts (implies --full-counts)")
    parser.add_argument("--full-counts", action="store_true",
                        help="count every candidate on all its validation images (the same "
                             "choice, slower: to time what counting only as far as needed saves)")
    parser.add_argument("--min-margin-original", type=float, default=0.0,
                        help="the run's (and so the mining's) criterion: how sure the original "
                             "must stay of the seed's label, e.g. 0.2 (default 0: strict only)")
    parser.add_argument("--db", type=Path, default=ROOT / "out" / "repair-variants.sqlite")
    parser.add_argument("--rows", type=Path, default=ROOT / "out" / "repair-variants.jsonl")
    args = parser.parse_args()
    os.environ.setdefault("COMPD_USER_ZOO", str(ROOT / "out" / "pairs"))
    torch.set_num_threads(args.threads)
    if args.table:
        print(table([json.loads(line) for line in args.rows.read_text().splitlines() if line]))
        return

    from compd_core.campaign import CampaignSpec, run_campaign
    from compd_core.repair import RepairSettings, repair_run
    from compd_core.search.criterion import Criterion
    from compd_core.search.settings import SearchSettings
    from compd_core.store import Store

    args.db.parent.mkdir(parents=True, exist_ok=True)
    check_folder(args.db.parent)
    _cached_mining(args.db.parent)
    if args.log_epochs:
        _logged_checkpoints()
    elif args.full_counts:
        _full_counts()
    with Store(args.db) as store:
        for pair_id in args.pairs:
            search_settings = SearchSettings(max_queries=args.budget, criterion=Criterion(
                min_margin_original=args.min_margin_original))
            spec = CampaignSpec(pair=pair_id, strategy="compd", seeds=args.seeds,
                                settings=search_settings, rng_seed=args.rng_seed)
            runs = [r for r in store.list_runs() if r.pair == pair_id
                    and r.rng_seed == args.rng_seed and r.seed_count == args.seeds
                    and r.settings == search_settings and r.status == "finished"]
            run_id = runs[0].id if runs else run_campaign(spec, store).run_id
            for name in args.variants:
                settings = replace(RepairSettings(research=False), **VARIANTS[name])
                t0 = time.perf_counter()
                report = asdict(repair_run(store, run_id, settings, register="never"))
                row = {"pair": pair_id, "variant": name, "rng_seed": args.rng_seed,
                       "min_margin_original": args.min_margin_original,
                       "seeds": args.seeds, "seconds": time.perf_counter() - t0,
                       "heldout_count": len(report["heldout_positions"]),
                       **{k: v for k, v in report.items()
                          if k not in ("train_positions", "heldout_positions")}}
                with args.rows.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(f"{pair_id} {name}: held-out {row['heldout_repaired_rate']:.1%}, "
                      f"test {row['disagreements_before']} -> {row['disagreements_after']}, "
                      f"corrupted {row['corrupted_disagreements_before']} -> "
                      f"{row['corrupted_disagreements_after']}, accuracy "
                      f"{row['accuracy_before']:.2%} -> {row['accuracy_after']:.2%}, best epoch "
                      f"{row['best_epoch']} share {row.get('best_share')}, {row['verdict']}, {row['seconds']:.0f} s",
                      file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
