"""Find, explore and repair the deviations of compressed neural networks."""

import os

# Small models on a busy CPU: OpenMP threads that spin while waiting steal the cores the work
# needs (measured 7-10x slower searches on a loaded 2-core machine). Only effective when set
# before torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from compd_core import _torchvision_compat as _torchvision_compat  # noqa: E402

__version__ = "0.1.0"
