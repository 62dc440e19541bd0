"""What limits the automatic EQ's consistency and level: targets and corrections tried offline.

    python -m benchmarks.correction_variants --data data/medium4 [--clips 240] \
        [--out workdirs/correction_variants]

In the spectrum domain, so that a variant costs seconds, not an hour of audio: each of
`--clips` real test recordings (those `benchmarks.autoeq_real` takes) and a copy coloured by
the same random ±9 dB 4-band EQ (its long-term spectrum and noise floor moved by the
colouration's response), the true instrument's target, the shipped `cnn_finetuned`'s EQ for
each correction (boosts in the quiet band scaled as `AutoEQ` does). Reported per variant:

- **colouration removed**, as `benchmarks.autoeq_real` measures it (its true-instrument row
  on audio agrees within 2 points);
- **make-up gain within ±6 dB**: the EQ's own loudness move, estimated from the track's
  K-weighted long-term spectrum (ungated);
- **the fundamental**: the EQ at the strongest point under 250 Hz of the low instruments.

Variants: the bank rebuilt from the dataset's reference clips (as shipped), its curves
averaged in power instead of dB, with the real training recordings that carry no recording
chain added (their dataset colouration taken off their spectra), smoothed; targets that
follow the register of the track, read from its spectrum (its references shifted so their
loudest third-octave lies at the track's) or from its pitch (the median YIN fundamental of its
loud frames, which a colouration does not move: references weighted by how near their pitch
is, or shifted to it); and, with the curve itself as the EQ (an ideal matcher), the
correction centred on the track's K-weighted energy instead of flat over its band, and
without the soft limit. Every network row is given beside the ideal matcher's. Writes
`results.json` and `results.md` to `--out`.
"""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from absl import app, flags

from benchmarks.consistency import audible_distance, random_colouration
from data_prep import dataset
from jaxeq.atomic import write_text_atomically
from jaxeq.autoeq import limit_quiet_boosts
from jaxeq.classes import CLASSES
from jaxeq.eq import EQ
from jaxeq.loudness import K_WEIGHTING
from jaxeq.matcher import load_matcher
from jaxeq.spectrum import (D_SMOOTHING_OCTAVES, FREQS, SAMPLE_RATE, audible_weight, correction,
                            correction_weight, quiet_band, smooth, soft_limit, zero_centre)

flags.DEFINE_string("data", "data/medium4", "a featurized dataset with a real test split")
flags.DEFINE_integer("clips", 240, "real test clips, evenly spaced over the split")
flags.DEFINE_string("matcher", "cnn_finetuned", "a matcher name or directory")
flags.DEFINE_string("out", "workdirs/correction_variants", "where the results are written")
FLAGS = flags.FLAGS

LOW_CLASSES = ("kick", "toms", "electric_bass", "contrabass", "tuba", "cello", "upright_bass",
               "synth_bass", "bassoon", "trombone")
K_DB = K_WEIGHTING.response_db(FREQS, SAMPLE_RATE)
BANDWIDTH_HZ = np.gradient(FREQS)  # what each grid point's power density stands for
LOG2 = np.log2(FREQS)


def loudness_move_db(spectrum_db, response_db) -> np.ndarray:
  """The loudness an EQ's response adds to a track (dB), from its K-weighted spectrum."""
  power = 10 ** ((spectrum_db + K_DB) / 10) * BANDWIDTH_HZ
  return 10 * np.log10(np.sum(power * 10 ** (response_db / 10), -1) / np.sum(power, -1))


def median_pitch_octaves(path) -> float:
  """log2 of a recording's pitch: the median YIN fundamental of its frames within 20 dB of its
  loudest."""
  audio, rate = sf.read(path, dtype="float32", always_2d=True)
  mono = audio.mean(axis=1)
  f0 = librosa.yin(mono, fmin=30, fmax=2000, sr=rate, frame_length=4096)
  rms = librosa.feature.rms(y=mono, frame_length=4096, hop_length=1024)[0][:len(f0)]
  return float(np.log2(np.median(f0[:len(rms)][rms >= rms.max() * 0.1])))


def loudest_third(spectra_db) -> np.ndarray:
  """log2 of the frequency of each curve's loudest K-weighted third-octave."""
  return LOG2[np.argmax(np.asarray(smooth(spectra_db + K_DB, 1 / 3)), axis=-1)]


class Material:
  """The test recordings and their coloured copies, and the training references."""

  def __init__(self, data_dir, clips: int):
    test = dataset.load_split(data_dir, "test")
    real = [i for i, r in enumerate(test.rows) if r.get("recorded") == "1"]
    chosen = [real[i] for i in np.linspace(0, len(real) - 1, min(clips, len(real))).astype(int)]
    self.pitches = np.array([median_pitch_octaves(Path(data_dir) / test.rows[i]["path"])
                             for i in chosen])
    self.spectra = test.spectra[chosen].astype(np.float32)
    self.floors = test.noise_floors[chosen].astype(np.float32)
    self.labels = test.labels[chosen]
    self.colourations = np.stack([  # the colourations benchmarks.autoeq_real draws
        random_colouration(np.random.default_rng([0, n])).response_db(FREQS, SAMPLE_RATE)
        for n in range(len(chosen))]).astype(np.float32)
    train = dataset.load_split(data_dir, "train")
    plain = np.array([r["chain"] == "" for r in train.rows])
    clean = train.spectra.astype(np.float32).copy()
    for i in np.flatnonzero(plain & ~train.reference):  # the dataset's colouration taken off
      clean[i] -= EQ.from_json(train.rows[i]["colouration"]).response_db(FREQS, SAMPLE_RATE)
    self.references = np.asarray(zero_centre(clean))
    self.train_labels, self.recorded = train.labels, train.recorded
    self.is_reference, self.plain = train.reference, plain
    self.reference_pitches = np.full(len(train.rows), np.nan)
    for i in np.flatnonzero(train.reference | plain):
      self.reference_pitches[i] = median_pitch_octaves(Path(data_dir) / train.rows[i]["path"])

  def reference_rows(self, label: int, with_plain: bool) -> np.ndarray:
    """The rows of a class's references: its real recordings where it has any, else its
    renders."""
    chosen = (self.is_reference | (self.plain & with_plain)) & (self.train_labels == label)
    real = chosen & self.recorded
    return np.flatnonzero(real if real.any() else chosen)


def class_targets(material: Material, power=False, with_plain=False, octaves=0.0) -> dict:
  """Each test class's target from its references: their mean in dB (or in power)."""
  out = {}
  for label in set(material.labels.tolist()):
    rows = material.references[material.reference_rows(label, with_plain)]
    curve = 10 * np.log10(np.mean(10 ** (rows / 10), 0)) if power else rows.mean(0)
    out[label] = np.asarray(zero_centre(smooth(curve, octaves)))
  return out


def register_targets(material: Material, spectra, span_octaves: float, near_octaves: float):
  """Each track's target: its class's references shifted (by at most `span_octaves`) so that
  their loudest third-octave lies at the track's, within `near_octaves` of it (the plain mean
  beyond, over an octave's fade)."""
  out = []
  for label, peak in zip(material.labels, loudest_third(spectra)):
    rows = material.references[material.reference_rows(label, False)]
    shifts = np.clip(peak - loudest_third(rows), -span_octaves, span_octaves)
    shifted = np.stack([np.interp(LOG2 - s, LOG2, row) for row, s in zip(rows, shifts)]).mean(0)
    far = np.clip(np.abs(LOG2 - peak) - near_octaves, 0.0, 1.0)
    out.append(np.asarray(zero_centre((1 - far) * shifted + far * rows.mean(0))))
  return np.stack(out)


def pitch_targets(material: Material, sigma_octaves: float | None = None,
                  near_octaves: float | None = None, with_plain: bool = False) -> np.ndarray:
  """Each track's target from its pitch (the same for a coloured copy): its class's
  references weighted by a Gaussian of `sigma_octaves` in pitch distance, or shifted (by at
  most 2 octaves) to its pitch up to `near_octaves` above it (the plain mean beyond, over an
  octave's fade)."""
  out = []
  for label, pitch in zip(material.labels, material.pitches):
    index = material.reference_rows(label, with_plain)
    rows, pitches = material.references[index], material.reference_pitches[index]
    if sigma_octaves is not None:
      weight = np.exp(-0.5 * ((pitches - pitch) / sigma_octaves) ** 2)
      weight = weight / weight.sum() if weight.sum() > 1e-9 else np.full(len(rows), 1 / len(rows))
      curve = weight @ rows
    else:
      shifts = np.clip(pitch - pitches, -2.0, 2.0)
      shifted = np.stack([np.interp(LOG2 - s, LOG2, row) for row, s in zip(rows, shifts)]).mean(0)
      far = np.clip(LOG2 - (pitch + near_octaves), 0.0, 1.0)
      curve = (1 - far) * shifted + far * rows.mean(0)
    out.append(np.asarray(zero_centre(curve)))
  return np.stack(out)


def energy_centred(targets, spectra, floors, share: float, limit=True):
  """The correction centred (weight `share`) on the track's K-weighted energy rather than flat
  over its band: 0 where its loudness lies, so matching it leaves the loudness alone."""
  weight = np.asarray(correction_weight(targets, spectra, floors))
  d = np.asarray(smooth(zero_centre(targets) - zero_centre(spectra), D_SMOOTHING_OCTAVES))
  energy = 10 ** ((spectra + K_DB) / 10) * BANDWIDTH_HZ
  centring = (share * weight * energy / energy.sum(-1, keepdims=True)
              + (1 - share) * weight / weight.sum(-1, keepdims=True))
  d = d - np.sum(centring * d, -1, keepdims=True) / np.sum(centring, -1, keepdims=True)
  curve = weight * d
  return np.asarray(soft_limit(curve)) if limit else curve


def score(material: Material, responses: dict) -> dict:
  """Colouration removed, make-up within ±6 dB, and the EQ at the fundamental of low
  instruments, from the EQs' responses on the originals (`o`) and coloured copies (`c`)."""
  s, c = material.spectra, material.colourations
  before = after = 0.0
  for n in range(len(s)):
    weight = np.asarray(audible_weight(s[n]))
    before += audible_distance(s[n], s[n] + c[n], weight)
    after += audible_distance(s[n] + responses["o"][n], s[n] + c[n] + responses["c"][n], weight)
  makeup = np.abs(loudness_move_db(s, responses["o"]))
  low = np.isin(np.array(CLASSES)[material.labels], LOW_CLASSES)
  under = np.where(FREQS < 250, s, -np.inf).argmax(-1)
  fundamental = responses["o"][np.arange(len(s)), under][low]
  return {"removed": float(1 - after / before), "makeup_within_6db": float(np.mean(makeup <= 6)),
          "median_abs_makeup_db": float(np.median(makeup)),
          "eq_at_fundamental_median_db": float(np.median(fundamental)),
          "fundamental_cut_over_3db": float(np.mean(fundamental < -3))}


def network_responses(material: Material, matcher, targets_o, targets_c) -> dict:
  out = {}
  for key, targets, shift in (("o", targets_o, 0.0), ("c", targets_c, material.colourations)):
    corr = correction(targets, material.spectra + shift, material.floors + shift)
    quiet = np.asarray(corr.quiet)
    eqs = [limit_quiet_boosts(eq, q) for eq, q in zip(matcher.predict(np.asarray(corr.curve)),
                                                       quiet)]
    out[key] = np.stack([eq.response_db(FREQS, SAMPLE_RATE) for eq in eqs])
  return out


def main(argv) -> None:
  del argv
  material = Material(FLAGS.data, FLAGS.clips)
  matcher = load_matcher(FLAGS.matcher)
  coloured = material.spectra + material.colourations

  def per_class(targets: dict) -> np.ndarray:
    return np.stack([targets[label] for label in material.labels])

  results = {}

  def both(name: str, targets_o, targets_c=None) -> None:
    """The network's and an ideal matcher's (the curve itself) scores for these targets."""
    targets_c = targets_o if targets_c is None else targets_c
    results[f"network, {name}"] = score(material, network_responses(material, matcher,
                                                                    targets_o, targets_c))
    results[f"ideal matcher, {name}"] = score(material, {
        "o": np.asarray(correction(targets_o, material.spectra, material.floors).curve),
        "c": np.asarray(correction(targets_c, coloured,
                                   material.floors + material.colourations).curve)})

  banks = {"the shipped recipe: mean of the reference clips' dB spectra": {},
           "their mean in power": {"power": True},
           "+ the real training recordings with no recording chain, uncoloured": {
               "with_plain": True},
           "+ those, smoothed 1/3 octave": {"with_plain": True, "octaves": 1 / 3},
           "+ those, smoothed 1 octave": {"with_plain": True, "octaves": 1.0}}
  for name, options in banks.items():
    both(name, per_class(class_targets(material, **options)))
  for span, near in ((1.0, 1.0), (2.0, 3.0)):
    both(f"register from the spectrum (shift <= {span:g} oct, within {near:g} oct)",
         register_targets(material, material.spectra, span, near),
         register_targets(material, coloured, span, near))
  for sigma in (0.25, 0.5, 1.0):
    both(f"register from the pitch, references weighted (sigma {sigma:g} oct)",
         pitch_targets(material, sigma_octaves=sigma))
  for near in (1.0, 2.0):
    both(f"register from the pitch, references shifted (up to {near:g} oct above)",
         pitch_targets(material, near_octaves=near))
  both("register from the pitch, weighted (sigma 0.5 oct), + the uncoloured recordings",
       pitch_targets(material, sigma_octaves=0.5, with_plain=True))
  targets = per_class(class_targets(material))
  for share in (0.5, 1.0):
    results[f"ideal matcher, centred {share:.0%} on the track's energy"] = score(material, {
        "o": energy_centred(targets, material.spectra, material.floors, share),
        "c": energy_centred(targets, coloured, material.floors + material.colourations, share)})
  results["ideal matcher, flat centring, no soft limit"] = score(material, {
      "o": energy_centred(targets, material.spectra, material.floors, 0.0, limit=False),
      "c": energy_centred(targets, coloured, material.floors + material.colourations, 0.0,
                          limit=False)})
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  write_text_atomically(out / "results.json", json.dumps(results, indent=1) + "\n")
  lines = [f"{FLAGS.clips} real test recordings of {FLAGS.data} and their coloured copies, the "
           f"true instrument's target, matcher {FLAGS.matcher}", "",
           "| variant | colouration removed | make-up within ±6 dB (median) | EQ at low "
           "instruments' fundamental: median, share cut > 3 dB |", "|---|---|---|---|"]
  lines += [f"| {name} | {r['removed']:.1%} | {r['makeup_within_6db']:.1%} "
            f"({r['median_abs_makeup_db']:.1f} dB) | {r['eq_at_fundamental_median_db']:+.1f} dB, "
            f"{r['fundamental_cut_over_3db']:.0%} |" for name, r in results.items()]
  write_text_atomically(out / "results.md", "\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
