"""The target bank: for every instrument, the spectrum a well-produced track of it has.

A target is the mean of the zero-mean dB long-term spectra (`jaxeq.long_term_spectrum`) of
reference tracks of that instrument (DESIGN.md §2): real recordings where a class has
them, clean renders where it does not; the provenance says which, per class (`origin`). A bank
you build from your own reference tracks may cover only some classes: loaded, it takes the
others from the shipped bank (`TargetBank.completed`, origin `SHIPPED_FALLBACK`). A track's
target is the classifier's probability-weighted mix of its likeliest classes' targets
(`TargetBank.blend`), so a near-miss between similar instruments costs little. A bank is
saved as one `.npz` file — class names, the frequency grid, the curves, the track counts and
a JSON provenance record — which loads without pickle.
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
from jaxeq.spectrum import FREQS, long_term_spectrum, zero_centre

FORMAT = "jaxeq.targets/1"
SHIPPED = Path(__file__).parent / "assets" / "targets.npz"
# A track's target mixes the targets of its likeliest classes: at most BLEND_TOP of them,
# leaving out those under BLEND_MIN_SHARE of the winner's probability.
BLEND_TOP = 3
BLEND_MIN_SHARE = 0.1
# Where a class's target came from (`TargetBank.origin`).
REAL_RECORDINGS, RENDERS = "real recordings", "renders"
REFERENCE_TRACKS = "reference tracks"  # a user's own, `build_target_bank`
SHIPPED_FALLBACK = "shipped fallback"  # a class the bank lacked, from the shipped bank


@dataclasses.dataclass(frozen=True)
class TargetBank:
  classes: tuple[str, ...]
  curves: np.ndarray  # (classes, 256) zero-mean dB on FREQS
  counts: np.ndarray  # (classes,) reference tracks behind each curve
  provenance: dict

  def __post_init__(self):
    if self.curves.shape != (len(self.classes), len(FREQS)) or len(self.counts) != len(self.classes):
      raise ValueError(f"target bank shapes disagree: {len(self.classes)} classes, curves "
                       f"{self.curves.shape}, counts {np.shape(self.counts)}")

  def find(self, instrument: str) -> str:
    """The bank's name for `instrument`, ignoring case; a `ValueError` suggesting others."""
    return resolve_name(instrument, self.classes, "instrument (no target in this bank)")

  def target(self, instrument: str) -> np.ndarray:
    """The 256-point zero-mean dB target for `instrument`."""
    return self.curves[self.classes.index(self.find(instrument))]

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

    def row(name: str) -> tuple[np.ndarray, int]:
      bank = self if name in self.classes else fallback
      i = bank.classes.index(name)
      return bank.curves[i], int(bank.counts[i])

    rows = [row(name) for name in order]
    origin = {**{name: SHIPPED_FALLBACK for name in missing}, **self.provenance.get("origin", {})}
    return TargetBank(tuple(order), np.stack([curve for curve, _ in rows]).astype(np.float32),
                      np.array([count for _, count in rows]),
                      {**self.provenance, "origin": {name: origin.get(name, "") for name in order}})

  def blend(self, probabilities: Mapping[str, float],
            top: int = BLEND_TOP) -> tuple[np.ndarray, dict[str, float]]:
    """The target of a track the classifier heard as `probabilities`: the mix of the `top`
    likeliest classes' targets, each weighted by its probability (those under
    `BLEND_MIN_SHARE` of the winner's left out), and the mix's weights (summing to 1)."""
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])[:top]
    kept = [(name, p) for name, p in ranked if p >= BLEND_MIN_SHARE * ranked[0][1]]
    total = sum(p for _, p in kept)
    mix = {name: p / total for name, p in kept}
    curve = sum(share * self.target(name) for name, share in mix.items())
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
                 provenance=np.array(json.dumps(self.provenance)))

  @classmethod
  def load(cls, path) -> "TargetBank":
    path = Path(path)
    try:
      with np.load(path, allow_pickle=False) as data:
        if str(data["format"]) != FORMAT:
          raise ValueError(f"format {str(data['format'])!r}, expected {FORMAT!r}")
        if not np.allclose(data["freqs"], FREQS):
          raise ValueError("its frequency grid is not jaxeq.FREQS")
        return cls(tuple(str(c) for c in data["classes"]), data["curves"].astype(np.float32),
                   data["counts"], json.loads(str(data["provenance"])))
    except FileNotFoundError:
      raise ValueError(f"{path}: no such target bank") from None
    except (OSError, KeyError, ValueError) as e:
      raise ValueError(f"{path}: not a jaxeq target bank ({e})") from None


def bank_from_spectra(classes, labels, spectra, provenance: dict, recorded=None) -> TargetBank:
  """A bank from long-term spectra `(tracks, 256)` and their labels (indices into `classes`).

  `recorded` marks the tracks that are real recordings (default: none): a class with any
  gets its target from them alone, the others from their renders. Classes without a track
  are left out.
  """
  curves = np.asarray(zero_centre(np.asarray(spectra, np.float32)))
  labels = np.asarray(labels)
  recorded = np.zeros(len(labels), bool) if recorded is None else np.asarray(recorded, bool)
  present = [i for i in range(len(classes)) if np.any(labels == i)]
  if not present:
    raise ValueError("no usable reference tracks: cannot build a target bank")
  chosen = {i: (labels == i) & recorded if np.any((labels == i) & recorded) else labels == i
            for i in present}
  origin = {classes[i]: REAL_RECORDINGS if np.any(chosen[i] & recorded) else RENDERS
            for i in present}
  provenance = {"built": datetime.date.today().isoformat(),
                "method": "mean of zero-mean long-term spectra (jaxeq.long_term_spectrum)",
                "origin": origin, **provenance}
  return TargetBank(tuple(classes[i] for i in present),
                    np.stack([curves[chosen[i]].mean(axis=0) for i in present]).astype(np.float32),
                    np.array([int(np.sum(chosen[i])) for i in present]), provenance)


def build_target_bank(tracks: Mapping[str, Iterable], load: Callable, source: str = "",
                      on_error: Callable[[str], None] | None = None) -> TargetBank:
  """A bank from reference tracks: `tracks` maps a class name to its audio files.

  `load(path) -> (audio, rate)` reads a track; tracks it rejects (an `AudioError`, say) are
  passed to `on_error` as a message and left out. Classes with no usable track are left out
  (`completed` fills them in). Every class's origin is `REFERENCE_TRACKS`.
  """
  classes, labels, spectra = list(tracks), [], []
  for label, paths in enumerate(tracks.values()):
    for path in paths:
      try:
        spectra.append(long_term_spectrum(*load(path)))
        labels.append(label)
      except ValueError as e:
        if on_error is None:
          raise
        on_error(str(e) if str(path) in str(e) else f"{path}: {e}")
  bank = bank_from_spectra(classes, labels, np.reshape(spectra, (-1, len(FREQS))),
                           {"source": source})
  return dataclasses.replace(bank, provenance={
      **bank.provenance, "origin": {name: REFERENCE_TRACKS for name in bank.classes}})


def load_targets(path=None) -> TargetBank:
  """The shipped target bank, or the bank at `path` with the classes it lacks taken from the
  shipped one (`TargetBank.completed`)."""
  shipped = TargetBank.load(SHIPPED)
  return shipped if path is None else TargetBank.load(path).completed(shipped)
