"""What limits the automatic EQ's consistency and level: corrections tried offline.

    python -m benchmarks.correction_variants --data data/medium4 [--clips 240] \
        [--targets BANK.npz] [--out workdirs/correction_variants]

In the spectrum domain, so that a variant costs seconds, not an hour of audio: each of
`--clips` real test recordings (those `benchmarks.autoeq_real` takes) and a copy coloured by
the same random ±9 dB 4-band EQ (its long-term spectrum and noise floor moved by the
colouration's response; its pitch is the original's, as an EQ leaves it), the true
instrument's target from the bank at the track's pitch (`TargetBank.target`, as `AutoEQ`
reads it), and for each way of making the correction, the shipped `cnn_finetuned`'s EQ
(boosts in the quiet band scaled as `AutoEQ` does) and an ideal matcher's (the curve itself:
what no matcher can beat with that correction). Reported per variant:

- **colouration removed**, as `benchmarks.autoeq_real` measures it (its true-instrument row
  on audio agrees within 2 points);
- **make-up gain within ±6 dB**: the EQ's own loudness move, estimated from the track's
  K-weighted long-term spectrum (ungated), and the classes of the tracks beyond;
- **the fundamental**: the EQ at the strongest point under 250 Hz of the drums and basses
  (`jaxeq.classes.KEEPS_FUNDAMENTAL`).

Writes `results.json` and `results.md` to `--out`.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks.consistency import audible_distance, random_colouration
from data_prep import dataset
from jaxeq.atomic import write_text_atomically
from jaxeq.audio_io import load_audio
from jaxeq.autoeq import limit_quiet_boosts
from jaxeq.classes import CLASSES, KEEPS_FUNDAMENTAL
from jaxeq.loudness import K_WEIGHTING
from jaxeq.matcher import load_matcher
from jaxeq.optimiser import fit_curves
from jaxeq.pitch import median_pitch_hz
from jaxeq.spectrum import (D_SMOOTHING_OCTAVES, FREQS, SAMPLE_RATE, Correction, analysis_signal,
                            audible_weight, correction, correction_weight, quiet_band, smooth,
                            soft_limit, without_cut_at_fundamental, zero_centre)
from jaxeq.targets import load_targets

flags.DEFINE_string("data", "data/medium4", "a featurized dataset with a real test split")
flags.DEFINE_integer("clips", 240, "real test clips, evenly spaced over the split")
flags.DEFINE_string("targets", None, "a target bank .npz (default: shipped)")
flags.DEFINE_string("matcher", "cnn_finetuned", "a matcher name or directory")
flags.DEFINE_bool("refine", True, "also the network's EQ refined by the per-curve optimiser "
                  "(as a reference is matched; minutes)")
flags.DEFINE_string("out", "workdirs/correction_variants", "where the results are written")
FLAGS = flags.FLAGS

K_DB = K_WEIGHTING.response_db(FREQS, SAMPLE_RATE)
BANDWIDTH_HZ = np.gradient(FREQS)  # what each grid point's power density stands for
LOG2 = np.log2(FREQS)


def loudness_move_db(spectrum_db, response_db) -> np.ndarray:
  """The loudness an EQ's response adds to a track (dB), from its K-weighted spectrum."""
  power = 10 ** ((spectrum_db + K_DB) / 10) * BANDWIDTH_HZ
  return 10 * np.log10(np.sum(power * 10 ** (response_db / 10), -1) / np.sum(power, -1))


def fundamental_index(spectra_db) -> np.ndarray:
  """Each track's strongest grid point under 250 Hz (where the EQ's cut is scored)."""
  return np.where(FREQS < 250, spectra_db, -np.inf).argmax(-1)


class Material:
  """The test recordings, their coloured copies and their targets."""

  def __init__(self, data_dir, clips: int, bank):
    test = dataset.load_split(data_dir, "test")
    real = [i for i, r in enumerate(test.rows) if r.get("recorded") == "1"]
    chosen = [real[i] for i in np.linspace(0, len(real) - 1, min(clips, len(real))).astype(int)]
    pitches = [median_pitch_hz(analysis_signal(*load_audio(Path(data_dir) / test.rows[i]["path"])))
               for i in chosen]
    self.spectra = test.spectra[chosen].astype(np.float32)
    self.floors = test.noise_floors[chosen].astype(np.float32)
    self.labels = test.labels[chosen]
    self.names = np.array(CLASSES)[self.labels]
    self.keep = np.isin(self.names, sorted(KEEPS_FUNDAMENTAL)).astype(np.float32)
    self.pitches_hz = np.array(pitches)
    self.targets = np.stack([bank.target(name, pitch) for name, pitch in zip(self.names, pitches)])
    self.colourations = np.stack([  # the colourations benchmarks.autoeq_real draws
        random_colouration(np.random.default_rng([0, n])).response_db(FREQS, SAMPLE_RATE)
        for n in range(len(chosen))]).astype(np.float32)

  def copies(self) -> dict:
    """`(spectra, noise floors)` of the originals (`o`) and the coloured copies (`c`)."""
    return {"o": (self.spectra, self.floors),
            "c": (self.spectra + self.colourations, self.floors + self.colourations)}


# --- ways of making the correction: (targets, spectra, floors, pitches, keep) -> Correction


def shipped(targets, spectra, floors, pitches, keep) -> Correction:
  return Correction(*map(np.asarray, correction(targets, spectra, floors, pitches, keep)))


def without_fundamental_rule(targets, spectra, floors, pitches, keep) -> Correction:
  del pitches, keep
  return Correction(*map(np.asarray, correction(targets, spectra, floors)))


def _centred_difference(targets, spectra, weight, centring=None):
  """The smoothed difference, centred on `centring` (default: the correction's band,
  `weight`)."""
  d = np.asarray(smooth(zero_centre(targets) - zero_centre(spectra), D_SMOOTHING_OCTAVES))
  centring = weight if centring is None else centring
  return d - np.sum(centring * d, -1, keepdims=True) / np.sum(centring, -1, keepdims=True)


def energy_centred(share: float):
  """The correction centred (weight `share`) on the track's K-weighted energy rather than flat
  over its band: 0 where its loudness lies, so matching it leaves the loudness alone."""
  def make(targets, spectra, floors, pitches, keep) -> Correction:
    energy = 10 ** ((spectra + K_DB) / 10) * BANDWIDTH_HZ
    weight = np.asarray(correction_weight(targets, spectra, floors))
    centring = (share * weight * energy / energy.sum(-1, keepdims=True)
                + (1 - share) * weight / weight.sum(-1, keepdims=True))
    d = _centred_difference(targets, spectra, weight, centring)
    curve = without_cut_at_fundamental(soft_limit(weight * d), spectra, pitches, keep)
    return Correction(np.asarray(curve), weight, np.asarray(quiet_band(spectra, floors)))
  return make


def level_clamped(max_move_db: float):
  """The shipped correction, shifted (inside its band) only as far as it takes for matching
  it to move the track's loudness by at most `max_move_db`: tracks already within keep it."""
  def make(targets, spectra, floors, pitches, keep) -> Correction:
    weight = np.asarray(correction_weight(targets, spectra, floors))
    d = _centred_difference(targets, spectra, weight)
    shift = np.zeros((len(d), 1))
    for _ in range(4):  # the soft limit and the band's fade make one step inexact
      curve = np.asarray(without_cut_at_fundamental(soft_limit(weight * (d + shift)), spectra,
                                                    pitches, keep))
      move = loudness_move_db(spectra, curve)[:, None]
      shift -= move - np.clip(move, -max_move_db, max_move_db)
    return Correction(curve, weight, np.asarray(quiet_band(spectra, floors)))
  return make


# --- scoring ---------------------------------------------------------------------------


def score(material: Material, responses: dict) -> dict:
  """Colouration removed, make-up within ±6 dB (and the classes beyond), and the EQ at the
  fundamental of drums and basses, from the EQs' responses on the originals (`o`) and the
  coloured copies (`c`)."""
  s, c = material.spectra, material.colourations
  before = after = 0.0
  for n in range(len(s)):
    weight = np.asarray(audible_weight(s[n]))
    before += audible_distance(s[n], s[n] + c[n], weight)
    after += audible_distance(s[n] + responses["o"][n], s[n] + c[n] + responses["c"][n], weight)
  makeup = np.abs(loudness_move_db(s, responses["o"]))
  fundamental = responses["o"][np.arange(len(s)), fundamental_index(s)][material.keep > 0]
  beyond = collections.Counter(material.names[makeup > 6].tolist()).most_common(6)
  return {"removed": float(1 - after / before), "makeup_within_6db": float(np.mean(makeup <= 6)),
          "median_abs_makeup_db": float(np.median(makeup)),
          "eq_at_fundamental_median_db": float(np.median(fundamental)),
          "fundamental_cut_over_3db": float(np.mean(fundamental < -3)),
          "beyond_6db": dict(beyond)}


def responses(material: Material, make, matcher=None) -> dict:
  """The EQ responses on both copies: the matcher's (boosts in the quiet band scaled down as
  `AutoEQ` does), or without one the curve itself (an ideal matcher)."""
  out = {}
  for key, (spectra, floors) in material.copies().items():
    c = make(material.targets, spectra, floors, material.pitches_hz, material.keep)
    if matcher is None:
      out[key] = np.asarray(c.curve)
      continue
    eqs = [limit_quiet_boosts(eq, q) for eq, q in zip(matcher.predict(c.curve), c.quiet)]
    out[key] = np.stack([eq.response_db(FREQS, SAMPLE_RATE) for eq in eqs])
  return out


class LocallyRefined:
  """The network's EQ refined by 100 small steps of the per-curve optimiser from it alone (no
  other start): the nearest better match, not the best."""

  def __init__(self, network, steps: int = 100, learning_rate: float = 0.01):
    self.network, self.steps, self.learning_rate = network, steps, learning_rate

  def predict(self, curves, quiet=None) -> list:
    layout = self.network.layout
    first = np.asarray(layout.to_unit(self.network.predict_settings(curves)))
    unit, _ = fit_curves(layout, curves, starts=1, steps=self.steps,
                         learning_rate=self.learning_rate, quiet=quiet, first=first)
    return layout.eqs_from_unit(unit)


VARIANTS = {
    "as shipped: centred flat over the track's band, soft-limited to ±12 dB, no cut at a "
    "drum's or bass's fundamental": shipped,
    "without the fundamental rule (the last session's)": without_fundamental_rule,
    "centred half on the track's K-weighted energy": energy_centred(0.5),
    "loudness move clamped to ±5 dB": level_clamped(5.0),
    "loudness move clamped to ±3 dB": level_clamped(3.0),
}


def main(argv) -> None:
  del argv
  material = Material(FLAGS.data, FLAGS.clips, load_targets(FLAGS.targets))
  matcher = load_matcher(FLAGS.matcher)
  matchers = {"network": matcher, "ideal matcher": None}
  if FLAGS.refine:
    matchers["network refined"] = matcher.for_sample_rate(SAMPLE_RATE, exact=True)  # as a
    matchers["network nudged"] = LocallyRefined(matcher)  # reference is matched; and gently
  results = {name: {kind: score(material, responses(material, make, m))
                    for kind, m in matchers.items()} for name, make in VARIANTS.items()}
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  write_text_atomically(out / "results.json", json.dumps(results, indent=1) + "\n")

  def cells(r: dict) -> str:
    return (f"{r['removed']:.1%} / {r['makeup_within_6db']:.1%} "
            f"({r['median_abs_makeup_db']:.1f} dB) / {r['eq_at_fundamental_median_db']:+.1f} dB, "
            f"{r['fundamental_cut_over_3db']:.0%}")

  columns = {"network": "network: colouration removed / make-up within ±6 dB (median) / EQ at "
                        "drums' and basses' fundamental: median, cut > 3 dB",
             "network refined": "refined by the optimiser (8 starts, 500 steps): the same",
             "network nudged": "refined from the network's EQ alone (100 small steps): the same",
             "ideal matcher": "ideal matcher: the same"}
  kinds = [kind for kind in columns if kind in matchers]
  lines = [f"{len(material.labels)} real test recordings of {FLAGS.data} and their coloured "
           f"copies, the true instrument's target at the track's pitch "
           f"(bank: {FLAGS.targets or 'shipped'}), matcher {FLAGS.matcher}", "",
           "| correction | " + " | ".join(columns[k] for k in kinds)
           + " | network's make-up beyond 6 dB, by class |", "|---" * (len(kinds) + 2) + "|"]
  lines += [f"| {name} | " + " | ".join(cells(r[k]) for k in kinds) + " | "
            + ", ".join(f"{k} {v}" for k, v in r["network"]["beyond_6db"].items()) + " |"
            for name, r in results.items()]
  write_text_atomically(out / "results.md", "\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
