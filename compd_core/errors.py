"""The package's own exceptions: each says what is wrong and how to fix it.

The CLI turns any ``CompdError`` into a one-line message and exit code 2; the dashboard shows it
as an error box. Anything else escaping is a bug.
"""

from __future__ import annotations


class CompdError(Exception):
    """Base class for every error a user can cause and fix."""


class ModelLoadError(CompdError):
    """A model file is missing, corrupt, or of a kind we cannot load."""


class IncompatibleModelsError(CompdError):
    """The two models of a pair cannot be compared (classes or input shapes differ)."""


class InvalidInputError(CompdError):
    """A batch given to a model has the wrong dtype, shape or value range."""


class InvalidOutputError(CompdError):
    """A model returned something that is not a valid probability batch (NaN, wrong shape)."""


class DatasetError(CompdError):
    """A dataset path or file cannot be read as images with labels."""


class UnknownPairError(CompdError):
    """A pair id that the zoo (or the store) does not know."""


class WhiteBoxRequiredError(CompdError):
    """A white-box method was asked of a pair whose models are black boxes."""


class ConfigError(CompdError):
    """A setting (budget, strategy name, severity...) is out of its valid range."""


class StoreError(CompdError):
    """The results database cannot be opened or does not hold what was asked for."""
