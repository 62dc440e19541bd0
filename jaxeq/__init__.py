"""jaxeq: automatic parametric EQ for individual instrument tracks (JAX/Flax).

The public API; see README.md for examples.
"""

from jaxeq.audio_io import AudioError, load_audio, save_audio
from jaxeq.classes import CLASS_INFO, CLASSES, InstrumentClass, class_info
from jaxeq.eq import EQ, Band
from jaxeq.layouts import Layout, Settings, get_layout
from jaxeq.processing import apply_eq
from jaxeq.spectrum import (FREQS, SAMPLE_RATE, difference, log_spectrogram_windows,
                            long_term_spectrum, smooth, zero_centre)

__version__ = "0.1.0"

__all__ = [
    "AudioError", "Band", "EQ", "FREQS", "Layout", "SAMPLE_RATE", "Settings", "apply_eq",
    "difference", "get_layout", "load_audio", "log_spectrogram_windows", "long_term_spectrum",
    "save_audio", "smooth", "zero_centre",
    "CLASSES", "CLASS_INFO", "InstrumentClass", "class_info",
]
