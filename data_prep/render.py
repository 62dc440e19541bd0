"""Render the instrument-track dataset: GM banks through FluidSynth and TiMidity++, real
recordings through the sampler and the drum kits (DESIGN.md §3).

    python -m data_prep.render --size smoke|default|medium|paper --out DIR [--seed 0] [--workers N]
        [--num-shards N --shard-index I] [--classes kick,snare,...] [--chain room,noise,...|none]

Writes `DIR/audio/SPLIT/CLASS/*.flac` (44.1 kHz mono), `DIR/manifest.csv` and
`DIR/dataset.json` (size, seed, banks, the real recordings with their licences and
attributions, the command). Coloured clips of the training splits also go through a random
recording chain (room, noise, compression, saturation, band-limiting, a lossy codec:
`data_prep.recording_chain`), drawn per clip; test clips get the EQ colouration only, so the
test split measures recordings, not the chain (`--chain` names the stages used, to measure
which matter). A clip that is silent (after a one-shot is
trimmed) is skipped and listed. Clips already on disk are skipped, so an
interrupted render resumes; a cluster job array renders disjoint shards into one DIR (each
shard writes the manifest of every clip rendered so far; run once more without the shard
flags when all are done to be sure it lists them all: it renders nothing that exists).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import tqdm

import jaxeq
from data_prep import fetch, manifest, plan, recording_chain, recordings
from data_prep.colouration import random_colouration
from data_prep.material import make_material, make_one_shot
from data_prep.sound_source import SoundSource
from data_prep.synth import (SOUNDS, SAMPLE_RATE, Renderer, SetupError, find_bank,
                             import_fluidsynth)
from jaxeq.atomic import write_text_atomically
from jaxeq.eq import EQ
from jaxeq.filtering import apply_eq

# 5: clean recorded reference clips, for targets from real recordings (4: real recordings,
# short phrases and one-shots, the recording chain; 3: three GM banks).
DATASET_FORMAT = "jaxeq.dataset/5"
# Clips are stored at a random peak level in this range (dBFS): levels vary, nothing clips.
PEAK_DBFS = (-18.0, -3.0)
# A one-shot ends where its sound has fallen this far below its peak (at least ONE_SHOT_MIN_S).
ONE_SHOT_TAIL_DB = -60.0
ONE_SHOT_MIN_S = 0.05


# The recording chain's stages a training clip can go through (its EQ is the colouration).
CHAIN_STAGES = tuple(s for s in recording_chain.STAGES if s != "eq")


class SilentClip(RuntimeError):
  """A clip with nothing audible: left out of the dataset and listed, not a failure."""


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  args = _parse_args(argv)
  out = Path(args.out)
  try:
    stages = chain_stages(args.chain)
    clips = plan.plan(args.size, args.seed, args.classes.split(",") if args.classes else None)
    mine = plan.shard(clips, args.num_shards, args.shard_index)
    import_fluidsynth()
    banks = {bank: str(find_bank(bank)) for bank in sorted({c.bank for c in mine if not c.recorded})}
    recorded = sorted({name for c in mine if c.recorded
                       for name in recordings.fetched_names(c.bank)})
    for name in recorded:
      fetch.source_dir(name)  # every recording is there before any work starts
    _claim(out, args, stages, banks, fetch.attributions(recorded),
           command="python -m data_prep.render " + shlex.join(argv))
  except (SetupError, ValueError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  journal_dir = out / manifest.JOURNAL_DIR
  done = {p: row for p, row in manifest.read_journal(journal_dir).items() if (out / p).is_file()}
  todo = [c for c in mine if c.path not in done]
  print(f"{len(mine)} clips in this shard: {len(mine) - len(todo)} already on disk, "
        f"rendering {len(todo)} with {args.workers} worker(s)")
  failures, silent = [], []
  journal = journal_dir / f"shard-{args.shard_index:04d}-of-{args.num_shards:04d}.jsonl"
  with manifest.open_journal(journal) as write_row:
    if todo:
      context = multiprocessing.get_context("spawn")  # safe with JAX and on every platform
      with context.Pool(min(args.workers, len(todo))) as pool:
        results = pool.imap_unordered(_render_in_worker, [(c, str(out), stages) for c in todo])
        for row in tqdm.tqdm(results, total=len(todo), desc="render", unit="clip"):
          if isinstance(row, str):
            (silent if row.startswith("silent: ") else failures).append(row)
          else:
            write_row(row)
  done = {p: row for p, row in manifest.read_journal(journal_dir).items() if (out / p).is_file()}
  rows = [done[c.path] for c in clips if c.path in done]
  manifest.write_manifest(out / manifest.FILENAME, rows)
  print(f"{out / manifest.FILENAME}: {len(rows)} of {len(clips)} planned clips")
  for clip in silent:
    print(f"skipped, {clip}", file=sys.stderr)
  for failure in failures:
    print(f"failed: {failure}", file=sys.stderr)
  return 1 if failures else 0


def _parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m data_prep.render", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--size", choices=sorted(plan.SIZES), default="default")
  parser.add_argument("--out", required=True, help="dataset folder")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--num-shards", type=int, default=1)
  parser.add_argument("--shard-index", type=int, default=0)
  parser.add_argument("--classes", default="", help="comma-separated subset of the classes")
  parser.add_argument("--chain", default=",".join(CHAIN_STAGES),
                      help="the recording-chain stages of the training clips, or 'none'")
  args = parser.parse_args(argv)
  if args.workers < 1:
    parser.error(f"--workers {args.workers}: expected at least 1")
  return args


def chain_stages(spec: str) -> tuple[str, ...]:
  """The recording-chain stages `--chain` names ('none': no chain)."""
  stages = () if spec == "none" else tuple(s for s in spec.split(",") if s)
  unknown = sorted(set(stages) - set(CHAIN_STAGES))
  if unknown:
    raise ValueError(f"--chain {spec!r}: unknown stage {unknown[0]!r}, expected 'none' or some "
                     f"of {','.join(CHAIN_STAGES)}")
  return tuple(s for s in CHAIN_STAGES if s in stages)


def _claim(out: Path, args, stages: tuple[str, ...], banks: dict[str, str],
           sources: list[dict], command: str) -> None:
  """Writes `dataset.json`, or checks that the one in `out` is for the same size, seed and
  chain."""
  info_path = out / "dataset.json"
  if info_path.is_file():
    info = json.loads(info_path.read_text(encoding="utf-8"))
    have = (info.get("format"), info.get("size"), info.get("seed"), info.get("chain_stages"))
    if have != (DATASET_FORMAT, args.size, args.seed, list(stages)):
      raise ValueError(f"{out} holds the {info.get('size')!r} dataset with seed "
                       f"{info.get('seed')} and chain {info.get('chain_stages')} in format "
                       f"{info.get('format')!r}: render {args.size!r} with seed {args.seed} and "
                       f"chain {list(stages)} ({DATASET_FORMAT}) elsewhere")
    return
  out.mkdir(parents=True, exist_ok=True)
  size = plan.get_size(args.size)
  info = {
      "format": DATASET_FORMAT, "size": args.size, "seed": args.seed,
      "clip_seconds": size.clip_seconds, "clips_per_class": {
          "reference": size.reference, "train": size.train, "validation": size.validation,
          "test": size.test},
      "banks": {split: list(plan.BANKS[split]) for split in plan.SPLITS}, "bank_files": banks,
      "recordings": sources, "chain_stages": list(stages),
      "sample_rate": SAMPLE_RATE, "jaxeq_version": jaxeq.__version__,
      "command": command,
  }
  write_text_atomically(info_path, json.dumps(info, indent=2) + "\n")


class Players:
  """The sound sources of one worker, each opened on first use: the GM banks' renderer and
  the recorded sources (a sampler or kit keeps its decoded recordings between clips)."""

  def __init__(self):
    self._renderer = None
    self._recorded = {}

  def sounds(self, clip: plan.ClipSpec):
    return self._source(clip.bank).sounds() if clip.recorded else SOUNDS[clip.bank]

  def play(self, clip: plan.ClipSpec, material) -> tuple[np.ndarray, int]:
    """`(mono float32 audio of `clip.seconds`, the GM program or kit played)`."""
    if clip.recorded:
      return self._source(clip.bank).render(material, clip.seconds), material.program
    if self._renderer is None:
      self._renderer = Renderer()
    return self._renderer.render(material, clip.bank, clip.seconds)

  def _source(self, name: str) -> SoundSource:
    if name not in self._recorded:
      self._recorded[name] = recordings.open_source(name)
    return self._recorded[name]


_PLAYERS = None


def _render_in_worker(job) -> dict | str:
  """A manifest row, or a one-line failure (or "silent: ...") naming the clip."""
  global _PLAYERS
  clip, out, stages = job
  try:
    if _PLAYERS is None:
      _PLAYERS = Players()
    return render_clip(clip, Path(out), _PLAYERS, stages)
  except SilentClip as e:
    return f"silent: {clip.path}: {e}"
  except Exception as e:  # one bad clip is reported, not allowed to stop the whole render
    return f"{clip.path}: {type(e).__name__}: {e}"


def trim_one_shot(audio: np.ndarray) -> np.ndarray:
  """A one-shot cut where it has died away: after its last sample within `ONE_SHOT_TAIL_DB`
  of its peak (and at least `ONE_SHOT_MIN_S` long), with a short fade so the cut is silent."""
  peak = float(np.max(np.abs(audio)))
  if not peak > 0:
    return audio
  loud = np.flatnonzero(np.abs(audio) >= peak * 10 ** (ONE_SHOT_TAIL_DB / 20))
  end = max(int(loud[-1]) + 1, int(ONE_SHOT_MIN_S * SAMPLE_RATE))
  out = audio[:min(end, len(audio))].copy()
  fade = min(len(out) // 4, int(0.005 * SAMPLE_RATE))
  if fade:
    out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=out.dtype)
  return out


def render_clip(clip: plan.ClipSpec, out: Path, players: Players,
                chain_stages: tuple[str, ...] | None = None) -> dict:
  """Renders one clip, colours it unless it is a reference clip (and puts a training clip
  through a random recording chain), and saves it atomically."""
  material_seed, colour_seed, level_seed, chain_seed = np.random.SeedSequence(clip.seed).spawn(4)
  material_rng = np.random.default_rng(material_seed)
  if clip.kind == "one_shot":
    material = make_one_shot(clip.class_name, material_rng, players.sounds(clip))
  else:
    material = make_material(clip.class_name, material_rng, clip.seconds, players.sounds(clip))
  audio, program = players.play(clip, material)
  if clip.kind == "one_shot":
    audio = trim_one_shot(audio)
  if not float(np.max(np.abs(audio))) > 1e-5:
    raise SilentClip(f"{material.description} (program {program}) played silence")
  eq = EQ([]) if clip.reference else random_colouration(np.random.default_rng(colour_seed))
  if eq.bands:
    audio = apply_eq(audio, SAMPLE_RATE, eq)
  chain = {}
  if not clip.reference and clip.split != "test":
    config = chain_config(CHAIN_STAGES if chain_stages is None else chain_stages)
    audio, chain = recording_chain.apply_chain(audio, SAMPLE_RATE,
                                               np.random.default_rng(chain_seed), config)
  peak = float(np.max(np.abs(audio)))
  if not peak > 1e-5:
    raise SilentClip(f"{material.description} (program {program}) played silence")
  peak_dbfs = float(np.random.default_rng(level_seed).uniform(*PEAK_DBFS))
  audio = (audio * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)
  jaxeq.save_audio(out / clip.path, audio, SAMPLE_RATE)
  drum_notes = sorted({n.pitch for n in material.notes}) if material.is_drum else []
  return {
      "path": clip.path, "class": clip.class_name, "split": clip.split, "bank": clip.bank,
      "reference": int(clip.reference), "seed": clip.seed, "program": program,
      "drum_notes": " ".join(map(str, drum_notes)), "material": material.description,
      "tempo_bpm": material.tempo_bpm, "articulation": material.articulation,
      "velocity": material.velocity, "peak_dbfs": round(peak_dbfs, 2),
      "duration_s": round(len(audio) / SAMPLE_RATE, 3), "sample_rate": SAMPLE_RATE,
      "colouration": json.dumps(eq.to_dict(), separators=(",", ":")),
      "recorded": int(clip.recorded), "kind": clip.kind,
      "chain": json.dumps(chain, separators=(",", ":")) if chain else "",
  }


def chain_config(stages: tuple[str, ...]):
  """The recording chain of the training clips with only `stages` on (never its EQ: that is
  the colouration every coloured clip gets anyway)."""
  config = recording_chain.default_config()
  for stage in recording_chain.STAGES:
    if stage not in stages:
      config[stage].probability = 0.0
  return config


if __name__ == "__main__":
  sys.exit(main())
