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


# What the tables cannot say; each number was measured (commands in the notes).
NOTES = [
    '- Finer blends, ranked by validation triggers left: the defaults of the rows above (`rank_by` '
    'triggers, `blend_shares` 0.05, 0.1, 0.15, 0.25, 0.35, 0.5), measured with the command above, '
    'one seed set per process (`--rng-seeds N`): set 0 alone, 40 min, beside the timing below and a '
    'profile script; sets 1 and 2 side by side, so the repair seconds include waiting for a core. '
    "The previous defaults were blends 10%, 25% and 50% of the way to each epoch's weights and, "
    'among the candidates no-rise allows, the one with the fewest validation failures (`--rank-by '
    'failures --blend-shares 0.1,0.25,0.5`); the previous version of this table was measured with '
    'them on the same runs (the searches are deterministic). Offering blends of 5, 10, 15, 25, 35 '
    'and 50% and keeping the candidate with the fewest validation triggers left (then the fewest '
    'failures) was first measured without the re-search and the profile (`python -m '
    'bench.repair_variants --pairs PAIR --variants rank-triggers+fine-blends --seeds 100 --rng-seed '
    'N`, N = 0-2, two processes side by side, the last half hour beside the repair tests; the '
    "previous defaults gave the previous table's held-out, test and corrupted numbers again on set "
    '0 of lenet5-int8-static and lenet1-int8-static), and the rows above came out the same. '
    'Held-out repaired, sets 0 / 1 / 2, previous defaults -> current ones: lenet5-int8-static 68.0 '
    '/ 70.0 / 80.0% -> 88.0 / 76.0 / 80.0% (mean 72.7 -> 81.3%); lenet5-int8-qat 81.2 / 83.0 / '
    '77.1% -> 83.3 / 91.5 / 89.6% (80.4 -> 88.1%); lenet1-int8-static 72.7 / 77.3 / 79.5% -> 84.1 / '
    '84.1 / 90.9% (76.5 -> 86.4%); lenet5-bf16 61.2 / 54.2 / 46.8% -> 71.4 / 58.3 / 85.1% (54.1 -> '
    '71.6%); lenet5-prune90 90.0 / 90.0 / 88.0% -> 88.0 / 90.0 / 88.0% (89.3 -> 88.7%: one trigger '
    'fewer in set 0); lenet5-distilled mean 94.7% -> 98.0 / 92.0 / 96.0% (95.3%). Test '
    'disagreements after, sets 0 / 1 / 2 (mean with the previous defaults): 4 / 3 / 3 of 6 (3.7), 7 '
    '/ 7 / 7 of 9 (6.7), 3 / 1 / 1 of 7 (2), 0 / 0 / 0 of 1 (0.3), 16 / 15 / 15 of 26 (15.7), 28 / '
    '32 / 32 of 36 (32.3). Corrupted test disagreements: 384 / 348 / 357 -> 230 / 208 / 214 (mean '
    '217.3, previous defaults 202.3), 528 / 575 / 587 -> 416 / 418 / 398 (410.7; 390), 774 / 759 / '
    '749 -> 327 / 308 / 295 (310; 301), 52 / 53 / 49 -> 41 / 45 / 55 (47; 41.3), 2,524 / 2,494 / '
    '2,471 -> 1,355 / 1,390 / 1,355 (1,366.7; 1,350.7), 3,932 / 3,890 / 3,916 -> 2,978 / 2,808 / '
    '2,840 (2,875.3; 2,781). Test accuracy drops by at most 0.05 points (5 digits: lenet5-bf16 in '
    'every set, lenet5-int8-qat sets 0 and 2) and rises by up to 0.31 (prune90). Verdicts: 17 '
    '`better`, 1 `worse`: lenet5-bf16 set 2 repaired 85.1% of its held-out triggers (46.8% before, '
    '`worse` for that) but its corrupted test disagreements rose 49 -> 55, which its 28,800 '
    'corrupted validation digits did not show. Held-out >= 90% is met in 6 of 18 repairs (distilled '
    'in all three sets, int8-qat set 1, lenet1-int8-static set 2, prune90 set 1) instead of 5 with '
    'the previous defaults; corrupted disagreements not higher is met in 17 of 18 instead of 18. '
    "The kept candidate was 10-50% of the way to an epoch's weights on the rounded models (15% in "
    'eight of twelve) and a whole epoch on the float ones. More held-out triggers repaired on every '
    'rounded pair, at a few more corrupted disagreements than the previous choice on every pair. '
    'Tried on set 0 and not kept (held-out repaired on lenet5-int8-static / lenet1-int8-static / '
    'lenet5-int8-qat / lenet5-bf16): the finer blends ranked by failures 88.0 / 72.7 / 91.7 / '
    '61.2%; ranking by triggers with the previous blends 68.0 / 72.7 / 93.8 / 61.2%; shares every '
    '5% from 5% to 50% ranked by triggers 88.0 / 84.1 / 83.3% (bf16 not measured), the same as the '
    "finer blends on the first two; and the float models' scaled changes (0.5, 0.75, 1.25, 1.5) on "
    'lenet5-int8-static (no trained candidate qualified: the grid alone kept, 0% held-out, `worse`) '
    'and lenet1-int8-static (72.7%, as without). With the re-search and the profile (the rows '
    "above), current defaults, sets 0 / 1 / 2 (mean; the previous defaults' mean from the previous "
    'table): the share of seeds with a strict deviation within L-inf 16/255 lenet5-int8-static 8.0 '
    '-> 8.0 / 12.0 -> 12.0 / 8.0 -> 8.0% (mean 9.3 -> 9.3%; previous 9.3 -> 9.3%); '
    'lenet1-int8-static 12.7 -> 14.5 / 14.5 -> 16.4 / 7.3 -> 7.3% (mean 11.5 -> 12.7%; previous '
    '11.5 -> 14.5%); lenet5-int8-qat 7.5 -> 9.4 / 7.5 -> 5.7 / 1.9 -> 1.9% (mean 5.7 -> 5.7%; '
    'previous 5.7 -> 5.7%); lenet5-bf16 5.9 -> 3.9 / 5.8 -> 3.8 / 1.9 -> 0.0% (mean 4.5 -> 2.6%; '
    'previous 4.5 -> 2.6%); lenet5-prune90 9.8 -> 2.0 / 4.0 -> 2.0 / 14.0 -> 10.0% (mean 9.3 -> '
    '4.7%; previous 9.3 -> 4.7%); lenet5-distilled 18.0 -> 2.0 / 12.0 -> 4.0 / 16.0 -> 4.0% (mean '
    '15.3 -> 3.3%; previous 15.3 -> 3.3%), so the profile target is met in 6 of 18 repairs (6 of 18 '
    "with the previous defaults); re-search success, in the same order (the previous defaults' mean "
    'in parentheses): 100.0 -> 98.0 / 100.0 -> 100.0 / 100.0 -> 100.0% (100.0 -> 100.0%); 80.0 -> '
    '92.7 / 80.0 -> 94.5 / 80.0 -> 98.2% (80.0 -> 97.6%); 90.6 -> 94.3 / 88.7 -> 84.9 / 90.6 -> '
    '90.6% (89.9 -> 89.3%); 96.1 -> 60.8 / 92.3 -> 69.2 / 88.7 -> 39.6% (92.4 -> 74.3%); 98.0 -> '
    '98.0 / 100.0 -> 100.0 / 100.0 -> 98.0% (99.3 -> 98.7%); 100.0 -> 100.0 / 100.0 -> 100.0 / '
    '100.0 -> 100.0% (100.0 -> 100.0%); verdicts 17 `better`, 1 `worse`; repairs with the re-search '
    "and the profile took 136-442 s. The four deviations lenet5-int8-static's profile counts within "
    '16/255 are on the same four seeds before and after its repair (a script outside the repository '
    "that records the profile's triggers, set 0): all at 15-16/255, where the original itself is "
    "unsure (its margin for the seed's label 0.006-0.064 before, 0.016-0.058 after), and the "
    'repaired model answers otherwise by 0.023-0.034 in probability instead of 0.112-0.170. The '
    "strict criterion counts a deviation however small the compressed model's margin, so a repair "
    "that weakens the deviations at the original's own decision boundary without removing them "
    'leaves the profile where it was. A blend is now counted only as far as it can still be kept: '
    'its validation triggers first, then its clean digits, then its corrupted ones, each count '
    'stopped once the candidate can no longer qualify or win (`BestCheckpoint.consider`), which '
    'keeps the same candidate (`tests/unit/test_repair_split.py` checks it against full counts on '
    "lenet5-prune90's models and real digits, and the four repairs timed gave the same numbers "
    'either way). Timed in one process beside set 0 of the benchmark above (`python -m '
    'bench.repair_variants --pairs lenet1-int8-static lenet5-int8-qat --variants defaults '
    'previous-choice --seeds 100 --rng-seed 0`, then the same with `--full-counts`): '
    "lenet1-int8-static's default repair took 55 s (80 s counting every candidate in full; the "
    "previous defaults 46 s and 58 s) and lenet5-int8-qat's 60 s (132 s; the previous defaults 86 s "
    'and 98 s). The finer blends thus cost no more than the previous defaults did, and they are the '
    'defaults.',
    "- Where the rounded pairs' triggers lie, and what the repair does where the original is sure. "
    "At the run's triggers the original's margin for the seed's label (its probability for that "
    "label minus the next class's, read from the runs' stored triggers) is tiny on the rounded "
    "pairs: median over each run's triggers, sets 0 / 1 / 2, lenet5-int8-static 0.006 / 0.008 / "
    '0.005, lenet1-int8-static 0.013 / 0.010 / 0.016, lenet5-bf16 0.002 / 0.002 / 0.002 and '
    'lenet5-int8-qat 0.031 / 0.034 / 0.043, against lenet5-prune90 0.549 / 0.501 / 0.504 and '
    'lenet5-distilled 0.876 / 0.899 / 0.930. Triggers with a margin of 0.1 or more, of 89-100 a '
    'run: 0 / 1 / 2, 1 / 0 / 0, 0 / 0 / 0 and 23 / 24 / 22, against 89 / 90 / 88 and 100 / 98 / 96. '
    'The boundary probes find the closest deviations, and on a rounded model those lie where the '
    'original itself is nearly undecided. The same repairs on runs whose criterion asks the '
    "original to stay sure (the search's `--min-margin-original 0.1`; mining uses the run's "
    'criterion; `python -m bench.repair_variants --pairs PAIR --variants defaults --seeds 100 '
    '--rng-seed N --min-margin-original 0.1`, N = 0-2, two processes side by side), held-out '
    'repaired, sets 0 / 1 / 2: lenet5-int8-static 96.4 / 0.0 / 96.4% of 28 each (56-57 triggers; in '
    'set 1 no trained candidate qualified, the grid alone was kept, `worse`), lenet5-int8-qat 92.5 '
    '/ 100.0 / 97.5% of 40-41 (80-82 triggers), lenet1-int8-static 100.0 / 90.0 / 100.0% of 12 / 10 '
    '/ 11 (20-24 triggers); test disagreements 6 -> 5 / 3 / 4, 9 -> 5 / 4 / 7 and 7 -> 1 / 1 / 3; '
    'corrupted 397 -> 216, 356 -> 198 and 393 -> 201; 588 -> 442, 565 -> 389 and 600 -> 381; 744 -> '
    '269, 778 -> 298 and 784 -> 283; test accuracy from 0.05 points lower to 0.1 higher; 8 '
    '`better`, 1 `worse`. lenet5-bf16 has no such deviation: 0 of 100 seeds in each set. With 0.2, '
    'lenet5-int8-static found 0 / 0 / 1 triggers and lenet1-int8-static 0 / 1 / 0, too few to '
    'split, and lenet5-int8-qat 36 on set 0, whose repair fixed all 18 held-out ones (test 9 -> 8, '
    'corrupted 587 -> 366). So the held-out target the rounded pairs miss under the default '
    'criterion is missed at triggers where the original itself is unsure; where it is sure, the '
    'same repair fixes at least 90% in 8 of 9 int8 repairs. The deviation profile of a repair now '
    'counts deviations with the margins its run asked for. With it and the re-search, set 0 '
    '(`--variants with-research --min-margin-original 0.1`), the share of seeds with such a '
    'deviation within L-inf 16/255 (500 queries) went 1.4 -> 2.8% on lenet5-int8-static (1 -> 2 of '
    '72 seeds), 3.4 -> 1.1% on lenet1-int8-static (3 -> 1 of 88) and 3.4 -> 6.8% on lenet5-int8-qat '
    '(2 -> 4 of 59); re-search success 38.9 -> 40.3%, 13.6 -> 17.0% and 67.8 -> 39.0%; repairs of '
    '336-423 s. Deviations with a sure original are rare within 16/255 on these pairs before any '
    'repair, so there the profile target rests on 1-4 seeds.',
    '- The validation share and the weight of cross-entropy, on set 0 of the four rounded pairs '
    '(`python -m bench.repair_variants --pairs PAIR --variants validation0.1 validation0.15 ce2 '
    '--seeds 100 --rng-seed 0`, two processes side by side). Held-out repaired, test and corrupted '
    'disagreements on lenet5-int8-static / lenet5-int8-qat / lenet1-int8-static / lenet5-bf16, '
    "against the defaults' 88.0% 6 -> 4 384 -> 230 / 83.3% 9 -> 7 528 -> 416 / 84.1% 7 -> 3 774 -> "
    '327 / 71.4% 1 -> 0 52 -> 41: a tenth of the training triggers kept for validation instead of a '
    'quarter, 88.0% 6 -> 5 384 -> 217 / 91.7% 9 -> 4 528 -> 422 / 84.1% 7 -> 1 774 -> 351 / 67.3% 1 '
    '-> 0 52 -> 53 (`worse`); 15%, 68.0% 6 -> 2 384 -> 183 / 85.4% 9 -> 6 528 -> 350 / 77.3% 7 -> 4 '
    '774 -> 350 / 71.4% 1 -> 0 52 -> 48; cross-entropy weight 2, 70.0% 6 -> 3 384 -> 191 / 83.3% 9 '
    '-> 8 528 -> 444 / 84.1% 7 -> 2 774 -> 322 / 69.4% 1 -> 1 52 -> 52. A tenth gains on int8-qat '
    'and loses on bf16, where it is `worse`; 15% loses on three pairs. Neighbouring settings move '
    "one seed set's held-out share by up to 20 points, so none was adopted.",
    '- Boundary-probe triggers (the lenet5-int8-static, -int8-qat, lenet1-int8-static and '
    'lenet5-bf16 rows). Since `compd` sends boundary probes first on PyTorch pairs whose compressed '
    'model has an approximating stand-in (bench/RESULTS.md, "Boundary probes"), the run\'s triggers '
    "of these four pairs are probes' deviations: closer to their seeds (median L2 about 1.9 instead "
    "of 3.2) and next to the original's own decision boundary. A repair mines its training "
    'deviations with `compd` without the probes (`MINING_PARAMETERS` in '
    "compd_core/repair/mining.py): the probes' second of stand-in work per mined seed made these "
    "repairs take 452-1,613 s instead of 59-217 s. The previous table's four rows (the previous "
    'epoch choice, first note) were that default, measured with the command above (`--pairs '
    'lenet5-int8-static lenet5-int8-qat` and `--pairs lenet1-int8-static lenet5-bf16`, two '
    'processes side by side on the AMD EPYC machine, the first hour beside other benchmarks and '
    "tests, so the repair seconds were not comparable with its other rows'); its lenet5-prune90 and "
    '-distilled rows stood (guided steps, unchanged). Held-out repaired, sets 0 / 1 / 2: 68.0 / '
    '70.0 / 80.0%, 81.2 / 83.0 / 77.1%, 72.7 / 77.3 / 79.5% and 61.2 / 54.2 / 46.8%; 11 `better` '
    'and 1 `worse` (lenet5-bf16 set 2: 46.8% held-out, under the 50% the verdict asks, though its '
    'test disagreements fell 1 -> 0 and corrupted ones 49 -> 35). Mined deviations: 437, 365, 292 '
    'and 421 of 512 seeds (with the probes 508, 475, 415 and 457). Before, mining with the probes '
    'too (the rows of the previous stop): held-out repaired 56.7% (90.0 / 80.0 / 0.0%), 84.6% (87.5 '
    '/ 80.9 / 85.4%), 75.0% (75.0 / 70.5 / 79.5%) and 68.1% (61.2 / 75.0 / 68.1%); test '
    'disagreements 6 -> 3.3, 9 -> 7.3, 7 -> 1, 1 -> 0.7; corrupted 363 -> 195, 563 -> 386, 761 -> '
    '322, 51 -> 36; 10 `better`, 2 `worse` (lenet5-int8-static set 2, where no trained candidate '
    'qualified and the model before training was kept, 0% held-out; lenet5-bf16 set 0, test '
    "disagreements 1 -> 2). With squares' mined deviations instead, held-out repair rose on "
    'lenet5-int8-static (56.7 -> 72.7%; no set keeps the model before training now, but set 0 fell '
    '90.0 -> 68.0%) and lenet1-int8-static (75.0 -> 76.5%) and fell on int8-qat (84.6 -> 80.4%) and '
    'bf16 (68.1 -> 54.1%); none of the 12 repairs adds a test disagreement. Before the probes, with '
    "squares' triggers and squares' mining, the four rows read: held-out repaired 80.3% "
    '(75.0-87.8%), 84.1% (75.0-97.6%), 75.2% (66.7-89.7%) and 70.0% (67.3-73.9%); test '
    'disagreements 6 -> 3.7, 9 -> 6.7, 7 -> 1.7, 1 -> 0; corrupted 373 -> 205, 574 -> 376.7, 760.7 '
    '-> 297, 51.7 -> 46.3; the profile share within 16/255 5.2 -> 6.5%, 3.4 -> 4.0%, 5.4 -> 14.0%, '
    "6.4 -> 3.2%; all 12 `better`. The probes' triggers are harder to repair: against squares' "
    'triggers the held-out share fell on three of the four pairs, and the profile, which probes '
    'now, counts more seeds within 16/255 on the three int8 pairs, before and after the repair.',
    "- The int8 head's output grid (the lenet5-int8-static, lenet5-int8-qat and lenet1-int8-static "
    "rows). An int8 model's head output is quantized and dequantized at once into the logits. "
    "Calibrated on min and max, lenet5-int8-static's head spends its 256 levels on logits from -25 "
    "to 63, a step of 0.34, while at the held-out triggers the original's two top classes are 0.03 "
    'apart in probability (median), about 0.07 in logits: near a decision two classes round to one '
    'level and the served model ties. After a default repair without the grid, 23 of the 25 '
    'held-out triggers it left unrepaired on lenet5-int8-static (set 0) and 19 of 20 on '
    'lenet1-int8-static were exact ties (a tie is not a repair). So an int8-static or -QAT repair '
    "now first narrows the head's grid to the logits where the top-1 is decided on its teacher "
    'digits (from the lowest top logit to the highest runner-up, widened to hold 0; `head_grid`, '
    '`--no-head-grid` to keep the served grid): steps 0.34 -> 0.047, 0.39 -> 0.041 and 0.30 -> '
    '0.047 on the three pairs, all 256 levels, the same int8 kernels. The grid is kept only when, '
    'alone, it adds no clean or corrupted validation disagreements to the model as served '
    '(otherwise the repair trains the head as served and says so); the twin then trains with it, '
    "the converted model serves it, and the grid alone is epoch 0's candidate, which no other "
    'candidate may add validation disagreements to. The grid alone, before any training, took test '
    '/ corrupted disagreements on the 10,000 test digits (every corruption at severity 3) from 6 / '
    '385 to 4 / 198 on lenet5-int8-static, 7 / 791 to 2 / 332 on lenet1-int8-static and 9 / 569 to '
    '9 / 459 on lenet5-int8-qat (`tests/unit/test_head_grid.py` checks fewer on 5,000 digits). With '
    'it, the three rows of the table of then (the same command, `--pairs lenet5-int8-static` and '
    '`--pairs lenet1-int8-static lenet5-int8-qat` in two processes side by side, 8 and 13 min), '
    'against the rows without it (commit 29ac3b6, next note): lenet5-int8-static 80.3% held-out '
    'repaired (75.0 / 78.0 / 87.8%) instead of 30.7%, test disagreements 6 -> 3.7 instead of -> '
    '5.3, corrupted 373 -> 205 instead of -> 374, `better` three times instead of `worse` twice and '
    '`unchanged` once; lenet1-int8-static 75.2% (66.7 / 69.2 / 89.7%) instead of 42.5%, test 7 -> '
    '1.7 instead of -> 5.3, corrupted 761 -> 297 instead of -> 696, `better` three times instead of '
    'once; lenet5-int8-qat 84.1% (75.0 / 97.6 / 79.5%) instead of 83.3%, corrupted 574 -> 377 '
    'instead of -> 474, but test 9 -> 6.7 instead of -> 5, `better` three times either way. The '
    'deviation profile and the re-search went the other way: the share of seeds with a strict '
    'deviation within L-inf 16/255 5.2 -> 6.5% (lenet5-int8-static; it stayed at 5.2% without the '
    'grid), 5.4 -> 14.0% (lenet1-int8-static; 3.8% without) and 3.4 -> 4.0% (int8-qat; 2.3% '
    "without), and lenet1-int8-static's re-search found deviations on 97.3% of its seeds instead of "
    '61.7%. These are inputs where the original itself is unsure: `compd` on 60 class-balanced test '
    'digits (500 queries, a script outside the repository) of lenet1-int8-static found strict '
    'deviations within 64/255 on 24 seeds as served and on 49 with the narrowed grid alone, with '
    "the original's margin at a median 0.030 and 0.024 and at least 0.1 on one trigger either way "
    '(lenet5-int8-static: 54 and 57 seeds, medians 0.037 and 0.048, 1 and 4 at least 0.1). Where '
    'the served grid ties, the strict criterion sees no deviation and the search no gradient of the '
    'answer; the narrowed grid answers there, so the search finds the deviations the ties hid, at '
    "the original's own decision boundary. Training is as before: each kept candidate was 10% of "
    "the way to an epoch's weights (epochs 2-12) on the int8-static pairs and 25% (epochs 3-4) on "
    'QAT. At first the model as served bounded every candidate and the grid alone lay far below it; '
    'ranking the qualifying candidates by validation triggers left first (`--rank-by triggers`, '
    'then the fewest failures) spent that room on repairs. The same command with it: '
    'lenet5-int8-static 97.9% held-out repaired (97.9 / 100 / 95.9%), test 6 -> 3.3, but corrupted '
    '373 -> 343 (363 -> 240, 376 -> 385, 380 -> 405), so `worse` in sets 1 and 2 (the validation '
    'digits did not show the rise); lenet1-int8-static 93.9% (97.2 / 87.2 / 97.4%), test 7 -> 5.3, '
    'corrupted 761 -> 592, `better` three times; lenet5-int8-qat 91.1% (87.5 / 90.5 / 95.5%), test '
    '9 -> 5.7, corrupted 574 -> 458, `better` three times; the kept candidates were 25-50% of the '
    "way to an epoch's weights. So no-rise now bounds each candidate by the grid alone's clean and "
    'corrupted validation disagreements (epoch 0, kept only when no higher than the served '
    "model's): training never gives back on validation what the grid alone gained. The default rows "
    'of then came out the same with that bound, seed set for seed set (the same command at commits '
    '23aa991 and 80731e6). With it, `--rank-by triggers` (`python -m bench.repair_variants --pairs '
    'PAIR --variants rank-triggers --seeds 100 --rng-seed N`, N = 0-2, through a patch outside the '
    'repository with the bound of commit 23aa991, the fewer of each count of the served model and '
    "the grid alone, which was the grid alone's in all nine): lenet5-int8-static 85.1% held-out "
    "repaired (87.5 / 82.0 / 85.7%) against the default's 80.3%, test 6 -> 3.7, corrupted 373 -> "
    '201.3 (default 205); lenet1-int8-static 72.7% (66.7 / 69.2 / 82.1%) against 75.2%, test 7 -> '
    '2.0, corrupted 761 -> 308 (default 297); lenet5-int8-qat 92.0% (87.5 / 92.9 / 95.5%) against '
    '84.1%, test 9 -> 5.3 (default 6.7), corrupted 574 -> 428.3 (default 376.7), accuracy 97.86 -> '
    '97.75% in set 1; all nine `better`, none adding test or corrupted disagreements. On float '
    'pairs, where epoch 0 is the model as served, nothing changes but the ranking: lenet5-prune90 '
    'set 0 88.0% (default 90.0%), lenet5-bf16 set 0 69.4% (default 67.3%). More held-out repairs on '
    'two pairs, fewer on two, more corrupted disagreements on QAT: the fewest failures stay the '
    'default, and `--rank-by triggers` (the Repair page\'s "Among the epochs it may keep, prefer") '
    'is a choice that no longer adds disagreements in these nine repairs. On the Fashion-MNIST '
    'ResNet int8 pairs the grid alone is mixed (their 2,000 test images and every corruption at '
    'severity 3, a script outside the repository): resnet-fashion-int8-static test disagreements 21 '
    '-> 21, corrupted 1,693 -> 1,542, accuracy 92.45 -> 92.25%; resnet-fashion-int8-qat test 68 -> '
    "71, corrupted 4,852 -> 4,789. Their twins differ from the served models' top-1 on 16 and 11 of "
    'the 2,000 images (none on the LeNets). `python -m bench.repair_variants --pairs '
    'resnet-fashion-int8-static --variants defaults no-head-grid --seeds 40 --rng-seed 0`: with the '
    'grid, no trained candidate qualified and the grid alone was kept (epoch 0): 0% of the held-out '
    'triggers repaired, test disagreements 21 -> 21, corrupted 1,661 -> 1,504, accuracy 92.38 -> '
    '92.18%, so `worse` (under the 50% held-out asked); without it the model was kept as served, '
    '`unchanged`. The same on resnet-fashion-int8-qat: with the grid kept whatever the grid alone '
    'did, 85.0% of 20 held-out triggers repaired, test 68 -> 37, corrupted 4,796 -> 2,263, but '
    'accuracy 91.97 -> 91.52%, so `worse`; without it 85.0%, test 68 -> 28, corrupted 4,796 -> '
    '2,091, accuracy 91.97 -> 92.07%, `better`. There the grid alone added validation disagreements '
    '(clean 48 -> 51, corrupted 3,919 -> 3,915), and the candidates trained with it were still '
    'kept, as they added none to the model as served. So the grid is now dropped before training '
    'when, alone, it adds clean or corrupted validation disagreements to the model as served (the '
    "report's `head_grid_dropped`, and its words say so): the defaults then gave "
    'resnet-fashion-int8-qat the run without the grid, number for number (85.0%, 68 -> 28, 4,796 -> '
    '2,091, `better`), and resnet-fashion-int8-static the same as before (its grid alone adds none: '
    '`worse`, 0%); the nine LeNet int8 rows of then came out the same.',
    "- Guided triggers and scaled changes (the lenet5-prune90 and lenet5-distilled rows). `compd`"
    " finds the triggers of the two float pairs with guided gradient steps (bench/RESULTS.md, "
    "\"Guided first steps on float pairs\"): at median L2 about 1.45 instead of 2.9, so the "
    "repair's material and its held-out triggers are other, closer ones. A repair of a distilled "
    "or pruned model now also learns each training trigger's change from its seed at 0.5, 0.75, "
    "1.25 and 1.5 times (`change_scales`, kept where the original still gives the seed's label; "
    "about 1,040 of 1,670 kept on prune90, 1,380 of 1,680 on distilled). Both rows were measured "
    "with it, with the same command and defaults (`--pairs lenet5-prune90` and `--pairs "
    "lenet5-distilled` in two processes side by side on an AMD EPYC machine, 2 cores; 10 and 8 "
    "min). lenet5-distilled: held-out repaired 94.7% (96 / 92 / 96% in sets 0 / 1 / 2), test "
    "disagreements 36 -> 32.3, corrupted 3,913 -> 2,781, the share of seeds with a deviation "
    "within L-inf 16/255 15.3% -> 3.3%, halved in every set: every target met in all three sets, "
    "the only pair where that holds. lenet5-prune90: held-out repaired 89.3% (90 / 90 / 88%), so "
    "the 90% target is met in two sets of three; test disagreements 26 -> 15.7, corrupted 2,496 "
    "-> 1,351, test accuracy 97.64 -> 97.93%, the profile share 9.3% -> 4.7%, halved in sets 0 "
    "and 1 (9.8 -> 2.0%, 4.0 -> 2.0%; 14.0 -> 10.0% in set 2). All six `better`. Without the "
    "scaled changes (the same command at commit f557c37): distilled 94.0% (98 / 92 / 92%), test "
    "36 -> 33, corrupted -> 2,939, profile -> 4.0%; prune90 88.7% (90 / 90 / 86%), test 26 -> 18 "
    "in each set, corrupted -> 1,424, profile -> 5.3% (halved in set 0 only). So the scaled "
    "changes lower clean and corrupted disagreements in all six repairs and repair as many "
    "held-out triggers or one more. On the rounded models they did not help "
    "(`bench.repair_variants`, set 0): lenet5-int8-static went from 47.9% held-out repaired "
    "(`worse`) to no candidate qualifying (`unchanged`), lenet1-int8-static from 44.4% to 30.6% "
    "(`worse` both), lenet5-bf16 from 69.4% to 63.3% (test 1 -> 0 became 1 -> 1), lenet5-int8-qat"
    " from 65.0% to 72.5% but corrupted 570 -> 487 became 570 -> 519; so they are the default of "
    "float models only. On the Fashion-MNIST ResNet (`python -m bench.repair_variants --pairs "
    "PAIR --variants defaults no-change-scales --seeds 40 --rng-seed 0`, guided triggers): "
    "resnet-fashion-distilled 100% of 20 held-out triggers repaired either way, test "
    "disagreements 176 -> 128 with the scaled changes and 176 -> 137 without, corrupted 9,761 -> "
    "6,625 and -> 6,871, accuracy 87.58 -> 89.34% and -> 88.99%; resnet-fashion-prune90 95% "
    "either way, test 158 -> 107 and -> 108, corrupted 9,624 -> 5,754 and -> 5,971, accuracy "
    "89.19 -> 90.15% and -> 90.20%; all four `better`. After repair the guided search needs more "
    "queries to find what is left: the re-search's median queries rose from 7-8 to 12-155 on "
    "prune90 and from 6-7 to 9-14.5 on distilled. A first measurement at commit e75529f, before "
    "the engine fix of commit f557c37 (a chain whose last guided step was taken goes back to its "
    "seed before its square moves), gave 86.7% (84-90%) and 95.3% (92-100%) held-out repaired "
    "without scaled changes: the fix changes the mining searches on training digits whose guided "
    "steps find nothing (prune90's mining now finds 507 deviations instead of 505), so those "
    "repairs trained on other material.",
    '- Settings tried on the guided triggers of lenet5-prune90 (`python -m bench.repair_variants '
    '--pairs lenet5-prune90 --variants ... --seeds 100 --rng-seed N`, no re-search; held-out '
    'repaired of 50 triggers, before the scaled changes were a default): the defaults 90.0% in sets '
    '0 and 1; 32 epochs 88.0% (set 0; with 24 the last epoch was kept), 1,024 mined seeds 84.0%, lr '
    '1e-3 88.0%. An adversarial agreement term (a script outside the repository that adds, for the '
    'teacher digits of each batch, the repair loss on the same digits moved up the compressed '
    "model's cross-entropy against the original's label by 2 L2 steps of total length 1.5, labelled "
    'by the original): 88.0% (set 0) and 86.0% (set 1); 3 steps of total length 3.0: 86.0% (set 0); '
    'test disagreements 26 -> 16-17, all `better`. None repaired more held-out triggers than the '
    'defaults, so none was adopted. The 5 held-out triggers of set 0 that the defaults leave '
    'unrepaired are ones where the original is not sure (its margin 0.10-0.31), and the repaired '
    'model misses each by a margin of 0.09-0.20. With 50 held-out triggers a set, one trigger is 2 '
    'points: a repair that fixes 90% of such triggers on average lands under 90% in a given set '
    'with probability 0.38 (binomial), one that fixes 95% with probability 0.04. With the scaled '
    'changes as defaults, on seed sets 3 and 4, which no setting was chosen on (`python -m '
    'bench.repair_variants --pairs lenet5-prune90 --variants defaults wide-change-scales variants16 '
    'teacher60 --seeds 100 --rng-seed N`, two processes side by side): the defaults repaired 92.0 '
    'and 96.0% of held-out triggers (test 26 -> 17 and 16, corrupted 2,438 -> 1,322 and 2,461 -> '
    '1,361); scales 0.25-2.0 (six) and 16 variants per trigger repaired exactly as many (16 '
    'variants: test 26 -> 14 and 15, corrupted -> 1,239 and 1,230, the fewest of all; wider scales '
    '-> 1,302 and 1,312); a teacher share of 0.6 repaired 90.0 and 96.0% with more disagreements '
    '(test 21 and 18, corrupted 1,492 and 1,532). All `better`. None repaired more held-out '
    'triggers, so none was adopted. 16 variants per trigger on seed sets 0-2 of the three float '
    'LeNet-5 pairs (`--variants variants16`, against the rows of then, the previous epoch choice): '
    'lenet5-distilled 95.3% held-out repaired (96 / 94 / 96%) against 94.7%, test 36 -> 31.0 '
    'against 32.3, corrupted -> 2,513 against 2,781, accuracy 97.26% against 97.20%, all `better`; '
    'lenet5-prune90 88.0% (84 / 90 / 90%) against 89.3% (90 / 90 / 88%), test 26 -> 14.3 against '
    '15.7, corrupted -> 1,251 against 1,351, all `better`; lenet5-bf16 70.2% (53.1 / 79.2 / 78.3%) '
    'against 70.0%, but test disagreements 1 -> 1 in sets 1 and 2 (1 -> 0 with 8) and corrupted 53 '
    '-> 59 in set 2, so `worse` once. Fewer clean and corrupted disagreements on the distilled and '
    "pruned models, fewer held-out repairs on prune90's set 0 and on bf16's: 8 stay the default.",
    '- Which run: the tables above are three seed sets (rng seeds 0, 1 and 2, 100 seeds each) with '
    "the defaults listed at the end and the search's default criterion (L-inf 64/255), all 18 "
    'repairs with the same code, on an AMD EPYC machine (AVX-512 VNNI; first note). Before the '
    "narrowed head grid (the int8 head's note), the lenet5-int8-static, -int8-qat and "
    'lenet1-int8-static rows were measured at commit 29ac3b6 (the engine of commit db01706, where a '
    'shrinking round keeps the closest of its deviating candidates), in two processes side by side '
    '(`--pairs`, `--rng-seeds`, `--db` and `--rows` of each, then `--table-only` over the rows '
    'files), on a machine whose int8 kernels give slightly other results: held-out repaired 30.7% '
    '(0 / 42 / 50%), 83.3% (77.5 / 90.5 / 81.8%) and 42.5% (25.0 / 38.5 / 64.1%), test '
    'disagreements 6 -> 5.3, 9 -> 5 and 7 -> 5.3, corrupted 373.7 -> 374.3, 574 -> 473.7 and 761.3 '
    '-> 695.7, the profile share 5.2 -> 5.2%, 3.4 -> 2.3% and 5.4 -> 3.8%, verdicts 0 / 3 / 1 '
    '`better`, 2 / 0 / 2 `worse` and 1 / 0 / 0 `unchanged`. The epoch choice was tuned on 80-seed '
    'runs with rng seed 0 of lenet5-int8-static and lenet1-int8-static, and the number of epochs, '
    "bf16's learning rate and the finer blends on these seed sets (next notes), so those are not "
    'held-out measurements of the defaults.',
    "- 24 epochs for distilled and pruned models, 16 for the others. A student or a pruned model "
    "is float, so no weight a repair moves is rounded again and longer training crosses no "
    "rounding step. `python -m bench.repair --threads 1 --seeds 100 --budget 2000 --rng-seeds 0 1"
    " 2` with 24 epochs for every pair (two processes, three pairs each, on an otherwise idle "
    "machine), against the rows of 16 epochs, sets 0 / 1 / 2: lenet5-distilled held-out repaired "
    "92.0 / 86.0 / 86.0% -> 98.0 / 92.0 / 96.0%, test disagreements 36 -> 33 / 36 / 35 -> 32 / 33"
    " / 34, corrupted 3,913 -> 3,728 -> 2,912 on average, the profile share 14.7 -> 15.3% -> "
    "8.7%, `better` three times either way; lenet5-prune90 94.0% each -> 94.0 / 96.0 / 94.0%, "
    "test 16 / 17 / 16 -> 15 / 15 / 14, corrupted 1,492 -> 1,402 on average, `better` three times"
    " either way. The rounded models keep 16: lenet5-int8-static 50.0 / 42.0 / 0.0% -> 39.6 / "
    "46.0 / 53.1%, but corrupted disagreements rose in sets 1 and 2 (377 -> 387, 380 -> 384; with"
    " 16 only in set 0), three times `worse`; lenet5-bf16 67.3 / 68.8 / 73.9% -> 77.6 / 81.2 / "
    "80.4%, but `worse` in sets 1 and 2 (test 1 -> 2 and corrupted 50 -> 53; corrupted 53 -> 61);"
    " lenet5-int8-qat 77.5 / 90.5 / 81.8% -> 80.0 / 92.9 / 86.4%, `better` three times either "
    "way; lenet1-int8-static 25.0 / 38.5 / 64.1% -> 36.1 / 35.9 / 64.1%, the same verdicts "
    "(`worse`, `worse`, `better`), the test disagreements of set 1 7 -> 8 -> 6. Then on seed sets"
    " 3 and 4, which the choice had not seen (`python -m bench.repair_variants --pairs PAIR "
    "--variants epochs16 epochs24 --seeds 100 --rng-seed N`, no re-search), 16 -> 24 epochs: "
    "lenet5-distilled 78.0 / 92.0% -> 94.0 / 94.0%, corrupted 3,926 -> 3,634 / 2,913 and 3,993 ->"
    " 3,654 / 3,324; lenet5-prune90 94.0 / 100.0% -> 96.0 / 100.0%, test 26 -> 17 / 15 and 26 -> "
    "16 / 16, corrupted 2,438 -> 1,465 / 1,396 and 2,461 -> 1,523 / 1,421; lenet5-int8-qat 89.1 /"
    " 78.6% -> 78.3 / 78.6%, all `better`. So int8-qat, better with 24 on sets 0-2, was not on "
    "sets 3 and 4, and keeps 16. On lenet1-distilled (sets 0-2, `--variants epochs16 epochs24`): "
    "88.0 / 90.0 / 86.0% -> 84.0 / 92.0 / 90.0%, test 48 -> 42 / 46 / 45 -> 42 / 41 / 39, "
    "corrupted 3,828 -> 3,296 -> 3,112, 3,837 -> 3,313 -> 3,177 and 3,838 -> 3,323 -> 3,139, "
    "`better` six times. On the Fashion-MNIST ResNet (40 seeds, set 0, the same command): "
    "resnet-fashion-distilled 95.0% -> 90.0% held-out (19 and 18 of 20), test 176 -> 153 -> 143, "
    "corrupted 9,761 -> 7,212 -> 6,986, accuracy 87.58 -> 88.18 -> 88.79%; resnet-fashion-prune90"
    " 90.0% either way, test 158 -> 121 -> 106, corrupted 9,627 -> 6,150 -> 5,847, accuracy 89.19"
    " -> 89.95 -> 90.25%; `better` four times.",
    "- bf16's own learning rate, 2e-5 instead of 5e-4 (Adam moves every weight by about the "
    "learning rate per step; the median bf16 rounding step of lenet5-bf16's weights is 2.4e-4, "
    "the median int8 step of lenet5-int8-static's 1.6e-3). `python -m bench.repair_variants "
    "--pairs lenet5-bf16 --variants lr5e-4 lr5e-5 lr2e-5 --seeds 100 --rng-seed N` for N = 0-4 "
    "(no re-search; sets 3 and 4 were measured after 2e-5 and 5e-5 were the candidates, as a "
    "check on seeds the choice had not seen). Held-out repaired and verdicts, sets 0 / 1 / 2 / 3 "
    "/ 4: lr 5e-4 0% and `unchanged` in all five (every trained candidate added validation "
    "disagreements); lr 1e-4 (set 0 only) 83.7%, `worse` (corrupted 52 -> 56); lr 5e-5 81.6 / "
    "91.7 / 80.4 / 77.6 / 79.2%, `better`, `better`, `worse`, `worse`, `worse` (corrupted 53 -> "
    "63, 58 -> 60, 55 -> 59); lr 2e-5 67.3 / 68.8 / 73.9 / 63.3 / 62.5%, `better` in all five, "
    "test disagreements 1 -> 0 in all five and corrupted down in all five (52 -> 48, 50 -> 42, 53"
    " -> 49, 58 -> 47, 55 -> 54). The kept candidate was 10% of the way to an epoch's weights in "
    "every one of them. The rate was chosen on lenet5-bf16; on other bf16 pairs (`--variants "
    "lr2e-5 lr5e-4`): lenet1-bf16, sets 0 / 1 / 2, 63.8 / 69.4 / 65.3% held-out repaired but "
    "corrupted disagreements 39 -> 45, 43 -> 59 and 37 -> 41, so `worse` three times (with 5e-4 "
    "`unchanged`, 0%, three times); resnet-fashion-bf16 (40 seeds, set 0) `unchanged` with 2e-5. "
    "Also measured and not kept: a stand-in that rounds every weight and activation to bf16 as "
    "the served kernels do (straight-through gradients; within 4e-7 of the served probabilities "
    "on all 10,000 test digits, where the float32 copy of the bf16 weights that repair trains is "
    "up to 0.015 off). It repaired fewer held-out triggers at lr 5e-5 (73.5 / 81.2 / 76.1% "
    "against 81.6 / 91.7 / 80.4%, all three `worse`), and the gradient strategy found as many "
    "deviations with it (lenet5-bf16 20 against 18 of 100 seeds, lenet1-bf16 16 against 18). "
    "Smaller steps do not help the int8 pairs (set 0, `--variants lr1e-4 lr2e-4 lr5e-4`): "
    "lenet5-int8-static 0% `unchanged` with 1e-4, 31.2% `worse` with 2e-4 (held-out under the 50%"
    " asked; test 6 -> 4, corrupted 364 -> 361), 50.0% `worse` with 5e-4; lenet1-int8-static "
    "33.3% `worse` (test 7 -> 9), 41.7% `worse` (7 -> 5, 768 -> 735) and 25.0% `worse`. Offering "
    "a 75% blend as well (`blends+0.75`) left lenet5-int8-qat's choice as it was (epoch 14, 50% "
    "of the way; 77.5%). A stricter `no-rise` that asks the corrupted validation disagreements to"
    " fall by at least their square root (about one Poisson standard deviation; a script outside "
    "the repository that replaces the rule under `bench.repair_variants`, the defaults otherwise)"
    " kept the same candidates on set 0 of lenet5-int8-static (50.0%, corrupted 364 -> 369, "
    "`worse`), lenet1-int8-static, lenet5-int8-qat and lenet5-bf16; on lenet1-bf16 it turned set "
    "0 into 46.8% with 39 -> 37 (`worse`: under the 50% asked) and set 1 into `unchanged`. Not "
    "adopted.",
    "- Against the previous three-set run (commit 1b14de4 plus the 16-epoch default; the same "
    "seeds and settings, but its shrinking kept the first deviating candidate of a round, so its "
    "triggers were farther from their seeds). Held-out repaired, in the order int8-static, "
    "int8-qat, prune90, distilled, bf16, lenet1-int8-static: 0 / 89.7 / 98.0 / 94.7 / 0 / 45.2% "
    "then, 30.7 / 83.3 / 94.0 / 88.0 / 0 / 42.5% with the closer triggers (bf16 at the learning "
    "rate of then; 70.0% with its own). Verdicts: 10 better, 2 worse and 6 unchanged then, 10 "
    "better, 4 worse and 4 unchanged with the closer triggers (lenet5-int8-static went from "
    "`unchanged` three times to `worse` twice and `unchanged` once). Profile halved in 4 of 18 "
    "then, 2 of 18 now. The closer triggers are a harder test: the held-out share fell on four "
    "pairs.",
    "- 16 epochs instead of 8, on the previous run's searches (`python -m bench.repair_variants "
    "--pairs PAIR --variants defaults epochs16 --seeds 100 --rng-seed N`, no re-search; the "
    "searches are deterministic, so its runs were those). Held-out repaired with 8 -> 16 epochs, "
    "sets 0 / 1 / 2: lenet5-int8-qat 75.0 / 92.9 / 77.3% -> 87.5 / 92.9 / 88.6%, `better` in all "
    "six; lenet5-distilled 88.0 / 84.0 / 98.0% -> 98.0 / 90.0 / 96.0%, with 8 epochs `worse` in "
    "sets 0 and 2 (test disagreements 36 -> 37 and 36 -> 40), with 16 `better` in all three; "
    "lenet5-prune90 94 / 94 / 98% -> 96 / 98 / 100%, `better` in all six. On set 0 only: "
    "lenet5-int8-static and lenet5-bf16 `unchanged` with both; lenet1-int8-static 38.9% -> 30.6%,"
    " `worse` with both. Also tried on set 0 and not adopted: lr 1e-3 (int8-qat 92.5%, but "
    "distilled `worse`, 36 -> 38, and int8-static `unchanged`), lr 1e-3 with 16 epochs (distilled"
    " 100%, 36 -> 29, but int8-qat 42.5% and `worse`), lr 2e-3 (int8-qat 62.5%), 1,024 mined "
    "seeds (int8-qat 77.5%, distilled 84.0%), 16 variants per trigger (int8-qat 77.5%, distilled "
    "`worse`), and training only the biases of lenet5-int8-static (no int8 weight is rounded "
    "again; lr 3e-3 and 1e-2 `unchanged`, 3e-2 58.3% held-out but a test disagreement more): its "
    "1,600 clean validation digits have no disagreement before training, and with lr 3e-3 and "
    "1e-2 every trained candidate added clean or corrupted validation disagreements.",
    "- SGD with momentum 0.9 instead of Adam (Adam moves every weight by about the learning rate,"
    " also weights with a tiny gradient, and each int8 weight that crosses a rounding boundary is"
    " a change of its own), on set 0 of the previous run's searches, otherwise the defaults, with"
    " a script outside the repository that swaps the optimizer under `bench.repair_variants`. "
    "lenet5-int8-static: lr 1e-3 `unchanged` (every candidate added validation disagreements, "
    "corrupted 351 -> 406-599); lr 1e-2 and 1e-1 diverged (1,418 of 1,600 clean validation digits"
    " disagreed after the first epoch); lr 3e-3 repaired 66.7% of held-out triggers, test "
    "disagreements 6 -> 4, accuracy +0.11 points, but corrupted test disagreements 364 -> 369, so"
    " `worse` (the first int8-static repair here that lowered test disagreements). Its neighbours"
    " on lenet5-int8-static: lr 2e-3 `unchanged`; lr 5e-3 33.3% held-out, test 6 -> 4, corrupted "
    "364 -> 372, `worse`; lr 3e-3 with a teacher share of 0.9 52.1%, test 6 -> 7, corrupted 364 "
    "-> 394, `worse`. So lr 3e-3 is a narrow spot, not a trend. With lr 3e-3 on "
    "lenet1-int8-static: 41.7% held-out (Adam: 30.6%), test 7 -> 5, corrupted 768 -> 732, `worse`"
    " (held-out under the 50% threshold); on lenet5-int8-qat: 72.5% held-out (Adam: 87.5%), test "
    "9 -> 3, `better`. Mixed, on one seed set: not adopted.",
    "- A box on the int8 weights (each fake-quant weight clamped after every Adam step to within "
    "k of its own channel's int8 step from where it started, so a served weight moves by at most "
    "one or two levels; a script outside the repository that wraps the training loop's optimizer "
    "under `bench.repair_variants`), set 0 of the current searches, otherwise the defaults. "
    "Held-out repaired, test and corrupted disagreements, lenet5-int8-static then "
    "lenet1-int8-static (defaults: 50.0%, 6 -> 5, 364 -> 369 and 25.0%, 7 -> 5, 768 -> 725, both "
    "`worse`): k 0.25: 37.5%, 6 -> 7, 364 -> 341 and 47.2%, 7 -> 7, 768 -> 753; k 0.5: 33.3%, 6 "
    "-> 5, 364 -> 341 and 36.1%, 7 -> 6, 768 -> 736; k 1: 33.3%, 6 -> 5, 364 -> 347 and 50.0%, 7 "
    "-> 7, 768 -> 778; k 1.5: `unchanged` and 47.2%, 7 -> 7, 768 -> 709. All `worse` but the "
    "`unchanged` one. The box lowers corrupted disagreements on lenet5 (the whole-epoch "
    "candidates still add 130-330 corrupted validation disagreements) but repairs fewer held-out "
    "triggers there; the candidates that repaired most validation triggers added one disagreement"
    " on the 1,600 clean validation digits, which had none before. Not adopted.",
    "- Training only the last layer of the int8 models (every other weight frozen, so only the "
    "head's int8 weights are rounded again; a script outside the repository that sets "
    "`requires_grad` under `bench.repair_variants`), set 0, otherwise the defaults, on a machine "
    "whose CPU (AMD EPYC, AVX-512 VNNI) gives slightly other int8 results than the one of the "
    "table, so the defaults were run there too. Held-out repaired, test and corrupted "
    "disagreements, lenet5-int8-static then lenet1-int8-static: defaults 47.9%, 6 -> 5, 363 -> "
    "373 and 44.4%, 7 -> 4, 768 -> 727; head only, lr 5e-4: 6.2%, 6 -> 6, 363 -> 370 and 16.7%, 7"
    " -> 3, 768 -> 638; head only, lr 2e-3: 25.0%, 6 -> 6, 363 -> 383 and 27.8%, 7 -> 6, 768 -> "
    "614. All `worse`: the head alone repairs far fewer held-out triggers. Not adopted.",
    '- Missed: held-out triggers repaired >= 90% is met in 6 of 18 repairs: lenet5-distilled in all '
    'three sets (95.3%, 92-98%), lenet5-int8-qat set 1 (88.1%, 83.3-91.5%), lenet1-int8-static set '
    '2 (86.4%, 84.1-90.9%) and lenet5-prune90 set 1 (88.7%, 88-90%; 94.7% in all three with the '
    'farther square triggers of an earlier engine); lenet5-int8-static (81.3%, 76-88%) and '
    'lenet5-bf16 (71.6%, 58.3-85.1%) miss it in every set. 17 of 18 repairs are `better`, 1 `worse` '
    '(lenet5-bf16 set 2: first note). Test disagreements fell in every repair (26 -> 15.3, 36 -> '
    '30.7, 9 -> 7, 6 -> 3.3, 7 -> 1.7, 1 -> 0 on average); corrupted ones fell in 17 of 18 (2,496 '
    '-> 1,367, 3,913 -> 2,875, 563 -> 411, 363 -> 217, 761 -> 310 on average; lenet5-bf16 51.3 -> '
    '47, with set 2 49 -> 55). lenet5-bf16 is repaired with its own learning rate (with 5e-4 it was '
    '`unchanged` in all three sets, 0%). Test accuracy drops by at most 0.05 points and rises by up '
    'to 0.31 (prune90). The profile target (share within L-inf 16/255 at most half of before) is '
    'met in 6 of 18 repairs (prune90 sets 0 and 1, distilled in all three, bf16 set 2); on average '
    'the share fell on prune90 (9.3 -> 4.7%), distilled (15.3 -> 3.3%) and bf16 (4.5 -> 2.6%), '
    'stayed on lenet5-int8-static (9.3%) and int8-qat (5.7%) and rose on lenet1-int8-static (11.5 '
    "-> 12.7%), where the narrowed head grid answers at the original's own decision boundary "
    "instead of tying (the int8 head's note), and the deviations the profile still finds after an "
    "int8 repair are at that boundary (first note). Under the default criterion the rounded pairs' "
    'triggers are where the original itself is unsure (median margin 0.002-0.043); on runs that ask '
    'it to stay sure (`--min-margin-original 0.1`) the int8 repairs meet the 90% in 8 of 9 (second '
    'note).',
    '- Which held-out triggers stay unrepaired on the int8-static pairs (seed set 0, the '
    'default repair: `python -m bench.repair_variants --pairs PAIR --variants defaults '
    '--seeds 100 --rng-seed 0`, through a script outside the repository that reads the '
    "repaired pair's probabilities at the held-out triggers): lenet5-int8-static leaves 12 of"
    ' 48 unrepaired (75.0%) and lenet1-int8-static 12 of 36 (66.7%), as in the rows of squares\' triggers (first note). At'
    " all 24 the original itself is unsure: its margin for the seed's label is 0.002-0.081 "
    '(median 0.025) and 0.001-0.086 (median 0.012), against a median of 0.031 and 0.040 at '
    'the triggers repaired. 4 and 8 of the 24 are exact ties of the repaired model (a tie is '
    'not a repair); the others miss by 0.022-0.132 and 0.014-0.047 in probability (five of '
    "lenet5-int8-static's by the same 0.023). On these pairs the 90% target asks the repaired"
    ' int8 model to decide as the original does within a few hundredths of probability, on '
    "the original's own decision boundary.",
    "- The previous three-seed-set run (commit b17e0c6: 8 epochs, and the engine before idle "
    "square moves took the other sign, so other triggers): held-out repaired 32.6 / 77.2 / 94.0 /"
    " 73.3 / 0 / 43.0% (int8-static, int8-qat, prune90, distilled, bf16, lenet1); verdicts 10 "
    "better, 4 worse, 4 unchanged; test disagreements rose in 1 of 18 (distilled 36 -> 37), "
    "corrupted in 1 of 18 (int8-static 365 -> 366).",
    "- The same day at commit 3866341, before blended candidates existed (otherwise the same "
    "defaults; the same command, a separate database): 5 of 6 pairs `unchanged`; lenet5-prune90 "
    "`better` (94.0% held-out, test disagreements 26 -> 15, corrupted 2524 -> 1690).",
    "- Earlier three-seed-set run (rng seeds 0, 2, 3; commit f520aaa: no distance budget in the "
    "search's criterion, and the epoch with the fewest validation failures kept, judged on 1,000 "
    "clean digits and 1,000 corrupted copies). Held-out repaired (mean) and test / corrupted "
    "disagreements before -> after: lenet5-int8-static 76.0%, 6 -> 11, 377 -> 776; "
    "lenet5-int8-qat 81.5%, 9 -> 10.3, 555 -> 830; lenet5-prune90 66.0%, 26 -> 16.3, 2448 -> "
    "1629; lenet5-distilled 70.0%, 36 -> 40.3, 3936 -> 3433; lenet5-bf16 87.3%, 1 -> 10.7, 53 -> "
    "715; lenet1-int8-static 75.2%, 7 -> 11.3, 771 -> 1149. Verdicts: 3 better (prune90), 15 "
    "worse.",
    "- Tuning (`python -m bench.repair_variants --seeds 80 --rng-seed 0 --variants ...`, "
    "lenet5-int8-static 39/39 triggers, lenet1-int8-static 31/30; no re-search). Held-out "
    "repaired, test disagreements, corrupted disagreements (of 180,000): the earlier defaults "
    "(fewest failures, small validation set) 94.9%, 6 -> 9, 391 -> 762 and 80.0%, 7 -> 14, 738 ->"
    " 1219 (both `worse`); the defaults of then (8 epochs) 0.0%, 6 -> 6, 391 -> 391 (`unchanged`)"
    " and 53.3%, 7 -> 6, 738 -> 669 (`better`); the same with `--ce-weight 0` (KL to the original"
    " only) 33.3%, 6 -> 6, 391 -> 373 and 36.7%, 7 -> 5, 738 -> 612 (more repaired on lenet5, "
    "fewer on lenet1: not the default); `no-rise` without blends 0% on both (`unchanged`).",
    "- What failed on the int8 pairs (validation counts of every epoch, lenet1-int8-static, 1,000"
    " clean digits and 18,000 corrupted ones, 2 and 369 disagreements before training): every "
    "trained epoch added disagreements whatever the update size. lr 2e-4, 5e-5, 2e-5 and 1e-5: "
    "486-658 corrupted and 4-9 clean after every epoch; a 95% teacher share: 485-646; an L2-SP "
    "anchor (`--anchor-weight` 0.1 and 1): 544-756, with 6-9 clean; cross-entropy weight 0.25: "
    "420-494. Only KL to the original's probabilities without cross-entropy stayed near the start"
    " (363-403 corrupted, 2-4 clean) while leaving 46-59 of the 76 validation triggers unrepaired"
    " (8-36 with cross-entropy). So the update's size is not what adds disagreements; the hard "
    "labels of the triggers are, and a step that goes only part of the way (a blend of the "
    "starting and the trained weights, Wortsman et al., CVPR 2022) is what lets some triggers be "
    "repaired without adding any.",
    "- Ranking the qualifying candidates by validation triggers first (instead of all failures) "
    "repaired more held-out triggers on lenet1-int8-static (43.3%; with shares 0.05-0.5, 63.3%) "
    "but added test disagreements the validation digits did not show (7 -> 8, 7 -> 9), so the "
    "default ranks by all failures (the first note measures ranking by triggers again, with "
    "finer blends).",
    "- The int8 twin trains what is served: converting the untrained fake-quant twin gives the "
    "served model exactly (0 of 20,000 test and corrupted digits differ, all three int8 pairs), "
    "and the twin's own float outputs differ from the served model's top-1 on 3 (lenet5 "
    "int8-static), 1 (int8-qat) and 1 (lenet1) of 20,000; every candidate is judged as served "
    "(converted), so this mismatch does not reach the choice.",
    "- The validation digits are noisy where disagreements are rare: on lenet5-int8-static the "
    "1,600 clean validation digits have 0 disagreements before training, so a single new one "
    "disqualifies a candidate; with 1,000 (and 18,000 corrupted) KL-only training kept an epoch "
    "with 35.9% held-out, 6 -> 4, 391 -> 374, but on lenet1 the small set let an epoch through "
    "that added a test disagreement (7 -> 8).",
    "- Mining the training deviations within the profile's budget (L-inf 16/255 instead of "
    "the run's 64/255, 512 training digits, 500 queries each; a script outside the "
    'repository that wraps `mine_triggers` under `bench.repair_variants` with the '
    're-search and profile on): lenet5-prune90 set 2 mined 63 deviations instead of 507, '
    'held-out repaired 68.0% (default 88.0%), test disagreements 26 -> 21 (default 15-16 '
    'in the three sets), profile share 14.0 -> 14.0% (default 14.0 -> 10.0%); '
    'lenet5-int8-static set 0 mined 30 instead of 437, no trained candidate qualified (the '
    'grid alone kept, 0% held-out, `worse`), profile 3.9 -> 7.8% as with the default. Too '
    'few close deviations to learn from: not adopted.',
]


def _targets(r: dict) -> dict[str, bool | None]:
    """The repair targets, judged for one repair; None where a target says nothing (a profile
    share of 0% before repair cannot be halved)."""
    return {
        # Compare counts: rows measured before agreement_rate divided counts hold float32
        # shares (45 of 50 reads 0.8999999762), and --table-only reads such rows again.
        "held-out >= 90%": round(r["heldout_repaired_rate"] * len(r["heldout_positions"]))
        >= HELDOUT_TARGET * len(r["heldout_positions"]) - 1e-9,
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
            f"{sum(r['verdict'] == 'worse' for r in mine)} worse, "
            f"{sum(r['verdict'] == 'unchanged' for r in mine)} unchanged "
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


RANKED_BY = {"failures": "the fewest validation failures",
             "triggers": "the fewest validation triggers left (then the fewest failures)"}


def _shares(shares: tuple[float, ...]) -> str:
    """0.05, 0.1, 0.5 -> '5%, 10% and 50%' (the blends a repair offers)."""
    named = [f"{100 * v:g}%" for v in shares]
    return ", ".join(named[:-1]) + f" and {named[-1]}" if len(named) > 1 else "".join(named)


def markdown(rows: list[dict], skipped: list[dict], meta: dict) -> str:
    from compd_core.repair import RepairSettings
    from compd_core.repair.settings import CHANGE_SCALE_DEFAULTS, EPOCH_DEFAULTS, HEAD_GRID_DEFAULTS, LR_DEFAULTS

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
        "other half and of the deviations mined on training digits, plus 1,600 held-back "
        "training digits (a fifth of the 8,000) with every corruption at severity 3 (28,800 "
        "images), is the validation "
        "part; the rest is trained on. The candidates are the model before training, each "
        f"epoch's weights, and {_shares(settings.blend_shares)} of the way from the starting "
        "weights to each epoch's; a candidate that disagrees with the original on more clean or "
        "more corrupted validation digits than the model before training is never kept "
        f"(`checkpoint` `{settings.checkpoint}`), and of the rest the one with "
        f"{RANKED_BY[settings.rank_by]} is. When no trained candidate qualifies the model is "
        "kept as it was and the verdict is `unchanged`.",
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
    shown = {f.name: getattr(settings, f.name) for f in fields(settings)}
    shown["lr"] = LR_DEFAULTS if settings.lr is None else settings.lr
    shown["epochs"] = EPOCH_DEFAULTS if settings.epochs is None else settings.epochs
    shown["change_scales"] = (CHANGE_SCALE_DEFAULTS if settings.change_scales is None
                              else settings.change_scales)
    shown["head_grid"] = HEAD_GRID_DEFAULTS if settings.head_grid is None else settings.head_grid
    lines += [f"| {name} | {value} |" for name, value in shown.items()]
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
