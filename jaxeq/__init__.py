"""jaxeq: automatic parametric EQ for individual instrument tracks (JAX/Flax).

The public API; see README.md for examples.
"""

from jaxeq.audio_io import AudioError, load_audio, save_audio
from jaxeq.classes import CLASS_INFO, CLASSES, InstrumentClass, class_info
from jaxeq.eq import EQ, Band
from jaxeq.filtering import apply_eq
from jaxeq.layouts import Layout, Settings, get_layout
from jaxeq.spectrum import (FREQS, SAMPLE_RATE, audible_weight, correction, correction_weight,
                            difference, log_spectrogram_windows, long_term_spectrum, smooth,
                            zero_centre)

__version__ = "0.1.0"

# Loaded on first use: they bring in orbax, which `import jaxeq` need not pay for.
_LAZY = {"load_matcher": "jaxeq.matcher", "Matcher": "jaxeq.matcher",
         "load_classifier": "jaxeq.classifier", "AutoEQ": "jaxeq.autoeq",
         "OptimiserMatcher": "jaxeq.optimiser",
         "load_targets": "jaxeq.targets"}


def __getattr__(name):
  if name in _LAZY:
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'jaxeq' has no attribute {name!r}")


__all__ = [
    "AudioError", "AutoEQ", "Band", "EQ", "FREQS", "Layout", "Matcher", "OptimiserMatcher",
    "SAMPLE_RATE", "Settings", "apply_eq", "audible_weight", "correction", "correction_weight",
    "difference", "get_layout", "load_audio", "load_classifier", "load_matcher", "load_targets",
    "log_spectrogram_windows", "long_term_spectrum",
    "save_audio", "smooth", "zero_centre",
    "CLASSES", "CLASS_INFO", "InstrumentClass", "class_info",
]
