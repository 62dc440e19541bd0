"""The `jaxeq` command (also `python -m jaxeq`).

    jaxeq process TRACK.wav FOLDER/ --out processed/ [--plot]   # automatic EQ
    jaxeq analyze TRACK.wav                                     # instrument and EQ, no audio
    jaxeq classes                                               # the instrument classes
    jaxeq apply TRACK.wav --eq eq.json --out processed/         # a saved EQ, as it is
    jaxeq targets build REFERENCES/ --out my_targets.npz        # your own target bank

Every subcommand reports a bad input as one line on stderr, naming it and the reason, goes
on with the others, and exits non-zero if any failed. Inputs are never modified.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from tqdm import tqdm

from jaxeq.atomic import write_text_atomically
from jaxeq.audio_io import AudioError, find_audio_files, load_audio, save_audio
from jaxeq.eq import EQ
from jaxeq.loudness import MAX_PEAK
from jaxeq.processing import apply_eq


def _fail(message: str) -> None:
  tqdm.write(f"jaxeq: {message}", file=sys.stderr)


def _tracks(inputs) -> list[tuple[Path, Path]]:
  """Every audio file in `inputs`, each with where its outputs go under `--out`: its path
  below the folder given (`drums/kitA/kick.wav` → `kitA/kick.wav`), or its name for a file."""
  tracks = []
  for given in map(Path, inputs):
    if given.is_dir():
      tracks += [(track, track.relative_to(given)) for track in find_audio_files([given])]
    else:
      tracks.append((given, Path(given.name)))
  return tracks


def _check_outputs(tracks: list[tuple[Path, Path]], out_dir: Path) -> None:
  """Refuses, before any work, two inputs that would share outputs (`kick.wav` and
  `kick.flac` share `kick.eq.json`) and an `--out` that cannot be written."""
  owner: dict[Path, Path] = {}
  for track, relative in tracks:
    stem = relative.with_suffix("")
    if stem in owner:
      raise ValueError(f"{owner[stem]} and {track} would write the same outputs "
                       f"({out_dir / stem}.*): give them different --out folders or names")
    owner[stem] = track
  try:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out_dir):
      pass
  except OSError as e:
    raise ValueError(f"--out {out_dir}: cannot write there ({e.strerror or e})") from None


def _each_track(inputs, desc: str, work: Callable[[Path, Path], Callable[[], None] | None],
                out_dir: Path | None = None) -> int:
  """Runs `work(track, relative)` on every audio file in `inputs` with a progress bar; 1 if
  any failed, 2 if nothing could start. `relative` is where the track's outputs go under
  `out_dir`, which is checked first (see `_check_outputs`).

  `work` may return a function that writes the track's outputs: it runs on a background
  thread while the next track is read and analysed.
  """
  tracks = _tracks(inputs)
  if not tracks:
    _fail("no audio files found in " + ", ".join(map(str, inputs)))
    return 2
  if out_dir is not None:
    try:
      _check_outputs(tracks, out_dir)
    except ValueError as e:
      _fail(str(e))
      return 2
  failures = 0

  def attempt(track: Path, step: Callable):
    nonlocal failures
    try:
      return step()
    except (AudioError, ValueError) as e:
      failures += 1
      _fail(str(e) if str(track) in str(e) else f"{track}: {e}")
    except OSError as e:
      failures += 1
      _fail(f"{track}: {e.strerror or e}")

  with concurrent.futures.ThreadPoolExecutor(1) as writer:
    writes = []
    for track, relative in tqdm(tracks, desc=desc, unit="file", disable=len(tracks) < 2):
      finish = attempt(track, lambda: work(track, relative))
      if finish is not None:
        writes.append((track, writer.submit(finish)))
    for track, write in writes:
      attempt(track, write.result)
  return 1 if failures else 0


def _output_path(track: Path, out: Path, suffix: str | None = None) -> Path:
  """`out` (the track's output under `--out`), or the file beside it with `suffix`."""
  out = out if suffix is None else out.with_name(out.stem + suffix)
  if out.resolve() == track.resolve():
    raise AudioError(f"{track}: refusing to overwrite the input; choose another --out")
  return out


def _save_like(track: Path, out: Path, audio: np.ndarray, rate: int) -> None:
  """Saves `audio` in `track`'s format and subtype."""
  info = sf.info(track)
  save_audio(out, audio, rate, subtype=info.subtype, format=info.format)


# --- automatic EQ --------------------------------------------------------------------


def _auto_eq(args):
  """The AutoEQ the flags ask for; `--instrument` resolved to the bank's name (any case)."""
  from jaxeq.autoeq import AutoEQ  # loads the models: only for the commands that need them
  auto = AutoEQ.from_pretrained(targets=args.targets, layout=args.layout)
  if args.instrument is not None:
    args.instrument = auto.targets.find(args.instrument)
  return auto


def _reference(args) -> dict:
  """`AutoEQ` keyword arguments for `--reference`: its target, computed once for all tracks."""
  if args.reference is None:
    return {}
  from jaxeq.autoeq import reference_target
  return {"target": reference_target(*load_audio(args.reference))}


def process_command(args) -> int:
  """Automatic EQ: classify each track, match its target, write the EQ'd audio and the EQ."""
  if not 0 <= args.amount <= 2:
    _fail(f"--amount {args.amount}: expected a value from 0 to 2")
    return 2
  try:
    auto, reference = _auto_eq(args), _reference(args)
  except (AudioError, ValueError, OSError) as e:
    _fail(str(e))
    return 2
  out_dir = Path(args.out)

  def work(track: Path, relative: Path) -> Callable[[], None]:
    out = _output_path(track, out_dir / relative)
    audio, rate = load_audio(track)
    processed, analysis = auto.process(audio, rate, amount=args.amount,
                                       instrument=args.instrument, **reference)

    def write() -> None:
      _save_like(track, out, processed, rate)  # creates the output's folder
      analysis.eq.save(_output_path(track, out, ".eq.json"))
      write_text_atomically(_output_path(track, out, ".ParametricEQ.txt"),
                            analysis.eq.to_equalizer_apo(rate))
      write_text_atomically(_output_path(track, out, ".analysis.json"),
                            json.dumps(analysis.to_dict(), indent=1) + "\n")
      if args.plot:
        from jaxeq.plots import plot_analysis
        plot_analysis(analysis, _output_path(track, out, ".png"), title=track.name)

    tqdm.write(f"{track}: {analysis.summary()}")
    return write

  return _each_track(args.inputs, "process", work, out_dir)


def analyze_command(args) -> int:
  """Print each track's instrument (with confidence) and the EQ it needs; writes nothing."""
  try:
    auto, reference = _auto_eq(args), _reference(args)
  except (AudioError, ValueError, OSError) as e:
    _fail(str(e))
    return 2

  def work(track: Path, relative: Path) -> None:
    del relative  # analyze writes nothing
    audio, rate = load_audio(track)
    analysis = auto.analyze(audio, rate, instrument=args.instrument, **reference)
    tqdm.write(f"{track}: {analysis.summary()}")

  return _each_track(args.inputs, "analyze", work)


def classes_command(args) -> int:
  """List the instrument classes the classifier knows (names for --instrument)."""
  from jaxeq.classes import CLASS_INFO
  for info in CLASS_INFO.values():
    print(f"{info.name:<28} {info.family}")
  return 0


# --- by hand ---------------------------------------------------------------------------


def apply_command(args) -> int:
  """Apply a saved EQ (`.json`, as `EQ.save` writes) to audio files."""
  try:
    eq = EQ.load(args.eq)
  except ValueError as e:
    _fail(str(e))
    return 2
  out_dir = Path(args.out)

  def work(track: Path, relative: Path) -> None:
    out = _output_path(track, out_dir / relative)
    audio, rate = load_audio(track)
    processed = apply_eq(audio, rate, eq)
    peak = float(np.max(np.abs(processed)))
    if peak > MAX_PEAK and not sf.info(track).subtype.startswith(("FLOAT", "DOUBLE")):
      processed *= MAX_PEAK / peak  # integer formats would clip
      _fail(f"{track}: lowered by {20 * np.log10(peak / MAX_PEAK):.1f} dB to avoid clipping")
    _save_like(track, out, processed, rate)

  return _each_track(args.inputs, "apply", work, out_dir)


def targets_build_command(args) -> int:
  """Build a target bank from your own reference tracks: one folder per instrument class."""
  from jaxeq.plots import plot_targets
  from jaxeq.targets import build_target_bank
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
  parser = argparse.ArgumentParser(prog="jaxeq", description=__doc__.splitlines()[0],
                                   epilog="\n".join(__doc__.splitlines()[2:8]),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)

  def command(name, run, parent=commands):
    sub = parent.add_parser(name, help=run.__doc__, description=run.__doc__)
    sub.set_defaults(run=run)
    return sub

  def automatic(sub):
    sub.add_argument("inputs", nargs="+", help="audio files and folders of audio files")
    sub.add_argument("--instrument", help="skip the classifier: use this class's target "
                     "(see `jaxeq classes`)")
    sub.add_argument("--reference", help="match the spectrum of this track instead of a target")
    sub.add_argument("--layout", default="paper4",
                     help="EQ layout (paper4 uses the network; others a per-track optimiser)")
    sub.add_argument("--targets", help="a target bank (.npz) instead of the shipped one")

  process = command("process", process_command)
  automatic(process)
  process.add_argument("--out", required=True, help="folder for the processed files")
  process.add_argument("--amount", type=float, default=1.0,
                       help="scale the EQ's gains: 0 (none) to 2 (double); default 1")
  process.add_argument("--plot", action="store_true", help="also write a PNG of the analysis")
  automatic(command("analyze", analyze_command))
  command("classes", classes_command)

  apply = command("apply", apply_command)
  apply.add_argument("inputs", nargs="+", help="audio files and folders of audio files")
  apply.add_argument("--eq", required=True, help="the EQ as JSON (see jaxeq.EQ.save)")
  apply.add_argument("--out", required=True, help="folder for the processed files")

  targets = commands.add_parser("targets", help="target banks").add_subparsers(
      dest="targets_command", required=True)
  build = command("build", targets_build_command, targets)
  build.add_argument("folder", help="a folder with one sub-folder of tracks per class")
  build.add_argument("--out", required=True, help="the bank to write (.npz; a .png beside it)")
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
