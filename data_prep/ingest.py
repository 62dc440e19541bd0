"""Ingest instrument tracks you own into the dataset manifest format.

    python -m data_prep.ingest folder ROOT --out DIR     ROOT/CLASS/**/*.wav or ROOT/SPLIT/CLASS/...
    python -m data_prep.ingest medleydb ROOT --out DIR   every *_METADATA.yaml under ROOT
    python -m data_prep.ingest slakh ROOT --out DIR      every TRACK/metadata.yaml under ROOT

Class folders are named as `jaxeq.CLASSES`; MedleyDB and Slakh2100 labels map onto the classes
as `jaxeq/assets/classes.json` says (`--level raw` takes MedleyDB's raw tracks instead of its
stems). Audio is not copied or changed: `DIR/manifest.csv` lists each file by its path
relative to DIR, after reading it once to check it. Files with unknown labels and files that
cannot be read or are silent are skipped, and listed in `DIR/ingest_report.txt`.

Splits: the dataset's own (Slakh2100's folders, or SPLIT folders), else drawn from a hash of
the song (`--seed`, 80/10/10 %) so the tracks of one song stay in one split. `--reference`
marks the tracks as well produced, for target spectra.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import multiprocessing
import os
import sys
from pathlib import Path

import numpy as np
import tqdm
import yaml

import jaxeq
from data_prep import manifest
from jaxeq.atomic import write_text_atomically
from jaxeq.classes import label_map
from jaxeq.spectrum import SILENCE_DBFS

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".aif", ".aiff", ".ogg", ".mp3"})
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclasses.dataclass(frozen=True)
class Track:
  """One audio file found under ROOT. `class_name` is None where its label maps to no class."""
  path: Path
  label: str
  class_name: str | None
  group: str  # the song: its tracks share a split
  split: str | None  # the dataset's own split, if it has one


def main(argv=None) -> int:
  args = _parse_args(argv)
  root, out = Path(args.root), Path(args.out)
  if not root.is_dir():
    print(f"error: {root}: no such folder", file=sys.stderr)
    return 2
  if (out / "dataset.json").is_file():
    print(f"error: {out} holds a rendered dataset: ingest into another folder", file=sys.stderr)
    return 2
  if args.source == "folder":
    tracks, problems = scan_folder(root)
  elif args.source == "medleydb":
    tracks, problems = scan_medleydb(root, args.level)
  else:
    tracks, problems = scan_slakh(root)
  for t in tracks:
    if t.class_name is None:
      problems.append((str(t.path), f"unknown label {t.label!r}"))
  known = [t for t in tracks if t.class_name is not None]
  rows = []
  if known:
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, min(args.workers, len(known)))) as pool:
      checks = pool.imap(check_file, [t.path for t in known], chunksize=4)
      checks = tqdm.tqdm(checks, total=len(known), desc="ingest", unit="file")
      for track, check in zip(known, checks):
        if isinstance(check, str):
          problems.append((str(track.path), check))
          continue
        split = track.split or assign_split(track.group, args.seed)
        rows.append({"path": os.path.relpath(track.path.resolve(), out.resolve()),
                     "class": track.class_name, "split": split, "reference": int(args.reference),
                     "recorded": 1, "material": f"{args.source}:{track.label}", **check})
  out.mkdir(parents=True, exist_ok=True)
  report = summarise(rows, problems)
  write_text_atomically(out / "ingest_report.txt", report + "".join(
      f"{where}: {reason}\n" for where, reason in problems))
  print(report, end="")
  if not rows:
    print(f"error: nothing to ingest under {root}", file=sys.stderr)
    return 1
  manifest.write_manifest(out / manifest.FILENAME, rows)
  print(f"{out / manifest.FILENAME}: {len(rows)} tracks; details of what was skipped in "
        f"{out / 'ingest_report.txt'}")
  return 0


def _parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m data_prep.ingest", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("source", choices=("folder", "medleydb", "slakh"))
  parser.add_argument("root", help="the dataset's folder")
  parser.add_argument("--out", required=True, help="where manifest.csv goes")
  parser.add_argument("--level", choices=("stems", "raw"), default="stems",
                      help="MedleyDB: its stems, or its raw (unprocessed) tracks")
  parser.add_argument("--reference", action="store_true", help="mark the tracks as well produced")
  parser.add_argument("--seed", type=int, default=0, help="for the split of songs without one")
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  return parser.parse_args(argv)


def scan_folder(root: Path) -> tuple[list[Track], list[tuple[str, str]]]:
  """ROOT/CLASS/... or ROOT/SPLIT/CLASS/...; each file is its own song."""
  tracks, problems = [], []
  tops = sorted(d for d in root.iterdir() if d.is_dir())
  if any(d.name in manifest.SPLITS for d in tops):
    class_dirs = [(split_dir.name, d) for split_dir in tops if split_dir.name in manifest.SPLITS
                  for d in sorted(split_dir.iterdir()) if d.is_dir()]
    problems += [(str(d), "not a split folder (train, validation, test)")
                 for d in tops if d.name not in manifest.SPLITS]
  else:
    class_dirs = [(None, d) for d in tops]
  for split, class_dir in class_dirs:
    name = class_dir.name.lower().replace("-", "_").replace(" ", "_")
    files = [f for f in sorted(class_dir.rglob("*")) if f.suffix.lower() in AUDIO_EXTENSIONS]
    if name not in jaxeq.CLASSES:
      problems.append((str(class_dir), f"unknown class folder {class_dir.name!r} ({len(files)} "
                                       "files skipped)"))
      continue
    tracks += [Track(f, class_dir.name, name, str(f.relative_to(root)), split) for f in files]
  return tracks, problems


def scan_medleydb(root: Path, level: str = "stems") -> tuple[list[Track], list[tuple[str, str]]]:
  """MedleyDB: each track's `*_METADATA.yaml` names its stems (and their raw tracks) and the
  folder they are in; that folder is looked for beside the YAML, then anywhere under ROOT."""
  labels = label_map("medleydb")
  folders = {d.name: d for d in root.rglob("*") if d.is_dir()}
  tracks, problems = [], []
  for meta in sorted(root.rglob("*_METADATA.yaml")):
    song = meta.name[: -len("_METADATA.yaml")]
    data = _read_yaml(meta, problems)
    if data is None:
      continue
    key, default = ("stem_dir", f"{song}_STEMS") if level == "stems" else ("raw_dir", f"{song}_RAW")
    folder_name = str(data.get(key) or default)
    beside = meta.parent / folder_name
    folder = beside if beside.is_dir() else folders.get(folder_name)
    if folder is None:
      problems.append((str(meta), f"audio folder {folder_name} not found under {root}"))
      continue
    for stem in data["stems"].values():
      entries = [stem] if level == "stems" else list(((stem or {}).get("raw") or {}).values())
      for entry in entries:
        if not isinstance(entry, dict) or "filename" not in entry:
          problems.append((str(meta), "a stem without a filename"))
          continue
        label = _label(entry.get("instrument"))
        tracks.append(Track(folder / str(entry["filename"]), label, labels.get(label.lower()),
                            song, None))
  return tracks, problems


def scan_slakh(root: Path) -> tuple[list[Track], list[tuple[str, str]]]:
  """Slakh2100: TRACK/metadata.yaml lists the stems, TRACK/stems/Sxx.flac holds them."""
  labels = label_map("slakh")
  tracks, problems = [], []
  for meta in sorted(root.rglob("metadata.yaml")):
    data = _read_yaml(meta, problems)
    if data is None:
      continue
    folder = meta.parent / str(data.get("audio_dir") or "stems")
    split = next((p for p in reversed(meta.parent.relative_to(root).parts)
                  if p in manifest.SPLITS), None)
    for stem_id, stem in sorted(data["stems"].items()):
      stem = stem or {}
      if stem.get("audio_rendered") is False:
        problems.append((f"{meta.parent}/{stem_id}", "not rendered in Slakh2100"))
        continue
      path = next((folder / f"{stem_id}{ext}" for ext in (".flac", ".wav")
                   if (folder / f"{stem_id}{ext}").is_file()), folder / f"{stem_id}.flac")
      label = _label(stem.get("midi_program_name"))
      tracks.append(Track(path, label, labels.get(label.lower()), str(meta.parent), split))
  return tracks, problems


def _read_yaml(path: Path, problems: list) -> dict | None:
  """A metadata file with a `stems` mapping, or None (and a problem noted)."""
  try:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
  except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
    problems.append((str(path), f"unreadable metadata ({str(e).splitlines()[0]})"))
    return None
  if not isinstance(data, dict) or not isinstance(data.get("stems"), dict):
    problems.append((str(path), "metadata without a 'stems' mapping"))
    return None
  return data


def _label(value) -> str:
  """A label as text; several labels for one file join with ' + ' (and map to no class)."""
  if isinstance(value, (list, tuple)):
    return " + ".join(map(str, value)) if len(value) != 1 else str(value[0])
  return "" if value is None else str(value)


def check_file(path: Path) -> dict | str:
  """The file's duration, rate and peak, or the one-line reason it cannot be used."""
  try:
    audio, sample_rate = jaxeq.load_audio(path)
  except jaxeq.AudioError as e:
    return str(e).removeprefix(f"{path}: ")
  peak_dbfs = 20 * np.log10(max(float(np.max(np.abs(audio))), 1e-30))
  if peak_dbfs < SILENCE_DBFS:
    return "silent"
  return {"duration_s": round(len(audio) / sample_rate, 3), "sample_rate": sample_rate,
          "peak_dbfs": round(peak_dbfs, 2)}


def assign_split(group: str, seed: int) -> str:
  """A split drawn from a hash of `group` and `seed`: stable, and the same for a whole song."""
  digest = hashlib.sha256(f"{seed}:{group}".encode("utf-8")).digest()
  u = int.from_bytes(digest[:8], "big") / 2**64
  for split, fraction in SPLIT_FRACTIONS.items():
    if u < fraction:
      return split
    u -= fraction
  return "test"


def summarise(rows: list[dict], problems: list[tuple[str, str]]) -> str:
  """What was ingested per split and class, and what was skipped for which reason."""
  lines = [f"ingested {len(rows)} tracks"]
  for split in manifest.SPLITS:
    counts = collections.Counter(r["class"] for r in rows if r["split"] == split)
    if counts:
      lines.append(f"  {split}: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
  reasons = collections.Counter(reason.split(" (")[0] for _, reason in problems)
  lines.append(f"skipped {len(problems)}")
  lines += [f"  {n} x {reason}" for reason, n in reasons.most_common()]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  sys.exit(main())
