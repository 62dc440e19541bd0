"""The `jaxeq` command (also `python -m jaxeq`).

    jaxeq process TRACK.wav FOLDER/ --out processed/ [--plot]   # automatic EQ
    jaxeq analyze TRACK.wav                                     # instrument and EQ, no audio
    jaxeq classes                                               # the instrument classes
    jaxeq apply TRACK.wav --eq eq.json --out processed/         # a saved EQ, as it is
    jaxeq targets build REFERENCES/ --out my_targets.npz        # your own target bank

Every subcommand reports a bad input as one line on stderr, naming the file or option and
the reason, goes on with the others, and exits non-zero if any failed. Inputs are never
modified.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jaxeq.atomic import write_text_atomically
from jaxeq.audio_io import (AudioError, AudioFile, find_audio_files, load_audio, read_audio,
                            save_audio)
from jaxeq.batch import Say, Work, about, check_writable, fail, run_tracks
from jaxeq.eq import EQ
from jaxeq.filtering import apply_eq_checked
from jaxeq.limiter import MAX_PEAK, ceiling_dbtp, true_peak_envelope


# Every program JAX compiles is kept on disk between runs (`use_compilation_cache`): a cold
# `jaxeq process` of one file otherwise spends about half its time compiling.
COMPILATION_CACHE_ENV = "JAXEQ_JAX_CACHE"


def compilation_cache_dir() -> Path:
  """`$JAXEQ_JAX_CACHE`, else ~/.cache/jaxeq/jax."""
  return Path(os.environ.get(COMPILATION_CACHE_ENV) or "~/.cache/jaxeq/jax").expanduser()


def use_compilation_cache() -> None:
  """Makes JAX keep every program it compiles from now on in `compilation_cache_dir()`,
  however small or quick to compile (most of a track's are), and load it from there next
  time. JAX's own `JAX_COMPILATION_CACHE_DIR`, when set, is used instead;
  `JAX_ENABLE_COMPILATION_CACHE=false` turns the cache off. A folder that cannot be made
  leaves it off. Called before anything is compiled: JAX opens its cache at the first.

  An entry that cannot be read (another process still writing it) or written is compiled as
  if there were no cache, without a warning."""
  warnings.filterwarnings("ignore", message="Error (reading|writing) persistent compilation")
  if not jax.config.jax_compilation_cache_dir:
    path = compilation_cache_dir()
    try:
      path.mkdir(parents=True, exist_ok=True)
    except OSError:
      return
    jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def _save_like(stored: AudioFile, out: Path, audio: np.ndarray) -> None:
  """Saves `audio` (a track's output) in the format and subtype `stored` was read in."""
  save_audio(out, audio, stored.sample_rate, subtype=stored.subtype, format=stored.format)


# --- automatic EQ --------------------------------------------------------------------


def _option(name: str, value, make: Callable):
  """`make()`, a `ValueError` from it naming the option `name` and its `value`."""
  try:
    return make()
  except ValueError as e:
    raise ValueError(f"{name}: {about(value, e)}") from None


def _checked_bank(args):
  """The target bank `--targets` names, after checking `--layout` and resolving
  `--instrument` to the bank's name (any case); without loading the networks."""
  from jaxeq.layouts import get_layout
  from jaxeq.targets import load_targets
  bank = _option("--targets", args.targets, lambda: load_targets(args.targets))
  _option("--layout", args.layout, lambda: get_layout(args.layout))
  if args.instrument is not None:
    args.instrument = _option("--instrument", args.instrument,
                              lambda: bank.find(args.instrument))
  return bank


def _auto_eq(args, bank):
  """The AutoEQ the flags ask for, with `bank` (`_checked_bank`'s, checked once)."""
  from jaxeq.autoeq import AutoEQ  # loads the models: only for the commands that need them
  use_compilation_cache()  # in a worker process too, before its first compilation
  return AutoEQ.from_pretrained(targets=bank, layout=args.layout)


def _reference(args) -> dict:
  """`AutoEQ` keyword arguments for `--reference`: its target, computed once for all tracks."""
  if args.reference is None:
    return {}
  from jaxeq.autoeq import reference_target
  return {"target": _option("--reference", args.reference,
                            lambda: reference_target(*load_audio(args.reference)))}


def _run(method, args, reference: dict, audio, rate, **kwargs):
  """`AutoEQ.process` or `.analyze` (`method`) of one track as the flags ask; a reference
  with no audible band in common with the track is refused naming it."""
  from jaxeq.autoeq import NoCommonBand
  try:
    return method(audio, rate, instrument=args.instrument, **reference, **kwargs)
  except NoCommonBand as e:
    raise ValueError(f"--reference {args.reference}: {e}") from None


def _track_line(track: Path, analysis, bank) -> str:
  """The line a track gets: its analysis, and which targets came from the shipped bank
  because `--targets` lacks them."""
  from jaxeq.targets import SHIPPED_FALLBACK
  fallback = [name for name in analysis.target_mix or {}
              if bank.origin(name) == SHIPPED_FALLBACK]
  note = (f"; target of {', '.join(fallback)} from the shipped bank (not in --targets)"
          if fallback else "")
  return f"{track}: {analysis.summary()}{note}"


# `process --export` names: the file or LV2 bundle beside each track, and for a bundle its
# plug-in (`jaxeq.presets.PLUGINS`). EqualizerAPO alone is the default.
EXPORTS = {"apo": (".ParametricEQ.txt", None), "lv2-x42": (".x42-eq.lv2", "x42"),
           "lv2-lsp": (".lsp-eq.lv2", "lsp")}
DEFAULT_EXPORT = "apo"


def parse_exports(text: str) -> list[str]:
  """The export names of `--export a,b` in order, each once; ValueError (one line, naming the
  valid ones) for an unknown or empty one."""
  names = [name.strip() for name in text.split(",")]
  unknown = [name for name in names if name not in EXPORTS]
  if unknown:
    raise ValueError(f"--export {text}: unknown export {unknown[0]!r}; expected a comma-separated "
                     f"list of {', '.join(EXPORTS)}")
  return list(dict.fromkeys(names))


def _presets(track: Path, exports: list[str], analysis, rate, say: Say) -> dict[str, dict | None]:
  """Each LV2 export's bundle files for the track's EQ; None, with one line said, for a
  plug-in that cannot hold the EQ at the track's rate (no preset that sounds different)."""
  from jaxeq import presets
  bundles = {}
  for name in exports:
    plugin = EXPORTS[name][1]
    if plugin is not None:
      try:
        bundles[name] = presets.bundle(analysis.eq, plugin, rate, f"jaxeq {track.stem}")
      except ValueError as e:
        fail(f"{track}: no {name} preset: {e}", say)
        bundles[name] = None
  return bundles


def _process_work(args, reference: dict, bank) -> Work:
  """`jaxeq process`'s work on one track, with the models loaded (once in each process):
  `args` and `bank` as `process_command` checked them, `reference` as `_reference` gives it."""
  auto = _auto_eq(args, bank)
  exports = parse_exports(args.export)

  def work(track: Path, outputs: list[Path], say: Say) -> Callable[[], None]:
    out, eq_json, analysis_json, *rest = outputs
    exported, picture = dict(zip(exports, rest)), rest[len(exports):]
    stored = read_audio(track)
    rate = stored.sample_rate
    processed, analysis = _run(auto.process, args, reference, stored.audio, rate,
                               amount=args.amount, ceiling_dbtp=ceiling_dbtp(stored.subtype))
    bundles = _presets(track, exports, analysis, rate, say)

    def write() -> None:
      from jaxeq.presets import write_bundle_atomically
      _save_like(stored, out, processed)  # creates the output's folder
      analysis.eq.save(eq_json)
      if "apo" in exported:
        write_text_atomically(exported["apo"], analysis.eq.to_equalizer_apo(rate))
      for name, files in bundles.items():
        if files is not None:
          write_bundle_atomically(exported[name], files)
        elif exported[name].is_dir():  # an earlier run's preset is not this EQ's
          shutil.rmtree(exported[name])
      write_text_atomically(analysis_json, json.dumps(analysis.to_dict(), indent=1) + "\n")
      if picture:
        from jaxeq.plots import plot_analysis
        plot_analysis(analysis, picture[0], title=track.name)

    if not args.quiet:
      say(_track_line(track, analysis, auto.targets))
    return write

  return work


def process_command(args) -> int:
  """Automatic EQ: classify each track, match its target, write the EQ'd audio and the EQ."""
  if not 0 <= args.amount <= 2:
    fail(f"--amount {args.amount}: expected a value from 0 to 2")
    return 2
  try:
    exports = parse_exports(args.export)
    reference = _reference(args)  # before loading the models: a bad reference fails at once
    bank = _checked_bank(args)
  except (AudioError, ValueError, OSError) as e:
    fail(str(e))
    return 2
  suffixes = (("", ".eq.json", ".analysis.json") + tuple(EXPORTS[name][0] for name in exports)
              + (".png",) * args.plot)
  _import_in_background(PLOTTING)
  done = []
  code = run_tracks(args.inputs, "process", functools.partial(_process_work, args, reference, bank),
                     Path(args.out), suffixes, args.skip_existing, args.workers, done)
  return max(code, _write_summary(Path(args.out), done)) if done else code


SUMMARY = "jaxeq_summary.png"
# What drawing the summary imports (matplotlib: about 0.5 s), loaded on another thread while
# this one waits on the networks, the filters and the files, which release the GIL. Packages
# apart from those the tracks import, so that neither thread waits on the other's imports.
PLOTTING = ("matplotlib.figure", "matplotlib.backends.backend_agg")


def _import_in_background(modules: tuple[str, ...]) -> None:
  def load() -> None:
    for name in modules:
      try:
        importlib.import_module(name)
      except ImportError:  # reported where the module is needed
        return

  threading.Thread(target=load, name="jaxeq-imports").start()


def _heard(saved: dict) -> str:
  """The instrument of a saved analysis as `Analysis.heard` says it (without a runner-up)."""
  if saved.get("instrument") is None:
    return "matched to a reference"
  confidence = saved.get("confidence")
  return saved["instrument"] + (" (given)" if confidence is None else f" {confidence:.0%}")


def _write_summary(out_dir: Path, done: list) -> int:
  """`OUT/jaxeq_summary.png`: every track's EQ curve on one page, with its instrument and
  confidence, from the analyses this run wrote or kept; 1 (and one line) if it cannot be."""
  from jaxeq.plots import plot_summary
  path = out_dir / SUMMARY
  if any(path.resolve() == output.resolve() for _, outputs in done for output in outputs):
    fail(f"{path}: not written: a track's output has that name")
    return 1
  entries = []
  try:
    for _, (out, _eq_json, analysis_json, *_) in sorted(done, key=lambda job: str(job[1][0])):
      saved = json.loads(analysis_json.read_text(encoding="utf-8"))
      entries.append((str(out.relative_to(out_dir)), _heard(saved), EQ.from_dict(saved["eq"])))
    plot_summary(entries, path, title=f"jaxeq process: {len(entries)} "
                 f"track{'s' * (len(entries) != 1)}")
  except (OSError, ValueError) as e:
    fail(f"{path}: not written ({e})")
    return 1
  return 0


def analyze_command(args) -> int:
  """Print each track's instrument (with confidence) and the EQ it needs; writes nothing."""
  try:
    reference = _reference(args)  # before loading the models: a bad reference fails at once
    auto = _auto_eq(args, _checked_bank(args))
  except (AudioError, ValueError, OSError) as e:
    fail(str(e))
    return 2

  def work(track: Path, outputs: list[Path], say: Say) -> None:
    del outputs  # analyze writes nothing
    audio, rate = load_audio(track)
    analysis = _run(auto.analyze, args, reference, audio, rate)
    say(_track_line(track, analysis, auto.targets))

  return run_tracks(args.inputs, "analyze", lambda: work)


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
    fail(f"--eq: {e}")
    return 2

  def work(track: Path, outputs: list[Path], say: Say) -> None:
    out, = outputs
    stored = read_audio(track)
    rate, subtype = stored.sample_rate, stored.subtype
    processed = apply_eq_checked(stored.audio, rate, eq)
    # Integer formats would clip, and lossy ones decode above their true peak: the EQ the
    # user chose is kept exactly, the whole track lowered (and said so).
    ceiling = 10 ** (ceiling_dbtp(subtype) / 20)
    peak = float(np.max(true_peak_envelope(np.atleast_2d(processed.T), rate)))
    if peak > ceiling and (ceiling < MAX_PEAK or not subtype.startswith(("FLOAT", "DOUBLE"))):
      processed *= ceiling / peak
      fail(f"{track}: lowered by {20 * np.log10(peak / ceiling):.1f} dB to keep its true peak "
           f"under {ceiling_dbtp(subtype):g} dBTP", say)
    _save_like(stored, out, processed)
    if not args.quiet:
      say(f"{track}: {out}")

  return run_tracks(args.inputs, "apply", lambda: work, Path(args.out), ("",), args.skip_existing)


def _class_folders(root: Path) -> dict[str, Path]:
  """`root`'s sub-folders by the class each names (any case: `Snare/` is snare; hidden ones
  left out); a `ValueError` naming every folder that names no class, and the names that do."""
  from jaxeq.classes import CLASSES, resolve_name
  folders, unknown = {}, []
  for folder in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
    try:
      folders[resolve_name(folder.name, CLASSES, "class folder")] = folder
    except ValueError as e:
      unknown.append(about(folder, e))
  if unknown:
    raise ValueError("; ".join(unknown) + f" (the class folders: {', '.join(CLASSES)})")
  return folders


def targets_build_command(args) -> int:
  """Build a target bank from your own reference tracks: one folder per instrument class;
  the classes you leave out keep the shipped targets."""
  from jaxeq.plots import plot_targets
  from jaxeq.targets import SHIPPED_FALLBACK, build_target_bank, load_targets
  root, out = Path(args.folder), Path(args.out)
  if not root.is_dir():
    fail(f"{root}: not a folder (expected one sub-folder of reference tracks per class)")
    return 2
  try:
    folders = _class_folders(root)
    check_writable(out, out.parent, create=False)
  except ValueError as e:
    fail(str(e))
    return 2
  failures = []

  def report(message):
    failures.append(message)
    fail(message)

  tracks = {name: find_audio_files([folder]) for name, folder in folders.items()}
  try:
    bank = build_target_bank(tracks, load_audio, source=str(root.resolve()), on_error=report)
    bank = bank.completed(load_targets())
    bank.save(out)
    plot_targets(bank, out.with_suffix(".png"))
  except ValueError as e:
    fail(about(root, e))
    return 2
  except OSError as e:
    fail(f"--out {out}: cannot write it ({e.strerror or e})")
    return 2
  shipped = [name for name in bank.classes if bank.origin(name) == SHIPPED_FALLBACK]
  for name, count in zip(bank.classes, bank.counts):
    if name not in shipped:
      print(f"{name:<28} {count:>5} tracks")
  if shipped:
    print(f"the shipped targets for the {len(shipped)} other classes: {', '.join(shipped)}")
  print(f"wrote {out} and {out.with_suffix('.png')}")
  return 1 if failures else 0


def _count(value: str) -> int:
  """A whole number >= 1 (argparse names the option when this raises)."""
  if not value.strip().isdigit() or int(value) < 1:
    raise argparse.ArgumentTypeError(f"{value!r}: expected a whole number of at least 1")
  return int(value)


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

  def resumable(sub):
    sub.add_argument("--skip-existing", action="store_true",
                     help="skip tracks whose outputs all exist (resume an interrupted batch)")
    sub.add_argument("--quiet", action="store_true",
                     help="no line per track (errors and the final count still print)")

  process = command("process", process_command)
  automatic(process)
  process.add_argument("--out", required=True, help="folder for the processed files")
  process.add_argument("--amount", type=float, default=1.0,
                       help="scale the EQ's gains: 0 (none) to 2 (double); default 1")
  process.add_argument("--plot", action="store_true", help="also write a PNG of the analysis")
  process.add_argument("--export", default=DEFAULT_EXPORT,
                       help="the EQ's formats beside each track, comma-separated: apo "
                       "(EqualizerAPO NAME.ParametricEQ.txt), lv2-x42 (x42-eq preset bundle "
                       "NAME.x42-eq.lv2/), lv2-lsp (LSP Parametric Equalizer x16 Mono, "
                       "NAME.lsp-eq.lv2/); default apo")
  resumable(process)
  process.add_argument("--workers", type=_count, default=os.cpu_count() or 1,
                       help="processes to spread the tracks over, each loading the models once "
                       f"(default: the machine's cores, {os.cpu_count() or 1}; 1 works in this "
                       "process)")
  automatic(command("analyze", analyze_command))
  command("classes", classes_command)

  apply = command("apply", apply_command)
  apply.add_argument("inputs", nargs="+", help="audio files and folders of audio files")
  apply.add_argument("--eq", required=True, help="the EQ as JSON (see jaxeq.EQ.save)")
  apply.add_argument("--out", required=True, help="folder for the processed files")
  resumable(apply)

  targets = commands.add_parser("targets", help="target banks").add_subparsers(
      dest="targets_command", required=True)
  build = command("build", targets_build_command, targets)
  build.add_argument("folder", help="a folder with one sub-folder of tracks per class")
  build.add_argument("--out", required=True, help="the bank to write (.npz; a .png beside it)")
  return parser


# The command's other threads import packages (scipy.signal, matplotlib) while the main one
# analyses a track in NumPy calls, each of which lets go of the GIL: at Python's default 5 ms
# switch interval, taking it back after each call waited up to that long (0.4 s of a cold
# `jaxeq process`, benchmarks/RESULTS.md).
SWITCH_INTERVAL_S = 0.001


def main(argv=None) -> int:
  # On a GPU, take memory as it is needed rather than most of it up front (JAX's default).
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  args = build_parser().parse_args(argv)
  use_compilation_cache()
  # A library's warning is one line like every other message, without its source line.
  warnings.showwarning = lambda message, *_, **__: fail(f"warning: {message}")
  interval = sys.getswitchinterval()
  sys.setswitchinterval(SWITCH_INTERVAL_S)
  try:
    return args.run(args)
  except KeyboardInterrupt:
    fail("interrupted")
    return 130
  finally:
    sys.setswitchinterval(interval)


if __name__ == "__main__":
  sys.exit(main())
