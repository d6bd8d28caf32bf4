"""``compd zoo``: the shipped sample pairs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from compd_core.cli.common import console, out, print_json, seed_option
from compd_core.paths import sample_models_dir, writable_output_dir

app = typer.Typer(help="List and rebuild the shipped sample pairs.", no_args_is_help=True)


@app.command("list")
def list_command(json_output: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Every pair with its accuracies, disagreements on the test split, size and latency."""
    from compd_core.zoo import list_pairs
    from compd_core.zoo.loading import pair_datasets

    pairs, datasets = list_pairs(), pair_datasets()
    if json_output:
        print_json({"pairs": [{**p.__dict__, "dataset": datasets[p.id]} for p in pairs]})
        return
    table = Table(title="Sample pairs (each on its dataset's test split, 2,000 images)")
    left = ("pair", "dataset", "compression")
    for column in (*left, "acc. original", "acc. compressed", "disagreements",
                   "size", "ms / 256 (orig → comp)"):
        table.add_column(column, justify="left" if column in left else "right")
    for p in pairs:
        table.add_row(
            p.id, datasets[p.id], p.compression, f"{p.accuracy_original:.2%}",
            f"{p.accuracy_compressed:.2%}",
            str(p.disagreements), f"{p.size_bytes / 1024:.1f} KiB",
            f"{p.latency_ms_original:.1f} → {p.latency_ms_compressed:.1f}",
        )
    out.print(table)


@app.command("build")
def build_command(
    directory: Path = typer.Option(
        None, "--out", help="Directory to write (default: the shipped sample_models/)."
    ),
    seed: int = typer.Option(0, callback=seed_option, help="Seed for initial weights, data order and augmentation."),
    originals: list[str] = typer.Option(
        None, "--original",
        help="Build only this original and its pairs (repeatable: lenet5, lenet1, resnet-fashion); "
             "the other entries of the zoo are kept.",
    ),
) -> None:
    """Retrain and recompress every sample pair: the LeNets on the shipped MNIST, the ResNet on
    Fashion-MNIST's official training set (Debian's dataset-fashion-mnist; about 15 minutes)."""
    from compd_core.zoo.build import ORIGINALS, build_zoo

    target = writable_output_dir(directory) if directory else sample_models_dir()
    with console.status("building the zoo") as status:
        build_zoo(target, tuple(originals or ORIGINALS), seed=seed,
                  on_progress=lambda msg: status.update(msg) or console.log(msg))
    console.print(f"zoo written to {target}")
