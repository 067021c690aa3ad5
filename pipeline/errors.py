"""Exceptions of the pipeline package.

::

    RiverguardError (riverguard.errors)
    └── PipelineError        the composed pipeline could not run as asked
        ├── StageError       one stage stopped with an error (the others were stopped too)
        └── DemoError        the demo ran, but the spill was not detected or raised no incident
"""

from __future__ import annotations

from riverguard.errors import RiverguardError


class PipelineError(RiverguardError):
    """The composed pipeline could not run as asked."""


class StageError(PipelineError):
    """A stage stopped with an error; ``stage`` names it."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"stage {stage} failed: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


class DemoError(PipelineError):
    """The demo finished without the outcome it exists to show."""
