"""Automatic EQ, end to end (DESIGN.md §1):

    audio → classifier → probabilities → blended target ┐
    audio → long-term spectrum ─────────────────────────┴→ difference → matcher → EQ → audio

    auto = jaxeq.AutoEQ.from_pretrained()
    processed, analysis = auto.process(audio, sample_rate)
    print(analysis.summary())

The correction (`jaxeq.spectrum.correction`, the one fine-tuning uses too) is made where the
track and its target carry energy (the audible band) and nowhere else: the difference is 0
outside it, and the EQ never boosts more than `QUIET_BOOST_DB` where the track is more than
`jaxeq.spectrum.AUDIBLE_BELOW_DB` under its loudest third-octave, or less than
`jaxeq.spectrum.NOISE_MARGIN_DB` above its noise floor; a drum's or a bass's fundamental is
not cut (`jaxeq.classes.KEEPS_FUNDAMENTAL`, as far as such classes make the target). A track
with almost no audible band (a sine, a click) keeps a flat EQ.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Mapping

import numpy as np

from jaxeq.audio_io import check_audio
from jaxeq.classes import fundamental_share
from jaxeq.classifier import Classifier, load_classifier
from jaxeq.eq import EQ
from jaxeq.filtering import apply_eq_checked, eq_channels
from jaxeq.layouts import get_layout
from jaxeq.limiter import LOSSLESS_CEILING_DBTP, MAX_LIMITING_DB
from jaxeq.loudness import K_WEIGHTING, gated_loudness, match_loudness
from jaxeq.matcher import EQMatcher, load_matcher, matcher_layout
from jaxeq.optimiser import OptimiserMatcher
from jaxeq.pitch import median_pitch_hz
from jaxeq.spectrum import (FREQS, QUIET_BOOST_DB, SAMPLE_RATE, analysis_signal_checked,
                            audible_weight, correction, long_term_spectrum, nothing_to_equalise,
                            signal_spectrum_and_noise_floor, zero_centre)
from jaxeq.targets import BLEND_TOP, TargetBank, load_targets

MAX_AMOUNT = 2.0
# Below this width of audible band (octaves) there is nothing to equalise: the EQ stays flat.
MIN_AUDIBLE_OCTAVES = 1.0
# A runner-up this close in probability to the winner is named beside it.
CLOSE_RUNNER_UP = 0.5
# Under LOW_CONFIDENCE (calibrated) the classifier is more often wrong than right: the track's
# target leans toward the bank's generic one and its EQ is made gentler, the more so the lower
# the confidence, until at UNSURE_CONFIDENCE it is the generic target alone and the EQ at
# UNSURE_AMOUNT of its gains (`generic_share`). A ramp, not a switch: a track and a coloured
# copy of it, one just over and one just under the line, get nearly the same EQ (a switch
# cost 3 points of a colouration removed; RESULTS, issue 27).
LOW_CONFIDENCE = 0.5
UNSURE_CONFIDENCE = 0.2
UNSURE_AMOUNT = 0.5


class NoCommonBand(ValueError):
  """A reference (or a given target) that shares too little audible band with the track."""


@dataclasses.dataclass(frozen=True)
class Analysis:
  """What AutoEQ found: every curve is 256 dB values on `jaxeq.FREQS`."""
  instrument: str | None  # None when a reference track (or a given curve) set the target
  probabilities: Mapping[str, float] | None  # None when the classifier was not asked
  spectrum: np.ndarray  # the input's long-term spectrum
  target: np.ndarray  # zero-mean target
  target_mix: Mapping[str, float] | None  # the classes whose targets made `target`, and weights
  weight: np.ndarray  # the audible band in [0, 1]: where the EQ corrects
  difference: np.ndarray  # what the EQ should do (target − input, smoothed, ≤ 12 dB)
  eq: EQ
  note: str | None = None  # why the EQ is flat or limited, when it is
  noise_floor: np.ndarray | None = None  # the input's noise floor (FLOOR_DB where none found)
  # Set by `AutoEQ.process`: the gain after the EQ that matches the input's loudness, the
  # most the true-peak limiter took off a peak (dB), and the loudness change that remains.
  makeup_gain_db: float | None = None
  loudness_change_lu: float | None = None
  limited_db: float | None = None
  limiter_capped: bool = False  # the limiter would have taken more than its cap
  # How much of `target` is the bank's generic one (`generic_share`); the classes' weights in
  # `target_mix` sum to the rest.
  generic_share: float = 0.0
  pitch_hz: float | None = None  # the track's pitch, whose register its target follows

  @property
  def confidence(self) -> float | None:
    return None if self.probabilities is None else self.probabilities.get(self.instrument)

  def runner_up(self) -> tuple[str, float] | None:
    """The second likeliest class when it is close to the winner (≥ half its probability)."""
    if self.probabilities is None or len(self.probabilities) < 2:
      return None
    (_, first), (second, p) = sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:2]
    return (second, p) if p >= CLOSE_RUNNER_UP * first else None

  def eq_curve(self) -> np.ndarray:
    return self.eq.response_db(FREQS, SAMPLE_RATE)

  def heard(self) -> str:
    """The instrument as a person would say it: `snare 93 %`, `violin 48 % (or viola 41 %)`."""
    if self.instrument is None:
      return "matched to a reference"
    if self.confidence is None:
      return f"{self.instrument} (given)"
    text = f"{self.instrument} {self.confidence:.0%}"
    runner_up = self.runner_up()
    if runner_up:
      text += f" (or {runner_up[0]} {runner_up[1]:.0%})"
    return text

  def summary(self) -> str:
    """One line: the instrument, every band's frequency, gain and Q, the loudness change."""
    parts = [self.heard(), self.eq.summary() or "flat EQ"]
    if self.makeup_gain_db is not None:
      change = self.loudness_change_lu
      parts.append(f"make-up gain {self.makeup_gain_db:+.1f} dB, loudness "
                   + ("unchanged" if abs(change) < 0.05 else f"{change:+.1f} LU")
                   + (f", limited {self.limited_db:.1f} dB on peaks" if self.limited_db else ""))
      if self.limiter_capped:
        parts.append(f"output {-change:.1f} LU quieter than the input: the EQ's peaks would "
                     f"have needed more than {MAX_LIMITING_DB:g} dB of limiting")
    if self.note:
      parts.append(self.note)
    return "; ".join(parts)

  def __repr__(self) -> str:  # the summary, not three 256-point curves
    return f"Analysis({self.summary()})"

  def to_dict(self) -> dict:
    """A JSON-able summary (the curves as lists)."""
    return {"instrument": self.instrument, "confidence": self.confidence,
            "probabilities": None if self.probabilities is None else dict(self.probabilities),
            "target_mix": None if self.target_mix is None else dict(self.target_mix),
            "note": self.note, "makeup_gain_db": self.makeup_gain_db,
            "loudness_change_lu": self.loudness_change_lu, "limited_db": self.limited_db,
            "limiter_capped": self.limiter_capped, "generic_share": self.generic_share,
            "pitch_hz": self.pitch_hz,
            "eq": self.eq.to_dict(), "freqs_hz": FREQS.tolist(),
            **{name: np.round(getattr(self, name), 3).tolist()
               for name in ("spectrum", "noise_floor", "target", "weight", "difference")
               if getattr(self, name) is not None}}


def limit_quiet_boosts(eq: EQ, quiet, max_boost_db: float = QUIET_BOOST_DB) -> EQ:
  """`eq` with its boosting bands scaled down (all by one factor) until it boosts at most
  `max_boost_db` in the track's quiet band (`quiet`, booleans on `FREQS`: where it has no
  energy or is mostly noise, `jaxeq.spectrum.quiet_band`). Cuts are kept as they are."""
  quiet = FREQS[np.asarray(quiet, bool)]

  def boosts_scaled(scale: float) -> EQ:
    return EQ(dataclasses.replace(b, gain_db=b.gain_db * scale) if b.gain_db > 0 else b
              for b in eq.bands)

  def worst_boost(candidate: EQ) -> float:
    return float(np.max(candidate.response_db(quiet, SAMPLE_RATE)))

  if len(quiet) == 0 or worst_boost(eq) <= max_boost_db:
    return eq
  lo, hi = 0.0, 1.0  # with no boosts at all the quiet region can only be cut
  for _ in range(16):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if worst_boost(boosts_scaled(mid)) <= max_boost_db else (lo, mid)
  return boosts_scaled(lo)


def generic_share(confidence: float) -> float:
  """How much of an unsure track's target is the bank's generic one: 0 at `LOW_CONFIDENCE` and
  above, rising linearly to 1 at `UNSURE_CONFIDENCE` and below. The EQ's gains are scaled
  by `1 - (1 - UNSURE_AMOUNT) * share`."""
  return float(np.clip((LOW_CONFIDENCE - confidence) / (LOW_CONFIDENCE - UNSURE_CONFIDENCE),
                       0.0, 1.0))


def audible_octaves(weight) -> float:
  """The width of the audible band, in octaves of `FREQS`."""
  return float(np.sum(weight)) * np.log2(FREQS[-1] / FREQS[0]) / (len(FREQS) - 1)


def reference_target(reference, sample_rate: int) -> np.ndarray:
  """A reference track's zero-mean long-term spectrum: the target for matching to it."""
  return np.asarray(zero_centre(long_term_spectrum(reference, sample_rate)))


class AutoEQ:
  """The classifier, the target bank and the matcher, wired together."""

  def __init__(self, classifier: Classifier, matcher: EQMatcher, targets: TargetBank,
               blend_top: int = BLEND_TOP):
    missing = sorted(set(classifier.classes) - set(targets.classes))
    if missing:
      raise ValueError(f"the target bank has no target for {', '.join(missing)}")
    if blend_top < 1:
      raise ValueError(f"blend_top={blend_top!r}: expected at least 1 class (1: argmax)")
    self.classifier, self.matcher, self.targets = classifier, matcher, targets
    self.blend_top = blend_top

  @classmethod
  def from_pretrained(cls, targets=None, classifier=None, matcher="cnn_finetuned",
                      layout: str | None = None) -> "AutoEQ":
    """The shipped models; `targets`, `classifier` and `matcher` may name others on disk
    (a bank `.npz` or a `TargetBank`, a classifier directory, a matcher name or directory).
    A `layout` other than the matcher's is fitted per track by the optimiser instead (one,
    made here)."""
    if layout is not None and get_layout(layout).to_config() != matcher_layout(matcher).to_config():
      network = OptimiserMatcher(get_layout(layout))  # the network is not even loaded
    else:
      network = load_matcher(matcher)
    bank = targets if isinstance(targets, TargetBank) else load_targets(targets)
    return cls(load_classifier(classifier), network, bank)

  def analyze(self, audio, sample_rate: int, instrument: str | None = None,
              reference=None, reference_rate: int | None = None, target=None) -> Analysis:
    """Classify (unless `instrument` is given), compare with the target, predict the EQ.

    `reference` (audio at `reference_rate`, default `sample_rate`) replaces the target with
    that track's spectrum: matching one track to another. `target` (256 dB values on
    `jaxeq.FREQS`, e.g. from `reference_target`) does the same for a curve already at hand.
    Either is a request to match it as closely as the EQ can: the network's EQ is refined by
    the per-curve optimiser (about a second on a CPU).
    """
    return self._analyze(check_audio(audio, sample_rate), sample_rate, instrument, reference,
                         reference_rate, target)

  def _analyze(self, audio: np.ndarray, sample_rate: int, instrument: str | None,
               reference, reference_rate: int | None, target) -> Analysis:
    """`analyze` of audio already checked."""
    mono = analysis_signal_checked(audio, sample_rate)  # for the spectrum and the classifier
    spectrum, floor = signal_spectrum_and_noise_floor(mono)
    probabilities = mix = pitch = None
    generic = 0.0
    requested = reference is not None or target is not None
    if reference is not None:
      target = reference_target(reference, reference_rate or sample_rate)
    if target is None:
      pitch = median_pitch_hz(mono)  # the register the target follows
      if instrument is None:
        probabilities = self.classifier.predict(mono, SAMPLE_RATE)
        instrument = max(probabilities, key=probabilities.get)
        generic = generic_share(probabilities[instrument])
        target, mix = self.targets.blend(probabilities, self.blend_top, pitch)
        if generic:
          target = (1 - generic) * target + generic * self.targets.generic()
          mix = {name: (1 - generic) * share for name, share in mix.items()} if generic < 1 else None
      else:
        instrument = self.targets.find(instrument)
        target, mix = self.targets.target(instrument, pitch), {instrument: 1.0}
    else:
      target, instrument = np.asarray(zero_centre(target)), None
    # A reference or a given curve is a request to match it: no rule of a class applies.
    keep = fundamental_share(mix or {})
    diff, weight, quiet = map(np.asarray, correction(target, spectrum, floor, pitch, keep))
    eq = self._match(diff, quiet, sample_rate, refine=requested)
    # What both carry energy in (not the fade beneath the track's band) decides it.
    note, octaves = None, audible_octaves(np.asarray(audible_weight(target))
                                          * np.asarray(audible_weight(spectrum)))
    if octaves < MIN_AUDIBLE_OCTAVES and requested:
      raise NoCommonBand(f"the reference and the track share only {octaves:.1f} octaves of "
                         f"audible band: there is nothing to match")
    nothing = nothing_to_equalise(mono)
    if nothing is None and octaves < MIN_AUDIBLE_OCTAVES:
      nothing = (f"the track and its target share only {octaves:.1f} octaves of audible band "
                 f"(nothing in common to equalise)")
    if nothing is not None:
      eq = eq.scaled(0.0)
      note = f"EQ left flat: {nothing}"
    else:
      limited = limit_quiet_boosts(eq, quiet)
      if limited is not eq:
        note = (f"boosts scaled down to at most {QUIET_BOOST_DB:g} dB where the track has no "
                f"energy or is mostly noise")
      eq = limited
      if generic:
        strength = 1 - (1 - UNSURE_AMOUNT) * generic
        eq = eq.scaled(strength)
        note = "; ".join(filter(None, [
            f"not sure what this is (under {LOW_CONFIDENCE:.0%}): a target {generic:.0%} generic "
            f"(the mean of every class's) and the EQ at {strength:.0%} strength", note]))
    return Analysis(instrument, probabilities, spectrum, target, mix, weight, diff, eq, note,
                    noise_floor=floor, generic_share=generic, pitch_hz=pitch)

  def _match(self, diff, quiet, sample_rate: int, refine: bool = False) -> EQ:
    """The matcher's EQ for `diff` (boosting at most 3 dB in `quiet`, the correction's quiet
    band), with no band above what `sample_rate` allows (`Layout.for_sample_rate`); `refine`
    (matching to a reference) asks for the closest match the EQ can make, the floor."""
    eq, = self.matcher.for_sample_rate(sample_rate, exact=refine).predict(diff, quiet)
    return eq

  def process(self, audio, sample_rate: int, amount: float = 1.0, instrument: str | None = None,
              reference=None, reference_rate: int | None = None, target=None,
              ceiling_dbtp: float = LOSSLESS_CEILING_DBTP) -> tuple[np.ndarray, Analysis]:
    """`(processed, analysis)`: the EQ applied with its gains scaled by `amount` (0–2), the
    result loudness-matched to the input (BS.1770) and its true peaks limited to
    `ceiling_dbtp` (`jaxeq.limiter.ceiling_dbtp` gives the one for an output format)."""
    if not 0.0 <= amount <= MAX_AMOUNT:
      raise ValueError(f"amount={amount!r} must be between 0 and {MAX_AMOUNT:g}")
    audio = check_audio(audio, sample_rate)
    # Loudness is measured on the other core while this one analyses and filters (scipy's
    # filters and NumPy release the GIL). The EQ and the K-weighting are linear filters, so
    # the output's K-weighted signal is the EQ'd K-weighted input: no need to wait for it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
      weighted = pool.submit(eq_channels, np.atleast_2d(audio.T), sample_rate, K_WEIGHTING)
      analysis = self._analyze(audio, sample_rate, instrument, reference, reference_rate, target)
      eq = analysis.eq.scaled(amount)

      def loudness_and_weighted_output():
        before = weighted.result()
        return gated_loudness(before, sample_rate), eq_channels(before, sample_rate, eq)

      loudness = pool.submit(loudness_and_weighted_output)
      processed = apply_eq_checked(audio, sample_rate, eq)
      target_lufs, weighted_output = loudness.result()
    processed, level = match_loudness(processed, sample_rate, weighted_output, target_lufs,
                                      ceiling_dbtp)
    return processed, dataclasses.replace(analysis, eq=eq, **dataclasses.asdict(level))
