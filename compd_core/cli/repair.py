"""``compd repair``: fine-tune a run's compressed model on its triggers, report before/after."""

from __future__ import annotations

from pathlib import Path

import typer

from compd_core.cli.common import out, print_json, seed_option, warn_changed_files
from compd_core.cli.stoppable import exit_stopped, run_job
from compd_core.pair_spec import PairSpec
from compd_core.paths import default_db_path
from compd_core.errors import ConfigError
from compd_core.repair.report import RepairReport, kept_words, training_words, unrepaired_words
from compd_core.repair.settings import (CHANGE_SCALE_DEFAULTS, EPOCH_DEFAULTS, HEAD_GRID_DEFAULTS, LR_DEFAULTS,
                                       RepairSettings, number_list)

DEFAULTS = RepairSettings()


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _number(value: float | None, fmt: str = ".0f") -> str:
    return "—" if value is None else format(value, fmt)


def repair(
    run: str = typer.Option(..., "--run", help="The run whose triggers to repair on (`compd runs list`)."),
    db: Path = typer.Option(None, "--db", help="Results database (default ./compd.sqlite or $COMPD_DB)."),
    selection: str = typer.Option(
        None, "--selection",
        help="A hand-picked selection of the run; default: its default selection, else every trigger.",
    ),
    epochs: int = typer.Option(
        None, help=f"Most passes over the trigger set, the best epoch kept (default: {EPOCH_DEFAULTS})."),
    lr: float = typer.Option(None, help=f"Adam learning rate (default: {LR_DEFAULTS})."),
    batch_size: int = typer.Option(DEFAULTS.batch_size, help="Images per step, triggers and teacher images together."),
    mix_ratio: float = typer.Option(DEFAULTS.mix_ratio, help="Teacher-image share of each batch, in [0, 0.99]."),
    variants: int = typer.Option(DEFAULTS.variants_per_trigger,
                                 help="Label-preserving variants made around each training trigger."),
    change_scales: str = typer.Option(
        None,
        help="Comma-separated scales of each training trigger's change from its seed, also "
             f"learned where the original keeps the seed's label ('' for none; default: "
             f"{CHANGE_SCALE_DEFAULTS})."),
    head_grid: bool = typer.Option(
        None, "--head-grid/--no-head-grid",
        help="Narrow the int8 head's output grid to the logits where its top-1 is decided, so "
             "that close classes do not round to a tie; dropped before training when the narrowed "
             f"grid alone adds validation disagreements (default: {HEAD_GRID_DEFAULTS})."),
    mined_seeds: int = typer.Option(DEFAULTS.mined_seeds,
                                    help="Training digits searched for more deviations to learn from (0: none)."),
    heldout_fraction: float = typer.Option(DEFAULTS.heldout_fraction,
                                           help="Share of the triggers held out to judge the repair."),
    validation_fraction: float = typer.Option(
        DEFAULTS.validation_fraction, help="Share of the training triggers kept to pick the epoch."),
    ce_weight: float = typer.Option(DEFAULTS.ce_weight, help="Weight of cross-entropy on the original's labels."),
    kl_weight: float = typer.Option(DEFAULTS.kl_weight, help="Weight of KL to the original's probabilities."),
    anchor_weight: float = typer.Option(
        DEFAULTS.anchor_weight, help="Weight of the squared distance to the starting weights (L2-SP; 0: off)."),
    blend_shares: str = typer.Option(
        ",".join(f"{v:g}" for v in DEFAULTS.blend_shares),
        help="Comma-separated shares of each epoch's step from the starting weights also offered "
             "as candidates ('' for none)."),
    checkpoint: str = typer.Option(
        DEFAULTS.checkpoint,
        help="Epoch choice: no-rise never keeps an epoch that adds validation disagreements "
             "(clean or corrupted); fewest keeps the one with the fewest validation failures; "
             "last keeps the last epoch."),
    rank_by: str = typer.Option(
        DEFAULTS.rank_by, help="Which qualifying candidate wins: failures (the fewest validation "
                               "failures) or triggers (the fewest validation triggers left, then "
                               "failures: more triggers repaired, closer to the disagreements bound)."),
    seed: int = typer.Option(DEFAULTS.seed, "--seed", callback=seed_option, help="Random seed of the split, mining, variants and batches."),
    research_budget: int = typer.Option(None, help="Query budget per seed of the re-search (default: the run's)."),
    no_research: bool = typer.Option(False, "--no-research",
                                     help="Skip re-searching both pairs and the deviation profile."),
    max_accuracy_drop: float = typer.Option(
        DEFAULTS.max_accuracy_drop, help="Verdict: largest acceptable test-accuracy drop (0.003 = 0.3 points)."),
    max_disagreement_rise: int = typer.Option(
        DEFAULTS.max_disagreement_rise, help="Verdict: test disagreements (clean or corrupted) the repair may add."),
    min_heldout: float = typer.Option(DEFAULTS.min_heldout_repaired,
                                      help="Verdict: share of held-out triggers that must be repaired."),
    register: str = typer.Option(
        "if-better", "--register",
        help="Add the repaired pair to the zoo: if-better (only when the verdict is better), always, never.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (with a verdict field)."),
) -> None:
    """Fine-tune the compressed model of a run's pair on its triggers; judged on held-out ones.

    The verdict comes first: whether the repair is better by every threshold, unchanged (no
    epoch beat the model as it was, so it was kept), or how it made things worse. By default
    the repaired model becomes a new pair (see `compd zoo list`) only when it is better; the
    report of a registered repair is stored with the run.
    """
    from compd_core.repair import REGISTER_CHOICES, repair_run
    from compd_core.store import Store

    if register not in REGISTER_CHOICES:
        raise ConfigError(f"--register must be one of {', '.join(REGISTER_CHOICES)}, got {register!r}")
    settings = RepairSettings(
        lr=lr, epochs=epochs, batch_size=batch_size, mix_ratio=mix_ratio,
        variants_per_trigger=variants, mined_seeds=mined_seeds, ce_weight=ce_weight,
        kl_weight=kl_weight, anchor_weight=anchor_weight, checkpoint=checkpoint,  # type: ignore[arg-type]
        blend_shares=number_list(blend_shares, "--blend-shares", "strictly between 0 and 1, e.g. 0.1,0.25,0.5"),
        head_grid=head_grid, rank_by=rank_by,  # type: ignore[arg-type]
        change_scales=None if change_scales is None else number_list(
            change_scales, "--change-scales", "above 0 and at most 4, e.g. 0.5,0.75,1.25,1.5"),
        heldout_fraction=heldout_fraction,
        validation_fraction=validation_fraction, seed=seed, research=not no_research,
        research_max_queries=research_budget, max_accuracy_drop=max_accuracy_drop,
        max_disagreement_rise=max_disagreement_rise, min_heldout_repaired=min_heldout,
    )
    with Store(db or default_db_path(), create=False) as store:
        source = store.get_run(run).pair_source()
        warn_changed_files(source)
        job = run_job(lambda emit, stop: repair_run(store, run, settings, selection, emit=emit,
                                                    stop=stop, register=register),  # type: ignore[arg-type]
                      "training epoch", transient=json_output)
    report = job.value
    if json_output:
        print_json(report.to_dict())
    if job.stopped:
        exit_stopped(job.kept)
    if not json_output:
        _print_report(report, source)


def _print_report(report: RepairReport, source: PairSpec | None = None) -> None:
    """The verdict first, in words; then the numbers it rests on."""
    if report.verdict == "better":
        out.print("[bold green]Verdict: better[/] by every threshold (held-out triggers, accuracy, "
                  "clean and corrupted disagreements).")
    elif report.verdict == "unchanged":
        out.print("[bold yellow]Verdict: unchanged.[/] " + " ".join(report.verdict_reasons))
    else:
        out.print("[bold red]Verdict: worse.[/] " + " ".join(report.verdict_reasons))
    held, train = len(report.heldout_positions), len(report.train_positions)
    out.print(f"repaired {report.pair_before} on {train} of {report.triggers} triggers "
              f"({report.selection}; {report.validation_triggers} of them kept to pick the epoch) "
              f"and {report.mined_triggers} deviations mined on training digits; {held} held out; "
              f"{kept_words(report)}"
              + training_words(report))
    out.print(f"held-out triggers repaired: {_rate(report.heldout_repaired_rate)} "
              f"(training triggers: {_rate(report.train_repaired_rate)})")
    if unrepaired := unrepaired_words(report):
        out.print(unrepaired)
    out.print(f"test accuracy: {_rate(report.accuracy_before)} -> {_rate(report.accuracy_after)}; "
              f"disagreements: {report.disagreements_before} -> {report.disagreements_after} "
              f"on {report.test_images} test images, {report.corrupted_disagreements_before} -> "
              f"{report.corrupted_disagreements_after} on {report.corrupted_images} corrupted ones")
    if report.research_seeds is not None:
        out.print(f"re-search ({report.research_strategy}, {report.research_seeds} seeds, "
                  f"{report.research_max_queries} queries each): success "
                  f"{_rate(report.research_success_before)} -> {_rate(report.research_success_after)}, "
                  f"median queries {_number(report.research_median_queries_before)} -> "
                  f"{_number(report.research_median_queries_after)}")
        out.print(f"seeds with a strict deviation within L-inf {_number(255 * report.profile_linf)}/255: "
                  f"{_rate(report.profile_share_before)} -> {_rate(report.profile_share_after)}")
    if report.registered and source is not None and not source.is_zoo:
        out.print(f"repaired model: {report.repaired_pair} (search it with `compd search "
                  f"--original {source.original} --compressed {report.repaired_pair}`)")
    elif report.registered:
        out.print(f"new pair: {report.repaired_pair} (search it with `compd search --pair "
                  f"{report.repaired_pair}`)")
    elif report.verdict == "better":
        out.print("not registered as a pair (--register never)")
    elif report.verdict == "unchanged":
        out.print("not registered as a pair: it is the model you already have")
    else:
        out.print("not registered as a pair because it is worse; run again with "
                  "`--register always` to keep it anyway")
