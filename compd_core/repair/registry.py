"""Register a repaired model as a new pair in the user's zoo, so every command and page can
select it like a shipped one.

Weights only (state dicts, no pickled classes) plus a manifest entry that names the recipe that
rebuilds them. The original's weights are copied beside them because a manifest's files are
relative to its own directory.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compd_core.compress import get_recipe
from compd_core.compress.base import Compressed
from compd_core.data.dataset import ImageDataset
from compd_core.models.evaluate import evaluate_pair, latency_ms
from compd_core.models.pair import ModelPair
from compd_core.zoo.loading import (
    INPUT_SHAPE,
    classifier_for,
    find_entry,
    list_pairs,
    load_original,
    user_zoo_dir,
)
from compd_core.zoo.manifest import Manifest, OriginalEntry, PairEntry, update_manifest


@dataclass(frozen=True)
class SourcePair:
    """Where a zoo pair's files are and what its manifest says about it."""

    directory: Path
    manifest: Manifest
    entry: PairEntry

    @property
    def files(self) -> dict[str, Path]:
        return {role: self.directory / rel for role, rel in self.entry.files.items()}


def source_pair(pair_id: str) -> SourcePair:
    directory, manifest, entry = find_entry(pair_id)
    return SourcePair(directory, manifest, entry)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _free_id(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def new_pair_id(source_id: str, run_id: str) -> str:
    """``<source>-repaired-<run id's random part>``, made unique against every known pair."""
    taken = {p.id for p in list_pairs()}
    return _free_id(f"{source_id}-repaired-{run_id.rsplit('-', 1)[-1]}", taken)


def _copy_original(source: SourcePair, target: Path, manifest: Manifest) -> tuple[str, OriginalEntry]:
    """Copy the original's weights into the user zoo once; reuse them when identical."""
    entry = source.manifest.originals[source.entry.original]
    path = source.directory / entry.file
    digest = _digest(path)
    name = entry.name
    existing = manifest.originals.get(name)
    if existing is not None and (not (target / existing.file).is_file()
                                 or _digest(target / existing.file) != digest):
        name = f"{entry.name}-{digest[:8]}"  # the shipped original changed since (zoo rebuilt)
        existing = manifest.originals.get(name)
    if existing is None or not (target / existing.file).is_file():
        relative = f"originals/{name}.pt"
        (target / "originals").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / relative)
        existing = replace(entry, name=name, file=relative)
    return name, existing


def _claim_directory(target: Path, pair_id: str) -> str:
    """Create the pair's own folder; a name another registration holds gets a suffix."""
    n, candidate = 1, pair_id
    while True:
        try:
            (target / candidate).mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{pair_id}-{n}"


def register_repaired_pair(
    source: SourcePair,
    compressed: Compressed,
    pair_id: str,
    test_set: ImageDataset,
    extra: dict[str, Any],
) -> PairEntry:
    """Save the repaired model under the user zoo, measure it like the zoo build does, and add
    it to the user zoo's manifest under its lock (several repairs may finish at once).

    Returns the entry; its id is ``pair_id`` or, where another registration took that name,
    ``pair_id`` with a suffix.
    """
    target = user_zoo_dir()
    target.mkdir(parents=True, exist_ok=True)
    pair_id = _claim_directory(target, pair_id)
    recipe = get_recipe(source.entry.compression)
    files = recipe.save(compressed, target / pair_id, source.entry.compression)
    size = (target / pair_id / files["model"]).stat().st_size
    # Measured from the files just written, so the entry describes what loads, not what was in memory.
    reloaded = recipe.load(source.entry.arch, {r: target / pair_id / f for r, f in files.items()})
    compressed_model = classifier_for(reloaded, pair_id, size, test_set.class_names)
    original_model = load_original(source.directory, source.entry.original)
    evaluation = evaluate_pair(ModelPair(original_model, compressed_model), test_set)
    latency_compressed = latency_ms(compressed_model, INPUT_SHAPE)
    registered: list[PairEntry] = []

    def add(manifest: Manifest) -> Manifest:
        original_name, original_entry = _copy_original(source, target, manifest)
        entry = PairEntry(
            id=pair_id,
            original=original_name,
            compression=source.entry.compression,
            description=f"{source.entry.description}; repaired on triggers of run {extra.get('run_id')}",
            arch=source.entry.arch,
            files={role: f"{pair_id}/{name}" for role, name in files.items()},
            accuracy_original=evaluation.accuracy_original,
            accuracy_compressed=evaluation.accuracy_compressed,
            disagreements=evaluation.disagreements,
            size_bytes=size,
            latency_ms_original=source.entry.latency_ms_original,
            latency_ms_compressed=latency_compressed,
            white_box=True,
            derived_from=source.entry.id,
            extra=extra,
        )
        registered.append(entry)
        originals = {**manifest.originals, original_name: original_entry}
        pairs = [p for p in manifest.pairs if p.id != pair_id] + [entry]
        return replace(manifest, originals=originals, pairs=pairs)

    update_manifest(target, add)
    return registered[0]
