"""The automatic EQ on real recordings: does it correct tonal balance, and are its gains ones
a producer would keep?

    python -m benchmarks.autoeq_real --data data/medium4 [--clips 960] [--optimiser_clips 120] \
        [--targets BANK.npz] [--classifier DIR] [--matcher NAME] [--out workdirs/autoeq_real]

**Consistency.** Every real test recording (held out from training, `data_prep.recordings`)
is coloured as a bad microphone or room would colour it: a random 4-band EQ (low shelf, two
peaks, high shelf, gains uniform within ±9 dB). The original and the coloured copy are
auto-EQ'd; an ideal automatic EQ brings both to the same tonal balance. Reported: the share of
the colouration's audible spectral distance that is removed, 1 − Σ after / Σ before, the
distance being the mean |difference| of the two zero-centred long-term spectra over the
original's audible band (`jaxeq.audible_weight`). Side by side: the classifier's blended
target (as `jaxeq process` runs), its argmax target, the true instrument's target, reference
matching (the original itself is the coloured copy's target), and the per-curve optimiser as
the matcher on the first `--optimiser_clips`: how much of what is left is the classifier's,
the target's and the matcher's.

**Gains.** Over the EQs of the originals and the coloured copies, as `jaxeq process` makes
them: median |gain|, the share of bands at the layout's ±12 dB limit, and the recordings
given a boost of more than 3 dB where they have no energy (more than 45 dB under their
loudest third-octave). And how often an original has a noise floor (quiet frames,
`jaxeq.spectrum.spectrum_and_noise_floor`) and how much of its audible band lies under it.

**Level.** Each original processed as `jaxeq process` does it (classifier on): the make-up
gain its EQ needs to keep its loudness (the EQ's own loudness move), what the true-peak
limiter takes, and how often the limiter's cap (`jaxeq.limiter.MAX_LIMITING_DB`) left the
output quieter.
Writes `results.json`, `results.md` and `gains.png` into `--out`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tqdm
from absl import app, flags

import jaxeq
from benchmarks.consistency import (COLOURATION_DB, after_eq, audible_distance,
                                    random_colouration)
from data_prep import dataset
from jaxeq import plots
from jaxeq.autoeq import AutoEQ
from jaxeq.atomic import write_text_atomically
from jaxeq.classes import CLASSES
from jaxeq.eq import EQ
from jaxeq.spectrum import FLOOR_DB, QUIET_BOOST_DB, audible_weight, in_noise, without_energy

flags.DEFINE_string("data", "data/medium4", "a featurized dataset with a real test split")
flags.DEFINE_integer("clips", 960, "real test clips, evenly spaced over the split")
flags.DEFINE_integer("optimiser_clips", 120, "of those, how many the per-curve optimiser fits")
flags.DEFINE_string("targets", None, "a target bank .npz (default: shipped)")
flags.DEFINE_string("classifier", None, "an exported classifier directory (default: shipped)")
flags.DEFINE_string("matcher", "cnn_finetuned", "a matcher name or directory")
flags.DEFINE_integer("seed", 0, "seed of the colourations")
flags.DEFINE_string("out", "workdirs/autoeq_real", "where the results are written")
FLAGS = flags.FLAGS

CONDITIONS = ("classifier, blended target", "classifier, argmax target", "true instrument",
              "reference matching")


def quiet_boost(spectrum_db, eq: EQ) -> float:
  """The largest boost (dB) `eq` makes where the track is > 45 dB under its loudest third-octave."""
  quiet = np.asarray(without_energy(spectrum_db))
  if not quiet.any():
    return 0.0
  return float(np.max(eq.response_db(jaxeq.FREQS[quiet], jaxeq.SAMPLE_RATE)))


def main(argv) -> None:
  del argv
  split = dataset.load_split(FLAGS.data, "test")
  real = [i for i, r in enumerate(split.rows) if r.get("recorded") == "1"]
  chosen = [real[i] for i in np.linspace(0, len(real) - 1, min(FLAGS.clips, len(real))).astype(int)]
  auto = AutoEQ.from_pretrained(targets=FLAGS.targets, classifier=FLAGS.classifier,
                                matcher=FLAGS.matcher)
  fitted = AutoEQ(auto.classifier, jaxeq.OptimiserMatcher(auto.matcher.layout), auto.targets)
  limit = max(abs(b.gain_db[1]) for b in auto.matcher.layout.bands)
  distances = {c: [] for c in CONDITIONS + ("true instrument, optimiser",)}
  before, correct, gains, boosts, floors, in_floor, levels = [], [], [], [], [], [], []
  for n, i in enumerate(tqdm.tqdm(chosen, desc="recordings", unit="clip")):
    original, rate = jaxeq.load_audio(Path(FLAGS.data) / split.rows[i]["path"])
    coloured = jaxeq.apply_eq(original, rate, random_colouration(np.random.default_rng([FLAGS.seed, n])))
    truth = CLASSES[int(split.labels[i])]
    spectra = {"o": jaxeq.long_term_spectrum(original, rate),
               "c": jaxeq.long_term_spectrum(coloured, rate)}
    audio = {"o": original, "c": coloured}
    weight = np.asarray(audible_weight(spectra["o"]))
    before.append(audible_distance(spectra["o"], spectra["c"], weight))
    # As `jaxeq process` runs: the classifier's blended target, its argmax, or the instrument
    # named (a given target curve would be matched as a reference is, refined per track).
    named = {}
    for k in "oc":
      probabilities = auto.classifier.predict(audio[k], rate)
      correct.append(max(probabilities, key=probabilities.get) == truth)
      named[k] = {"classifier, blended target": None,
                  "classifier, argmax target": max(probabilities, key=probabilities.get),
                  "true instrument": truth}
    for condition in CONDITIONS[:3]:
      analyses = {k: auto.analyze(audio[k], rate, instrument=named[k][condition]) for k in "oc"}
      eqs = {k: a.eq for k, a in analyses.items()}
      distances[condition].append(audible_distance(after_eq(spectra["o"], eqs["o"]),
                                                   after_eq(spectra["c"], eqs["c"]), weight))
      if condition == CONDITIONS[0]:
        for k in "oc":
          gains += [abs(b.gain_db) for b in eqs[k].bands]
          boosts.append(quiet_boost(spectra[k], eqs[k]))
        floor = analyses["o"].noise_floor
        floors.append(bool(np.any(floor > FLOOR_DB)))
        in_floor.append(float(np.sum(weight * in_noise(spectra["o"], floor)) / np.sum(weight)))
    levels.append(auto.process(original, rate)[1])
    matched = auto.analyze(coloured, rate, reference=original).eq
    distances["reference matching"].append(
        audible_distance(spectra["o"], after_eq(spectra["c"], matched), weight))
    if n < FLAGS.optimiser_clips:
      eqs = {k: fitted.analyze(audio[k], rate, instrument=truth).eq for k in "oc"}
      distances["true instrument, optimiser"].append(audible_distance(
          after_eq(spectra["o"], eqs["o"]), after_eq(spectra["c"], eqs["c"]), weight))

  before = np.array(before)
  gains, boosts = np.array(gains), np.array(boosts)
  makeup = np.abs([level.makeup_gain_db for level in levels])
  limited = np.array([level.limited_db for level in levels])
  results = {
      "data": FLAGS.data, "recordings": len(chosen), "targets": FLAGS.targets or "shipped",
      "classifier": FLAGS.classifier or "shipped", "matcher": FLAGS.matcher,
      "classifier_accuracy": float(np.mean(correct)),
      "colouration_distance_db": float(np.mean(before)),
      "removed": {c: float(1 - np.sum(d) / np.sum(before[:len(d)]))
                  for c, d in distances.items() if d},
      "clips": {c: len(d) for c, d in distances.items()},
      "median_abs_gain_db": float(np.median(gains)),
      "bands_at_limit": float(np.mean(gains >= limit - 0.1)),
      "noise_boosts": float(np.mean(boosts > QUIET_BOOST_DB)),
      "largest_quiet_boost_db": float(np.max(boosts)),
      "noise_floor_found": float(np.mean(floors)),
      "audible_band_under_noise_floor": float(np.mean(in_floor)),
      "level": {"makeup_within_6db": float(np.mean(makeup <= 6.0)),
                "median_abs_makeup_db": float(np.median(makeup)),
                "largest_abs_makeup_db": float(np.max(makeup)),
                "limited_over_3db": float(np.mean(limited > 3.0)),
                "largest_limited_db": float(np.max(limited)),
                "limiter_capped": float(np.mean([level.limiter_capped for level in levels])),
                "quieter_when_capped_lu": float(np.mean(
                    [level.loudness_change_lu for level in levels if level.limiter_capped]
                    or [0.0]))},
  }
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  write_text_atomically(out / "results.json", json.dumps(results, indent=1) + "\n")
  write_text_atomically(out / "results.md", results_markdown(results))
  plots.plot_gain_histogram(gains, limit, out / "gains.png",
                            f"{len(chosen)} real recordings and their coloured copies")
  print(results_markdown(results))


def results_markdown(results: dict) -> str:
  lines = [f"{results['recordings']} real test recordings of {results['data']}, each also "
           f"coloured by a random ±{COLOURATION_DB:g} dB 4-band EQ (mean audible distance "
           f"{results['colouration_distance_db']:.2f} dB); classifier accuracy on both "
           f"{results['classifier_accuracy']:.1%}; targets {results['targets']}, matcher "
           f"{results['matcher']}.", "",
           "| target (matcher) | recordings | colouration removed |", "|---|---|---|"]
  for condition, removed in results["removed"].items():
    lines.append(f"| {condition} | {results['clips'][condition]} | {removed:.1%} |")
  lines += ["", "| gains (classifier on, blended target) | value |", "|---|---|",
            f"| median \\|gain\\| | {results['median_abs_gain_db']:.2f} dB |",
            f"| bands at the ±12 dB limit | {results['bands_at_limit']:.1%} |",
            f"| recordings boosted > 3 dB where they have no energy | "
            f"{results['noise_boosts']:.1%} (largest {results['largest_quiet_boost_db']:.1f} dB) |",
            f"| originals with a noise floor (quiet frames) | {results['noise_floor_found']:.1%} |",
            f"| their audible band taken for noise (mean share) | "
            f"{results['audible_band_under_noise_floor']:.1%} |"]
  level = results["level"]
  lines += ["", "| level (originals processed as `jaxeq process` does) | value |", "|---|---|",
            f"| make-up gain within ±6 dB | {level['makeup_within_6db']:.1%} |",
            f"| median / largest \\|make-up gain\\| | {level['median_abs_makeup_db']:.2f} / "
            f"{level['largest_abs_makeup_db']:.1f} dB |",
            f"| limited by more than 3 dB | {level['limited_over_3db']:.1%} (largest "
            f"{level['largest_limited_db']:.1f} dB) |",
            f"| limiter capped, output quieter | {level['limiter_capped']:.1%} (by "
            f"{-level['quieter_when_capped_lu']:.1f} LU on average) |"]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  app.run(main)
