"""riverguard — environmental-emergency alerting for the Min, Tuo and Jialing rivers.

The shared core: wire models, parameters and GB 3838 limits, settings, the bus seam and the CLI.
"""

from riverguard.models import (
    DataFlag,
    DeadLetter,
    Detection,
    DetectionKind,
    DetectionPhase,
    Envelope,
    Finding,
    Measurement,
    Reading,
    SourceFormat,
    decode,
    encode,
)

__version__ = "0.1.0"

__all__ = [
    "DataFlag",
    "DeadLetter",
    "Detection",
    "DetectionKind",
    "DetectionPhase",
    "Envelope",
    "Finding",
    "Measurement",
    "Reading",
    "SourceFormat",
    "__version__",
    "decode",
    "encode",
]
