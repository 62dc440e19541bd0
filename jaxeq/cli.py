"""The `jaxeq` command (also `python -m jaxeq`).

    jaxeq apply TRACK.wav FOLDER/ --eq eq.json --out processed/
    jaxeq targets build REFERENCES/ --out my_targets.npz

Every subcommand reports a bad input as one line on stderr, naming it and the reason, goes
on with the others, and exits non-zero if any failed. Inputs are never modified.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from jaxeq.audio_io import AudioError, find_audio_files, load_audio, save_audio
from jaxeq.eq import EQ
from jaxeq.processing import apply_eq
from jaxeq.plots import plot_targets
from jaxeq.targets import build_target_bank


def _fail(message: str) -> None:
  tqdm.write(f"jaxeq: {message}", file=sys.stderr)


def _output_path(track: Path, out_dir: Path) -> Path:
  out = out_dir / track.name
  if out.resolve() == track.resolve():
    raise AudioError(f"{track}: refusing to overwrite the input; choose another --out")
  return out


def apply_command(args) -> int:
  """Apply a saved EQ (`.json`, as `EQ.save` writes) to audio files."""
  try:
    eq = EQ.load(args.eq)
  except ValueError as e:
    _fail(str(e))
    return 2
  tracks = find_audio_files(args.inputs)
  if not tracks:
    _fail("no audio files found in " + ", ".join(args.inputs))
    return 2
  failures = 0
  for track in tqdm(tracks, desc="apply", unit="file", disable=len(tracks) < 2):
    try:
      out_path = _output_path(track, Path(args.out))
      audio, rate = load_audio(track)
      processed = apply_eq(audio, rate, eq)
      subtype = sf.info(track).subtype
      peak = float(np.max(np.abs(processed)))
      if peak > 1.0 and not subtype.startswith(("FLOAT", "DOUBLE")):
        processed /= peak / 0.999  # integer formats would clip
        tqdm.write(f"jaxeq: {track}: lowered by {20 * np.log10(peak / 0.999):.1f} dB "
                   "to avoid clipping", file=sys.stderr)
      save_audio(out_path, processed, rate, subtype=subtype, format=sf.info(track).format)
    except (AudioError, OSError) as e:
      failures += 1
      _fail(str(e) if isinstance(e, AudioError) else f"{track}: {e.strerror or e}")
  return 1 if failures else 0


def targets_build_command(args) -> int:
  """Build a target bank from your own reference tracks: one folder per instrument class."""
  root = Path(args.folder)
  if not root.is_dir():
    _fail(f"{root}: not a folder (expected one sub-folder of reference tracks per class)")
    return 2
  tracks = {d.name: find_audio_files([d]) for d in sorted(root.iterdir()) if d.is_dir()}
  failures = []

  def report(message):
    failures.append(message)
    _fail(message)

  try:
    bank = build_target_bank(tracks, load_audio, source=str(root.resolve()), on_error=report)
  except ValueError as e:
    _fail(f"{root}: {e}")
    return 2
  out = Path(args.out)
  bank.save(out)
  plot_targets(bank, out.with_suffix(".png"))
  for name, count in zip(bank.classes, bank.counts):
    print(f"{name:<28} {count:>5} tracks")
  print(f"wrote {out} and {out.with_suffix('.png')}")
  return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxeq", description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest="command", required=True)
  apply = commands.add_parser("apply", help=apply_command.__doc__,
                              description=apply_command.__doc__)
  apply.add_argument("inputs", nargs="+", help="audio files and folders of audio files")
  apply.add_argument("--eq", required=True, help="the EQ as JSON (see jaxeq.EQ.save)")
  apply.add_argument("--out", required=True, help="folder for the processed files")
  apply.set_defaults(run=apply_command)

  targets = commands.add_parser("targets", help="target banks").add_subparsers(
      dest="targets_command", required=True)
  build = targets.add_parser("build", help=targets_build_command.__doc__,
                             description=targets_build_command.__doc__)
  build.add_argument("folder", help="a folder with one sub-folder of tracks per class")
  build.add_argument("--out", required=True, help="the bank to write (.npz; a .png beside it)")
  build.set_defaults(run=targets_build_command)
  return parser


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return args.run(args)
  except KeyboardInterrupt:
    _fail("interrupted")
    return 130


if __name__ == "__main__":
  sys.exit(main())
