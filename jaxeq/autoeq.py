"""Automatic EQ, end to end (DESIGN.md §1):

    audio → classifier → instrument → target spectrum ┐
    audio → long-term spectrum ───────────────────────┴→ difference → matcher → EQ → audio

    auto = jaxeq.AutoEQ.from_pretrained()
    processed, analysis = auto.process(audio, sample_rate)
    print(analysis.instrument, analysis.eq)
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Mapping

import numpy as np

from jaxeq.audio_io import check_audio
from jaxeq.classifier import Classifier, load_classifier
from jaxeq.eq import EQ
from jaxeq.fitting import OptimiserMatcher
from jaxeq.layouts import get_layout
from jaxeq.loudness import K_WEIGHTING, gated_loudness, match_loudness
from jaxeq.matcher import Matcher, load_matcher
from jaxeq.processing import apply_eq, eq_channels, filter_channels
from jaxeq.spectrum import FREQS, SAMPLE_RATE, difference, long_term_spectrum, zero_centre
from jaxeq.targets import TargetBank, load_targets

MAX_AMOUNT = 2.0


@dataclasses.dataclass(frozen=True)
class Analysis:
  """What AutoEQ found: every curve is 256 dB values on `jaxeq.FREQS`."""
  instrument: str | None  # None when a reference track (or a given curve) set the target
  probabilities: Mapping[str, float] | None  # None when the classifier was not asked
  spectrum: np.ndarray  # the input's long-term spectrum
  target: np.ndarray  # zero-mean target
  difference: np.ndarray  # what the EQ should do (target − input, smoothed, ≤ 12 dB)
  eq: EQ

  @property
  def confidence(self) -> float | None:
    return None if self.probabilities is None else self.probabilities.get(self.instrument)

  def eq_curve(self) -> np.ndarray:
    return self.eq.response_db(FREQS, SAMPLE_RATE)

  def to_dict(self) -> dict:
    """A JSON-able summary (the curves as lists)."""
    return {"instrument": self.instrument, "confidence": self.confidence,
            "probabilities": None if self.probabilities is None else dict(self.probabilities),
            "eq": self.eq.to_dict(), "freqs_hz": FREQS.tolist(),
            **{name: np.round(getattr(self, name), 3).tolist()
               for name in ("spectrum", "target", "difference")}}


def reference_target(reference, sample_rate: int) -> np.ndarray:
  """A reference track's zero-mean long-term spectrum: the target for matching to it."""
  return np.asarray(zero_centre(long_term_spectrum(reference, sample_rate)))


class AutoEQ:
  """The classifier, the target bank and the matcher, wired together."""

  def __init__(self, classifier: Classifier, matcher: Matcher | OptimiserMatcher,
               targets: TargetBank):
    missing = sorted(set(classifier.classes) - set(targets.classes))
    if missing:
      raise ValueError(f"the target bank has no target for {', '.join(missing)}")
    self.classifier, self.matcher, self.targets = classifier, matcher, targets

  @classmethod
  def from_pretrained(cls, targets=None, classifier=None, matcher="cnn_finetuned",
                      layout: str | None = None) -> "AutoEQ":
    """The shipped models; `targets`, `classifier` and `matcher` may name others on disk
    (a bank `.npz`, a classifier directory, a matcher name or directory). A `layout` other
    than the matcher's is fitted per track by the optimiser instead."""
    network = load_matcher(matcher)
    if layout is not None and get_layout(layout).to_config() != network.layout.to_config():
      network = OptimiserMatcher(get_layout(layout))
    return cls(load_classifier(classifier), network, load_targets(targets))

  def analyze(self, audio, sample_rate: int, instrument: str | None = None,
              reference=None, reference_rate: int | None = None, target=None) -> Analysis:
    """Classify (unless `instrument` is given), compare with the target, predict the EQ.

    `reference` (audio at `reference_rate`, default `sample_rate`) replaces the target with
    that track's spectrum: matching one track to another. `target` (256 dB values on
    `jaxeq.FREQS`, e.g. from `reference_target`) does the same for a curve already at hand.
    """
    audio = check_audio(audio, sample_rate)
    spectrum = long_term_spectrum(audio, sample_rate)
    probabilities = None
    if reference is not None:
      target = reference_target(reference, reference_rate or sample_rate)
    if target is None:
      if instrument is None:
        probabilities = self.classifier.predict(audio, sample_rate)
        instrument = max(probabilities, key=probabilities.get)
      target = self.targets.target(instrument)
    else:
      target, instrument = np.asarray(zero_centre(target)), None
    diff = np.asarray(difference(target, spectrum))
    eq, = self.matcher.predict(diff)
    return Analysis(instrument, probabilities, spectrum, target, diff, eq)

  def process(self, audio, sample_rate: int, amount: float = 1.0, instrument: str | None = None,
              reference=None, reference_rate: int | None = None,
              target=None) -> tuple[np.ndarray, Analysis]:
    """`(processed, analysis)`: the EQ applied with its gains scaled by `amount` (0–2), the
    result loudness-matched to the input (BS.1770) and kept below clipping."""
    if not 0.0 <= amount <= MAX_AMOUNT:
      raise ValueError(f"amount={amount!r} must be between 0 and {MAX_AMOUNT:g}")
    # Loudness is measured on the other core while this one analyses and filters (scipy's
    # filters and NumPy release the GIL). The EQ and the K-weighting are linear filters, so
    # the output's K-weighted signal is the EQ'd K-weighted input: no need to wait for it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      weighted = pool.submit(filter_channels, audio, sample_rate, K_WEIGHTING)
      analysis = self.analyze(audio, sample_rate, instrument, reference, reference_rate, target)
      eq = EQ(dataclasses.replace(b, gain_db=b.gain_db * amount) for b in analysis.eq.bands)

      def loudness_before_and_after():
        before = weighted.result()
        after = eq_channels(before, sample_rate, eq)
        return gated_loudness(before, sample_rate), gated_loudness(after, sample_rate)

      loudness = pool.submit(loudness_before_and_after)
      processed = apply_eq(audio, sample_rate, eq)
      target_lufs, current_lufs = loudness.result()
    return (match_loudness(processed, current_lufs, target_lufs),
            dataclasses.replace(analysis, eq=eq))
