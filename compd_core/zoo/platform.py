"""Where the zoo's numbers were measured: runtimes and the CPU's integer-kernel features.

Int8 kernels pick their instructions by CPU feature, so a recorded disagreement count only
means something next to the runtime versions and features that produced it.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

# The x86 features that choose onnxruntime's and fbgemm's int8 code paths.
INT8_FEATURES = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                 "amx_int8")


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The int8-relevant features this CPU reports (empty where /proc/cpuinfo is missing)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return [f for f in INT8_FEATURES if f in flags]


def build_platform() -> dict[str, Any]:
    """Versions and CPU features to store beside the numbers measured on this machine."""
    import onnxruntime
    import torch

    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cpu_features": cpu_features(),
    }
