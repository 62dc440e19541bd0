"""The target bank: for every instrument, the spectrum a well-produced track of it has.

A target is the mean of the zero-mean dB long-term spectra (`jaxeq.long_term_spectrum`) of
reference tracks of that instrument (DESIGN.md §2): real recordings where a class has
them, clean renders where it does not; the provenance says which, per class (`origin`).
It follows the register a track plays in: the bank keeps its references with their pitches
(`jaxeq.pitch`), and a track's target weighs them by how near their pitch is to its own
(`TargetBank.target(name, pitch_hz)`), so a high violin phrase is not compared with the class's
low notes, nor a low bass note's fundamental with the mean of many notes' (which lies under
any one of them). A bank
you build from your own reference tracks may cover only some classes: loaded, it takes the
others from the shipped bank (`TargetBank.completed`, origin `SHIPPED_FALLBACK`). A track's
target is the classifier's probability-weighted mix of its likeliest classes' targets
(`TargetBank.blend`), so a near-miss between similar instruments costs little. A bank is
saved as one `.npz` file — class names, the frequency grid, the curves, the track counts, the
references and their pitches, and a JSON provenance record — which loads without pickle.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from jaxeq.atomic import atomic_path
from jaxeq.classes import resolve_name
from jaxeq.pitch import median_pitch_hz
from jaxeq.spectrum import FREQS, SAMPLE_RATE, analysis_signal, long_term_spectrum, zero_centre

FORMAT = "jaxeq.targets/2"
REGISTERLESS_FORMAT = "jaxeq.targets/1"  # a bank saved before registers: class means only
SHIPPED = Path(__file__).parent / "assets" / "targets.npz"
# A track's target mixes the targets of its likeliest classes: at most BLEND_TOP of them,
# leaving out those under BLEND_MIN_SHARE of the winner's probability.
BLEND_TOP = 3
BLEND_MIN_SHARE = 0.1
# Where a class's target came from (`TargetBank.origin`).
REAL_RECORDINGS, RENDERS = "real recordings", "renders"
REFERENCE_TRACKS = "reference tracks"  # a user's own, `build_target_bank`
SHIPPED_FALLBACK = "shipped fallback"  # a class the bank lacked, from the shipped bank
# A track's target weighs its class's references by a Gaussian of their pitch distance to the
# track's, of this many octaves (RESULTS, issue 28: 0.25-1 octave alike; 0.5 chosen).
REGISTER_OCTAVES = 0.5
# A class follows the register only where most of its references have a pitch, and at least
# two: drums, a distorted guitar's chords or an ensemble are mostly unpitched, and a target
# made of the few references YIN happened to pitch would be those clips' colour, not the
# class's (the shipped bank's distorted guitar: 1 of 64).
MIN_PITCHED_SHARE = 0.5
MIN_PITCHED_REFERENCES = 2


def _no_references() -> np.ndarray:
  return np.zeros((0, len(FREQS)), np.float32)


@dataclasses.dataclass(frozen=True)
class TargetBank:
  classes: tuple[str, ...]
  curves: np.ndarray  # (classes, 256) zero-mean dB on FREQS: each class's mean
  counts: np.ndarray  # (classes,) reference tracks behind each curve
  provenance: dict
  # The reference tracks behind the curves: each one's zero-mean spectrum, its class (index
  # into `classes`) and its pitch (Hz). None kept by a bank saved before registers.
  references: np.ndarray = dataclasses.field(default_factory=_no_references)
  reference_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
  reference_pitches_hz: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

  def __post_init__(self):
    if self.curves.shape != (len(self.classes), len(FREQS)) or len(self.counts) != len(self.classes):
      raise ValueError(f"target bank shapes disagree: {len(self.classes)} classes, curves "
                       f"{self.curves.shape}, counts {np.shape(self.counts)}")
    count = len(self.references)
    if (self.references.shape != (count, len(FREQS)) or len(self.reference_labels) != count
        or len(self.reference_pitches_hz) != count
        or np.any((self.reference_labels < 0) | (self.reference_labels >= len(self.classes)))):
      raise ValueError(f"target bank references disagree: spectra {self.references.shape}, "
                       f"{len(self.reference_labels)} labels, "
                       f"{len(self.reference_pitches_hz)} pitches")

  def find(self, instrument: str) -> str:
    """The bank's name for `instrument`, ignoring case; a `ValueError` suggesting others."""
    return resolve_name(instrument, self.classes, "instrument (no target in this bank)")

  def target(self, instrument: str, pitch_hz: float | None = None) -> np.ndarray:
    """The 256-point zero-mean dB target for `instrument`: its mean, or, given the track's
    `pitch_hz`, its references weighted by a Gaussian of `REGISTER_OCTAVES` in pitch distance
    (the mean where the class does not follow the register, `follows_register`, or none of
    its references lies within reach)."""
    index = self.classes.index(self.find(instrument))
    if (pitch_hz is None or not np.isfinite(pitch_hz) or pitch_hz <= 0
        or not self.follows_register(instrument)):
      return self.curves[index]
    rows = np.flatnonzero(self.reference_labels == index)
    distance = np.log2(pitch_hz / self.reference_pitches_hz[rows]) / REGISTER_OCTAVES
    weight = np.exp(-0.5 * distance**2)
    if not weight.sum() > 1e-9:
      return self.curves[index]
    return np.asarray(zero_centre(weight @ self.references[rows] / weight.sum()), np.float32)

  def follows_register(self, instrument: str) -> bool:
    """Whether `instrument`'s target follows a track's pitch: at least `MIN_PITCHED_SHARE` of
    the tracks behind its mean, and `MIN_PITCHED_REFERENCES`, kept with a pitch."""
    index = self.classes.index(self.find(instrument))
    pitched = int(np.sum(self.reference_labels == index))
    return pitched >= max(MIN_PITCHED_REFERENCES, MIN_PITCHED_SHARE * self.counts[index])

  def register_hz(self, instrument: str, quantiles=(0.1, 0.9)) -> np.ndarray:
    """The pitches (Hz) at `quantiles` of `instrument`'s references (empty when its target
    follows no register): the register its target covers."""
    rows = self.reference_labels == self.classes.index(self.find(instrument))
    if not self.follows_register(instrument):
      return np.zeros(0)
    return np.quantile(self.reference_pitches_hz[rows], quantiles)

  def origin(self, instrument: str) -> str:
    """What the target was made from: `REAL_RECORDINGS`, `RENDERS`, `REFERENCE_TRACKS`,
    `SHIPPED_FALLBACK`, or '' when not recorded."""
    return self.provenance.get("origin", {}).get(self.find(instrument), "")

  def completed(self, fallback: "TargetBank") -> "TargetBank":
    """This bank with the classes it lacks taken from `fallback` (the shipped bank), their
    origin `SHIPPED_FALLBACK`; in `fallback`'s order, then this bank's other classes."""
    missing = [name for name in fallback.classes if name not in self.classes]
    if not missing:
      return self
    order = list(fallback.classes) + [c for c in self.classes if c not in fallback.classes]
    origin = {**{name: SHIPPED_FALLBACK for name in missing}, **self.provenance.get("origin", {})}
    return combined({name: self if name in self.classes else fallback for name in order},
                    {**self.provenance,
                     "origin": {name: origin.get(name, "") for name in order}})

  def blend(self, probabilities: Mapping[str, float], top: int = BLEND_TOP,
            pitch_hz: float | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """The target of a track the classifier heard as `probabilities` (and plays at
    `pitch_hz`): the mix of the `top` likeliest classes' targets, each weighted by its
    probability (those under `BLEND_MIN_SHARE` of the winner's left out), and the mix's
    weights (summing to 1)."""
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])[:top]
    kept = [(name, p) for name, p in ranked if p >= BLEND_MIN_SHARE * ranked[0][1]]
    total = sum(p for _, p in kept)
    mix = {name: p / total for name, p in kept}
    curve = sum(share * self.target(name, pitch_hz) for name, share in mix.items())
    return np.asarray(curve, np.float32), mix

  def generic(self) -> np.ndarray:
    """The mean of every class's target: the tonal balance of no instrument in particular, for
    a track the classifier cannot name."""
    return np.asarray(zero_centre(self.curves.mean(axis=0)), np.float32)

  def save(self, path) -> None:
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
      with open(tmp, "wb") as f:  # a file object stops numpy from appending another .npz
        np.savez(f, format=np.array(FORMAT), classes=np.array(self.classes), freqs=FREQS,
                 curves=self.curves.astype(np.float32), counts=self.counts.astype(np.int64),
                 references=self.references.astype(np.float32),
                 reference_labels=self.reference_labels.astype(np.int64),
                 reference_pitches_hz=self.reference_pitches_hz.astype(np.float64),
                 provenance=np.array(json.dumps(self.provenance)))

  @classmethod
  def load(cls, path) -> "TargetBank":
    path = Path(path)
    try:
      with np.load(path, allow_pickle=False) as data:
        if str(data["format"]) not in (FORMAT, REGISTERLESS_FORMAT):
          raise ValueError(f"format {str(data['format'])!r}, expected {FORMAT!r}")
        if not np.allclose(data["freqs"], FREQS):
          raise ValueError("its frequency grid is not jaxeq.FREQS")
        references = ({} if str(data["format"]) == REGISTERLESS_FORMAT else dict(
            references=data["references"].astype(np.float32),
            reference_labels=data["reference_labels"].astype(int),
            reference_pitches_hz=data["reference_pitches_hz"].astype(np.float64)))
        return cls(tuple(str(c) for c in data["classes"]), data["curves"].astype(np.float32),
                   data["counts"], json.loads(str(data["provenance"])), **references)
    except FileNotFoundError:
      raise ValueError(f"{path}: no such target bank") from None
    except (OSError, KeyError, ValueError) as e:
      raise ValueError(f"{path}: not a jaxeq target bank ({e})") from None


def bank_from_spectra(classes, labels, spectra, provenance: dict, recorded=None,
                      pitches_hz=None) -> TargetBank:
  """A bank from long-term spectra `(tracks, 256)`, their labels (indices into `classes`) and
  their pitches (Hz, `jaxeq.pitch.median_pitch_hz`; without them the targets follow no
  register).

  `recorded` marks the tracks that are real recordings (default: none): a class with any
  gets its target from them alone, the others from their renders. Classes without a track
  are left out.
  """
  curves = np.asarray(zero_centre(np.asarray(spectra, np.float32)))
  labels = np.asarray(labels)
  recorded = np.zeros(len(labels), bool) if recorded is None else np.asarray(recorded, bool)
  pitches = (np.full(len(labels), np.nan) if pitches_hz is None
             else np.asarray(pitches_hz, np.float64))
  present = [i for i in range(len(classes)) if np.any(labels == i)]
  if not present:
    raise ValueError("no usable reference tracks: cannot build a target bank")
  chosen = {i: (labels == i) & recorded if np.any((labels == i) & recorded) else labels == i
            for i in present}
  origin = {classes[i]: REAL_RECORDINGS if np.any(chosen[i] & recorded) else RENDERS
            for i in present}
  provenance = {"built": datetime.date.today().isoformat(),
                "method": "mean of zero-mean long-term spectra (jaxeq.long_term_spectrum)",
                "register": (f"a track's target weighs its class's references by a Gaussian of "
                             f"{REGISTER_OCTAVES:g} octave in pitch distance (median YIN f0, "
                             f"jaxeq.pitch)"),
                "origin": origin, **provenance}
  kept = [np.flatnonzero(chosen[i] & np.isfinite(pitches)) for i in present]
  return TargetBank(tuple(classes[i] for i in present),
                    np.stack([curves[chosen[i]].mean(axis=0) for i in present]).astype(np.float32),
                    np.array([int(np.sum(chosen[i])) for i in present]), provenance,
                    curves[np.concatenate(kept)].astype(np.float32),
                    _labels([len(k) for k in kept]), pitches[np.concatenate(kept)])


def combined(sources: Mapping[str, TargetBank], provenance: dict) -> TargetBank:
  """One bank of the classes `sources` names (in its order), each class's curve, count and
  references taken from the bank it maps to."""
  rows = []
  for name, bank in sources.items():
    index = bank.classes.index(name)
    kept = bank.reference_labels == index
    rows.append((bank.curves[index], int(bank.counts[index]), bank.references[kept],
                 bank.reference_pitches_hz[kept]))
  return TargetBank(tuple(sources), np.stack([r[0] for r in rows]).astype(np.float32),
                    np.array([r[1] for r in rows]), provenance,
                    np.concatenate([r[2] for r in rows]).astype(np.float32),
                    _labels([len(r[2]) for r in rows]), np.concatenate([r[3] for r in rows]))


def _labels(counts) -> np.ndarray:
  """The class index of each reference, for classes holding `counts` references in turn."""
  return np.repeat(np.arange(len(counts)), counts).astype(int)


def build_target_bank(tracks: Mapping[str, Iterable], load: Callable, source: str = "",
                      on_error: Callable[[str], None] | None = None) -> TargetBank:
  """A bank from reference tracks: `tracks` maps a class name to its audio files.

  `load(path) -> (audio, rate)` reads a track; tracks it rejects (an `AudioError`, say) are
  passed to `on_error` as a message and left out. Classes with no usable track are left out
  (`completed` fills them in). Every class's origin is `REFERENCE_TRACKS`.
  """
  classes, labels, spectra, pitches = list(tracks), [], [], []
  for label, paths in enumerate(tracks.values()):
    for path in paths:
      try:
        signal = analysis_signal(*load(path))
        spectra.append(long_term_spectrum(signal, SAMPLE_RATE))
        pitches.append(median_pitch_hz(signal))
        labels.append(label)
      except ValueError as e:
        if on_error is None:
          raise
        on_error(str(e) if str(path) in str(e) else f"{path}: {e}")
  bank = bank_from_spectra(classes, labels, np.reshape(spectra, (-1, len(FREQS))),
                           {"source": source}, pitches_hz=pitches)
  return dataclasses.replace(bank, provenance={
      **bank.provenance, "origin": {name: REFERENCE_TRACKS for name in bank.classes}})


def load_targets(path=None) -> TargetBank:
  """The shipped target bank, or the bank at `path` with the classes it lacks taken from the
  shipped one (`TargetBank.completed`)."""
  shipped = TargetBank.load(SHIPPED)
  return shipped if path is None else TargetBank.load(path).completed(shipped)
