"""``compd characterize``: disagreement of a pair, clean and under natural shift (Hu et al.)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from compd_core.cli.common import (
    ALLOW_CODE_HELP,
    COMPRESSED_HELP,
    DATASET_HELP,
    ORIGINAL_HELP,
    PAIR_HELP,
    console,
    default_dataset,
    out,
    pair_spec_from_options,
    parse_csv,
    parse_csv_ints,
    print_json,
    seed_option,
)
from compd_core.cli.stoppable import exit_stopped, run_job
from compd_core.paths import writable_output_dir

if TYPE_CHECKING:
    from compd_core.characterize import CharacterizationReport, PairComparison


def characterize(
    pair: str = typer.Option(None, "--pair", help=PAIR_HELP),
    original: str = typer.Option(None, "--original", help=ORIGINAL_HELP),
    compressed: str = typer.Option(None, "--compressed", help=COMPRESSED_HELP),
    allow_code: bool = typer.Option(False, "--allow-code", help=ALLOW_CODE_HELP),
    corruptions: str = typer.Option(
        "all", help="Comma-separated corruption names, or 'all'; an unknown name lists the "
        "valid ones."
    ),
    severities: str = typer.Option("1,2,3,4,5", help="Comma-separated severities from 1 to 5."),
    compare: list[str] = typer.Option(
        [], "--compare", help="Another pair to put side by side (repeatable), e.g. the QAT "
        "version of the same original."
    ),
    dataset: str = typer.Option(None, "--dataset", help=DATASET_HELP),
    seed: int = typer.Option(0, callback=seed_option, help="Seed of the corruptions' random draws."),
    out_dir: Path = typer.Option(None, "--out", help="Folder for CSV tables and HTML figures."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Where a compressed model disagrees under distribution shift, and what predicts it.

    Disagreement on clean data and under 5 severities of natural corruptions, and which
    uncertainty indicator predicts it (AUROC)."""
    from compd_core.characterize import check_severities, compare_pairs, resolve_corruptions
    from compd_core.characterize.export import png_available, write_outputs
    from compd_core.data.resolve import load_dataset
    from compd_core.pair_spec import PairSpec

    dataset = default_dataset(dataset, pair)
    if out_dir is not None:
        writable_output_dir(out_dir)
    names = [c.name for c in resolve_corruptions(parse_csv(corruptions) or ["all"])]
    levels = check_severities(parse_csv_ints(severities, "--severities"))
    first = pair_spec_from_options(pair, original, compressed, dataset, allow_code)
    pairs = [first.load(), *(PairSpec.zoo(pair_id).load() for pair_id in compare)]
    data = load_dataset(dataset, pairs[0].input_shape, pairs[0].class_names)

    job = run_job(lambda emit, stop: compare_pairs(pairs, data, names, levels, seed, emit, stop),
                  "cell")
    report = job.value.reports[0]
    comparison = job.value if len(pairs) > 1 else None
    written = write_outputs(report, out_dir, comparison) if out_dir is not None else []
    if written and not png_available():
        console.print("PNG figures skipped: kaleido is not installed; the HTML files hold them")

    if json_output:
        payload = report.to_dict()
        if comparison is not None:
            payload["comparison"] = comparison.to_dict()
        print_json(payload)
    else:
        _print_summary(report, comparison, written)
    if job.stopped:
        exit_stopped(job.kept + (f" in {out_dir}" if out_dir is not None else ""))


def _percent(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.2f}%"


def _print_summary(
    report: CharacterizationReport, comparison: PairComparison | None, written: list[Path]
) -> None:
    head = Table(title=f"{report.pair} on {report.dataset} ({report.clean.n} images)"
                 + ("" if report.complete else " - stopped early"))
    head.add_column("data")
    head.add_column("disagree", justify="right")
    head.add_column("acc. original", justify="right")
    head.add_column("acc. compressed", justify="right")
    head.add_row("clean", _percent(report.clean.rate), _percent(report.clean.accuracy_original),
                 _percent(report.clean.accuracy_compressed))
    for name, by_severity in report.by_corruption().items():
        cells = [c for c in report.cells if c.corruption == name]
        head.add_row(
            name,
            " ".join(_percent(by_severity[str(c.severity)]) for c in cells),
            _percent(sum(c.accuracy_original for c in cells) / len(cells)),
            _percent(sum(c.accuracy_compressed for c in cells) / len(cells)),
        )
    head.add_row("shifted (mean)", _percent(report.shifted_disagreement_rate),
                 _percent(report.shifted_accuracy("original")),
                 _percent(report.shifted_accuracy("compressed")))
    out.print(head)

    scores = Table(title=f"AUROC for predicting disagreement (best: {report.best_indicator})")
    scores.add_column("indicator")
    for condition in ("clean", "shifted"):
        for model in ("original", "compressed"):
            scores.add_column(f"{condition} {model}", justify="right")
    for name in report.ranking("shifted"):
        row = [report.auroc[c][name][m] for c in ("clean", "shifted")
               for m in ("original", "compressed")]
        scores.add_row(name, *("n/a" if v != v else f"{v:.3f}" for v in row))
    out.print(scores)
    if comparison is not None:
        side = Table(title="side by side" + ("" if comparison.shared_original
                                             else " (different originals)"))
        for column in ("pair", "clean", "shifted", "shift effect"):
            side.add_column(column, justify="left" if column == "pair" else "right")
        for row in comparison.rows():
            side.add_row(row["pair"], _percent(row["clean_disagreement_rate"]),
                         _percent(row["shifted_disagreement_rate"]),
                         _percent(row["shift_effect"]))
        out.print(side)
    for note in report.notes:
        console.print(f"note: {note}")
    if written:
        console.print(f"wrote {len(written)} files to {written[0].parent}")
    else:
        console.print("use --out DIR to save the tables (CSV) and figures (HTML)")
