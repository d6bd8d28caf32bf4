"""Find, explore and repair the deviations of compressed neural networks."""

from compd_core import _torchvision_compat as _torchvision_compat

__version__ = "0.1.0"
