"""``compd pair``: measure one pair (a zoo id, or the user's own two model files)."""

from __future__ import annotations

import typer
from rich.table import Table

from compd_core.cli.common import console, out, print_json
from compd_core.errors import ConfigError

app = typer.Typer(help="Inspect a model pair.", no_args_is_help=True)


def resolve_pair(
    pair_id: str | None, original: str | None, compressed: str | None,
    dataset: str, allow_code: bool = False,
):
    """A ``ModelPair`` from a zoo id or two model files; exactly one of the two ways."""
    from compd_core.data.resolve import load_dataset
    from compd_core.models.loading import load_classifier
    from compd_core.models.pair import ModelPair
    from compd_core.zoo import load_pair

    if pair_id and (original or compressed):
        raise ConfigError("give either --pair or --original with --compressed, not both")
    if pair_id:
        return load_pair(pair_id)
    if not (original and compressed):
        raise ConfigError("give --pair ID (see `compd zoo list`) or both --original and --compressed")
    data = load_dataset(dataset)
    shape = data.image_shape
    # Named classes (cat/, dog/) name the outputs in order; numbered ones (5/ 6/ 7/, or an
    # .npz's labels) are output indices, which the dataset check maps by number.
    numbered = all(name.isdigit() for name in data.class_names)
    names = None if numbered else data.class_names
    return ModelPair(
        load_classifier(original, shape, names, allow_code=allow_code),
        load_classifier(compressed, shape, names, allow_code=allow_code),
        name=f"{original} vs {compressed}",
    )


@app.command("inspect")
def inspect_command(
    pair: str = typer.Option(None, "--pair", help="A zoo pair id (see `compd zoo list`)."),
    original: str = typer.Option(None, help="Original model: TorchScript .pt or .onnx file."),
    compressed: str = typer.Option(None, help="Compressed model: TorchScript .pt or .onnx file."),
    dataset: str = typer.Option("mnist", help="mnist, mnist:train, an image folder or an .npz."),
    allow_code: bool = typer.Option(False, help="Allow module:function models (runs that code)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy of each model, agreement, disagreeing inputs, size and latency."""
    from compd_core.data.resolve import load_dataset
    from compd_core.models.evaluate import evaluate_pair, latency_ms

    model_pair = resolve_pair(pair, original, compressed, dataset, allow_code)
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
