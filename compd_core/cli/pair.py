"""``compd pair``: measure one pair (a zoo id, or the user's own two model files)."""

from __future__ import annotations

import typer
from rich.table import Table

from compd_core.cli.common import (
    ALLOW_CODE_HELP,
    COMPRESSED_HELP,
    DATASET_HELP,
    ORIGINAL_HELP,
    PAIR_HELP,
    default_dataset,
    out,
    pair_spec_from_options,
    print_json,
)

app = typer.Typer(help="Inspect a model pair.", no_args_is_help=True)


@app.command("inspect")
def inspect_command(
    pair: str = typer.Option(None, "--pair", help=PAIR_HELP),
    original: str = typer.Option(None, "--original", help=ORIGINAL_HELP),
    compressed: str = typer.Option(None, "--compressed", help=COMPRESSED_HELP),
    dataset: str = typer.Option(None, "--dataset", help=DATASET_HELP),
    allow_code: bool = typer.Option(False, "--allow-code", help=ALLOW_CODE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy of each model, agreement, disagreeing inputs, size and latency."""
    from compd_core.data.resolve import load_dataset
    from compd_core.models.evaluate import evaluate_pair, latency_ms

    dataset = default_dataset(dataset, pair)
    model_pair = pair_spec_from_options(pair, original, compressed, dataset, allow_code).load()
    data = load_dataset(dataset, model_pair.input_shape, model_pair.class_names)
    evaluation = evaluate_pair(model_pair, data)
    report = {
        "pair": model_pair.name,
        "dataset": data.name,
        "images": len(data),
        "accuracy_original": evaluation.accuracy_original,
        "accuracy_compressed": evaluation.accuracy_compressed,
        "agreement_rate": evaluation.agreement_rate,
        "disagreements": evaluation.disagreements,
        "disagreement_indices": data.indices[evaluation.disagreement_indices].tolist(),
        "size_bytes_original": model_pair.original.info.size_bytes,
        "size_bytes_compressed": model_pair.compressed.info.size_bytes,
        "latency_ms_original": latency_ms(model_pair.original, model_pair.input_shape),
        "latency_ms_compressed": latency_ms(model_pair.compressed, model_pair.input_shape),
    }
    if json_output:
        print_json(report)
        return
    table = Table(title=f"{report['pair']} on {report['dataset']} ({report['images']} images)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        if key in ("pair", "dataset", "images", "disagreement_indices"):
            continue
        table.add_row(key.replace("_", " "), f"{value:.4f}" if isinstance(value, float) else str(value))
    shown = report["disagreement_indices"][:20]
    table.add_row("disagreeing inputs", ", ".join(map(str, shown)) + (" ..." if len(report["disagreement_indices"]) > 20 else ""))
    out.print(table)
