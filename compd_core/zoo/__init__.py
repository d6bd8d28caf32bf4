"""The sample pairs shipped in ``sample_models/``: list them, load them, rebuild them."""

from compd_core.zoo.loading import find_entry, list_pairs, load_pair, user_zoo_dir, zoo_dirs
from compd_core.zoo.manifest import Manifest, OriginalEntry, PairEntry

__all__ = [
    "Manifest",
    "OriginalEntry",
    "PairEntry",
    "find_entry",
    "list_pairs",
    "load_pair",
    "user_zoo_dir",
    "zoo_dirs",
]
