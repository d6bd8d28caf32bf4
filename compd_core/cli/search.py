"""``compd search``: run (or resume) a campaign with a live progress bar."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from compd_core.cli.common import (
    ALLOW_CODE_HELP,
    COMPRESSED_HELP,
    DATASET_HELP,
    ORIGINAL_HELP,
    PAIR_HELP,
    SEED_INDICES_HELP,
    dataset_option_value,
    default_dataset,
    out,
    pair_spec_from_options,
    parse_seed_indices,
    print_json,
    seed_option,
    warn_changed_files,
)
from compd_core.cli.stoppable import exit_stopped, run_job
from compd_core.errors import ConfigError
from compd_core.paths import default_db_path
from compd_core.search.criterion import DEFAULT_MAX_LINF

if TYPE_CHECKING:
    from compd_core.campaign import CampaignSummary


def _new_spec(given: dict[str, Any], models: dict[str, Any]):
    """A new campaign from the options, with the documented defaults for those left out."""
    from compd_core.campaign import CampaignSpec
    from compd_core.search.criterion import Criterion
    from compd_core.search.seeds import EXPLICIT_ORDER
    from compd_core.search.settings import SearchSettings

    if given["--pair"] is None and models["--original"] is None and models["--compressed"] is None:
        raise ConfigError("give --pair ID (see `compd zoo list`) or --original and --compressed "
                          "model files, or --resume RUN to continue a run")
    dataset = dataset_option_value(default_dataset(given["--dataset"], given["--pair"]))
    source = pair_spec_from_options(given["--pair"], models["--original"], models["--compressed"],
                                    dataset, models["--allow-code"])
    indices = parse_seed_indices(given["--seed-indices"])
    if indices is not None:
        for option in ("--seeds", "--seed-order"):
            if given[option] is not None:
                raise ConfigError(f"--seed-indices lists the seeds itself; leave {option} out")

    def value(option: str, default: Any) -> Any:
        return default if given[option] is None else given[option]

    settings = SearchSettings(
        max_queries=value("--budget", 10_000), time_budget=given["--time-budget"],
        criterion=Criterion(kind=value("--criterion", "valid"),
                            min_margin_original=value("--min-margin-original", 0.0),
                            min_margin_compressed=value("--min-margin-compressed", 0.0),
                            max_linf=value("--max-linf", DEFAULT_MAX_LINF),
                            max_l2=given["--max-l2"]),
        operators=value("--operators", "dflare"),
    )
    return CampaignSpec(
        pair=source.name, strategy=value("--strategy", "compd"),
        seeds=len(indices) if indices else value("--seeds", 20), settings=settings,
        rng_seed=value("--seed", 0), dataset=dataset,
        seed_order=EXPLICIT_ORDER if indices else value("--seed-order", "random"),
        pair_spec=None if source.is_zoo else source, seed_indices=indices,
    )


def _resumed_spec(store: Any, run_id: str, given: dict[str, Any], models: dict[str, Any]):
    """The stored run's own campaign; an option given that contradicts it is refused."""
    from compd_core.campaign import spec_of_run

    record = store.get_run(run_id)
    if models["--original"] is not None or models["--compressed"] is not None:
        raise ConfigError(f"leave --original and --compressed out: --resume {run_id} reloads the "
                          "run's own model files")
    spec = spec_of_run(record)
    if record.seed_plan is None and given["--seed-order"] is not None:
        # a run stored before seed lists were kept did not record its order either: take the
        # user's word; the resume then checks the stored seeds against the ones drawn again
        spec = replace(spec, seed_order=given["--seed-order"])
    store.check_resumable(run_id)  # a finished or busy run: say so before any work starts
    stored = {"--pair": spec.pair, "--strategy": spec.strategy, "--seeds": spec.seeds,
              "--budget": spec.settings.max_queries, "--time-budget": spec.settings.time_budget,
              "--operators": spec.settings.operators, "--criterion": spec.settings.criterion.kind,
              "--min-margin-original": spec.settings.criterion.min_margin_original,
              "--min-margin-compressed": spec.settings.criterion.min_margin_compressed,
              "--max-linf": spec.settings.criterion.max_linf,
              "--max-l2": spec.settings.criterion.max_l2, "--seed-order": spec.seed_order,
              "--seed": spec.rng_seed, "--dataset": spec.dataset,
              "--seed-indices": spec.seed_indices}
    for option, value in given.items():
        if option == "--dataset" and value is not None:
            value = dataset_option_value(value)
        if option == "--seed-indices" and value is not None:
            value = parse_seed_indices(value)
        if value is not None and value != stored[option]:
            raise ConfigError(
                f"run {run_id} was searched with {option} {_shown(stored[option])}, not {option} "
                f"{_shown(value)}; leave {option} out: --resume continues a run with its own settings"
            )
    return spec


def _shown(value: Any) -> str:
    """An option's value as a user would type it: 0.5 not 0.5000, none for an unset bound."""
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def search(
    pairs: list[str] = typer.Option(None, "--pair", metavar="ID", help=PAIR_HELP + " Repeat "
                                    "--pair to search several pairs: one run each, with the same "
                                    "settings (and --seed-indices, if given)."),
    original: str = typer.Option(None, "--original", help=ORIGINAL_HELP),
    compressed: str = typer.Option(None, "--compressed", help=COMPRESSED_HELP),
    allow_code: bool = typer.Option(False, "--allow-code", help=ALLOW_CODE_HELP),
    dataset: str = typer.Option(None, "--dataset", help=DATASET_HELP),
    seed_indices: str = typer.Option(None, "--seed-indices", help=SEED_INDICES_HELP),
    strategy: str = typer.Option(None, help="compd (default), dflare, diffchaser, gradient or random."),
    seeds: int = typer.Option(None, help="Number of seed images drawn from the dataset (default 20)."),
    budget: int = typer.Option(None, help="Query budget per seed (default 10000; one query = one image through both models)."),
    time_budget: float = typer.Option(None, help="Time budget per seed, in seconds."),
    operators: str = typer.Option(None, help="Mutation operator set: dflare (default) or natural."),
    criterion: str = typer.Option(None, help="valid (default: the original keeps the seed's label) or any."),
    min_margin_original: float = typer.Option(None, help="How sure the original must stay of the "
                                              "seed's label: its probability minus its next "
                                              "class's, in [0, 1) (default 0: strict only)."),
    min_margin_compressed: float = typer.Option(None, help="How clearly the compressed model must "
                                                "answer otherwise: its probability for the new "
                                                "label minus the seed's, in [0, 1) (default 0: "
                                                "strict only, a tie never counts)."),
    max_linf: float = typer.Option(None, help="L-inf bound around the seed, in (0, 1]; the default (64/255) keeps triggers close, 1 lifts it."),
    max_l2: float = typer.Option(None, help="L2 bound around the seed, pixel values in [0, 1] (default: none)."),
    seed_order: str = typer.Option(None, help="random (default), margin (lowest margin first) or balanced (as many seeds of every class)."),
    seed: int = typer.Option(None, "--seed", callback=seed_option, help="Random seed (default 0): same seed, same triggers."),
    db: Path = typer.Option(None, help="Results database (default ./compd.sqlite or $COMPD_DB)."),
    resume: str = typer.Option(None, help="Resume this run id with its own stored settings, "
                               "skipping its finished seeds."),
    executor: str = typer.Option("inprocess", help="Who searches the seeds: inprocess (default) "
                                 "or ray (chunks of seeds on Ray workers; pip install 'compd\\[ray]')."),
    address: str = typer.Option(None, help="With --executor ray: auto or HOST:PORT of a running "
                                "cluster's head node (default: start a local one)."),
    workers: int = typer.Option(None, help="With --executor ray: how many workers (default: "
                                "one per CPU)."),
    chunk: int = typer.Option(None, help="With --executor ray: seeds per task (default 64-256, "
                              "about four tasks per worker)."),
    device: str = typer.Option("cpu", help="Where torch models run: cpu (default), cuda or auto "
                               "(cuda when there is a GPU)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object (a list of "
                                     "them, one per run, with several --pair)."),
) -> None:
    """Search seeds of a pair for deviation-triggering inputs; every trigger is stored at once."""
    from compd_core.campaign import run_campaign
    from compd_core.data.resolve import load_dataset
    from compd_core.executors import make_executor
    from compd_core.models.device import resolve_device
    from compd_core.search.seeds import explicit_seeds
    from compd_core.store import Store

    runner = make_executor(executor, address=address, workers=workers, chunk=chunk)
    resolve_device(device)
    pairs = list(pairs or [])
    if len(pairs) > 1:
        _check_several_pairs(pairs, original, compressed, resume)

    given = {"--pair": pairs[0] if pairs else None, "--strategy": strategy, "--seeds": seeds, "--budget": budget,
             "--time-budget": time_budget, "--operators": operators, "--criterion": criterion,
             "--min-margin-original": min_margin_original,
             "--min-margin-compressed": min_margin_compressed,
             "--max-linf": max_linf, "--max-l2": max_l2, "--seed-order": seed_order, "--seed": seed,
             "--dataset": dataset, "--seed-indices": seed_indices}
    models = {"--original": original, "--compressed": compressed, "--allow-code": allow_code}
    store = Store(db or default_db_path())
    if len(pairs) > 1:
        _search_several(pairs, given, models, store, runner, device, json_output)
        return
    if resume:
        spec = _resumed_spec(store, resume, given, models)
        source = store.get_run(resume).pair_source()
        warn_changed_files(source)
    else:
        spec = _new_spec(given, models)
        source = spec.source
    model_pair = source.load()
    data = load_dataset(spec.dataset, model_pair.input_shape, model_pair.class_names)
    if spec.seed_indices is not None and not resume:
        explicit_seeds(model_pair, data, spec.seed_indices)  # a bad list: one line, before the bar
    run = run_job(lambda emit, stop: run_campaign(spec, store, pair=model_pair, dataset=data,
                                                  emit=emit, stop=stop, resume=resume, executor=runner,
                                                  device=device),
                  "search step", transient=json_output)
    summary = run.value
    if json_output:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    if run.stopped:
        exit_stopped(f"{run.kept}; `compd search --resume {summary.run_id}` finishes it")


def _check_several_pairs(pairs: list[str], original: str | None, compressed: str | None,
                         resume: str | None) -> None:
    """Several --pair: zoo ids, each once, for a new campaign."""
    repeated = sorted({p for p in pairs if pairs.count(p) > 1})
    if repeated:
        raise ConfigError(f"--pair {repeated[0]} is given twice; give each pair once")
    if original is not None or compressed is not None:
        raise ConfigError("--original and --compressed describe one pair of files; search them "
                          "in a run of their own, not together with several --pair")
    if resume is not None:
        raise ConfigError(f"--resume continues one run with its own pair; leave --pair out "
                          "(resume each run of a campaign over several pairs by its id)")


def _search_several(pairs: list[str], given: dict[str, Any], models: dict[str, Any], store: Any,
                    runner: Any, device: str, json_output: bool) -> None:
    """One campaign over several pairs: one run each, one summary line each."""
    from compd_core.campaign import run_campaigns

    specs = [_new_spec({**given, "--pair": pair}, models) for pair in pairs]
    run = run_job(lambda emit, stop: run_campaigns(specs, store, emit=emit, stop=stop,
                                                   executor=runner, device=device),
                  "search step", transient=json_output)
    summaries = run.value
    if json_output:
        print_json([summary.to_dict() for summary in summaries])
    else:
        for summary in summaries:
            out.print(_summary_line(summary))
        out.print("see them with `compd runs show RUN` or in the dashboard")
    if run.stopped:
        ids = " ".join(str(summary.run_id) for summary in summaries)
        exit_stopped(f"{run.kept}; `compd search --resume RUN` finishes each of {ids}")


def _summary_line(summary: CampaignSummary) -> str:
    rate = f"{summary.found}/{summary.seeds} seeds deviated ({summary.success_rate:.0%})"
    return (f"run {summary.run_id} ({summary.pair}): {rate} in {summary.wall_seconds:.1f} s, "
            f"{summary.queries_per_second:,.0f} queries/s")


def _print_summary(summary: CampaignSummary) -> None:
    rate = f"{summary.found}/{summary.seeds} seeds deviated ({summary.success_rate:.0%})"
    out.print(f"run {summary.run_id}: {rate} in {summary.wall_seconds:.1f} s, "
              f"{summary.queries_per_second:,.0f} queries/s")
    if summary.found:
        out.print(f"median {summary.median_queries:.0f} queries and L2 {summary.median_l2:.2f} "
                  f"per trigger; {summary.seconds_per_trigger:.3f} s per trigger")
        if summary.strength is not None:
            out.print(summary.strength.describe())
            caveat = summary.strength.caveat()
            if caveat:
                out.print(f"[yellow]{caveat}[/]")
    out.print(f"see them with `compd runs show {summary.run_id}` or in the dashboard")
