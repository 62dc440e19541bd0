"""Training features of a dataset: every clip's long-term spectrum and classifier windows.

    python -m data_prep.features DIR [--workers N] [--max-windows 8]

Reads `DIR/manifest.csv` (rendered or ingested) and writes, per split, `DIR/features/SPLIT/`:

    spectra.npy      float32 (clips, 256)            `jaxeq.long_term_spectrum`, dB on `jaxeq.FREQS`
    noise_floors.npy float32 (clips, 256)            the clip's noise floor, dB
                                                     (`jaxeq.spectrum.spectrum_and_noise_floor`)
    windows.npy      float16 (windows, 256, 256)     `jaxeq.log_spectrogram_windows` (6 s each;
                                                     a shorter clip's missing frames at
                                                     `jaxeq.spectrum.PADDING_DB`)
    labels.npy       int16 (clips,)                  class index in `jaxeq.CLASSES`
    window_clip.npy  int32 (windows,)                the clip (row of spectra.npy) of each window
    index.csv        the clips' manifest rows, with class_index, window_start, window_count
    info.json        what was computed from what; written last, so it marks a finished split

Open the arrays with `np.load(path, mmap_mode="r")`. A clip longer than one window keeps at
most `--max-windows` of them, evenly spaced over the clip. Clips that cannot be analysed
(unreadable, silent) are reported and left out. Work is saved in chunks under `parts/` as it
goes, so an interrupted run resumes; a split whose info.json matches the manifest is skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import tqdm

import jaxeq
from data_prep import manifest
from jaxeq.atomic import atomic_path, write_text_atomically
from jaxeq.spectrum import spectrum_and_noise_floor

# 2: with the clips' noise floors, which fine-tuning needs to build curves as inference does.
FEATURES_FORMAT = "jaxeq.features/2"
CHUNK = 32  # clips a worker task computes and saves at once
WINDOW_SHAPE = (256, 256)


def main(argv=None) -> int:
  args = _parse_args(argv)
  root = Path(args.dir)
  try:
    rows = manifest.read_manifest(root)
  except manifest.ManifestError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for failure in featurize(root, rows, args.max_windows, args.workers):
    print(f"left out: {failure}", file=sys.stderr)
  return 0


def _parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m data_prep.features", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("dir", help="dataset folder holding manifest.csv")
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--max-windows", type=int, default=jaxeq.spectrum.MAX_WINDOWS)
  args = parser.parse_args(argv)
  if args.workers < 1 or args.max_windows < 1:
    parser.error("--workers and --max-windows must be at least 1")
  return args


def featurize(root: Path, rows: list[dict], max_windows: int, workers: int) -> list[str]:
  """Computes (or reuses) every split's features; returns the clips it had to leave out."""
  splits = {split: [r for r in rows if r["split"] == split] for split in manifest.SPLITS}
  splits = {split: split_rows for split, split_rows in splits.items() if split_rows}
  chunks, skipped = {}, []
  for split, split_rows in splits.items():
    out = root / "features" / split
    digest = _digest(split_rows, max_windows)
    info = read_info(out)
    if info.get("digest") == digest:
      print(f"{out}: up to date ({info['clips']} clips, {info['windows']} windows)")
      skipped += info["skipped"]
      continue
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for stale in parts.glob("*.npz"):
      if not stale.name.startswith(digest[:16]):
        stale.unlink()  # from an earlier manifest
    chunks[split] = [(str(root), [r["path"] for r in split_rows[i:i + CHUNK]],
                      str(parts / f"{digest[:16]}-{i // CHUNK:06d}.npz"), max_windows)
                     for i in range(0, len(split_rows), CHUNK)]
  todo = [c for split_chunks in chunks.values() for c in split_chunks if not Path(c[2]).is_file()]
  if todo:
    total = sum(len(splits[split]) for split in chunks)
    # Workers analyse on the CPU: several processes must not each claim an accelerator.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    context = multiprocessing.get_context("spawn")  # safe with JAX and on every platform
    with context.Pool(min(workers, len(todo))) as pool, tqdm.tqdm(
        total=total, initial=total - sum(len(c[1]) for c in todo), desc="features",
        unit="clip") as progress:
      for done in pool.imap_unordered(_featurize_chunk, todo):
        progress.update(done)
  for split, split_chunks in chunks.items():
    out = root / "features" / split
    left_out = _assemble(out, splits[split], [c[2] for c in split_chunks])
    info = {"format": FEATURES_FORMAT, "digest": _digest(splits[split], max_windows),
            "split": split, "clips": len(splits[split]) - len(left_out),
            "windows": int(np.load(out / "window_clip.npy").size), "max_windows": max_windows,
            "skipped": left_out, "command": f"python -m data_prep.features {root}"}
    write_text_atomically(out / "info.json", json.dumps(info, indent=1) + "\n")
    shutil.rmtree(out / "parts")
    print(f"{out}: {info['clips']} clips, {info['windows']} windows, {len(left_out)} left out")
    skipped += left_out
  return skipped


def read_info(out: Path) -> dict:
  """A split's `info.json` ({} where there is none yet)."""
  try:
    return json.loads((out / "info.json").read_text("utf-8"))
  except (OSError, ValueError):
    return {}


def _featurize_chunk(task) -> int:
  """Computes one chunk of clips and saves it (atomically) as an .npz; returns its size."""
  root, clips, part_path, max_windows = task
  spectra, floors, windows, window_clip, errors = [], [], [], [], []
  for i, path in enumerate(clips):
    try:
      spectrum, floor, clip_windows = clip_features(Path(root) / path, max_windows)
    except (jaxeq.AudioError, ValueError, RuntimeError) as e:
      errors.append(str(e) if str(e).startswith(str(Path(root) / path)) else f"{path}: {e}")
      spectra.append(np.full(len(jaxeq.FREQS), np.nan, np.float32))
      floors.append(spectra[-1])
      continue
    errors.append("")
    spectra.append(spectrum)
    floors.append(floor)
    windows.append(clip_windows)
    window_clip += [i] * len(clip_windows)
  with atomic_path(part_path, suffix=".npz") as tmp, open(tmp, "wb") as f:
    np.savez(f, spectra=np.stack(spectra), noise_floors=np.stack(floors),
             windows=np.concatenate(windows or [np.zeros((0, *WINDOW_SHAPE), np.float16)]),
             window_clip=np.array(window_clip, np.int32), errors=np.array(errors, dtype=str))
  return len(clips)


def clip_features(path: Path, max_windows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """`(long-term spectrum (256,) float32, noise floor (256,) float32, windows
  (n <= max_windows, 256, 256) float16)`."""
  audio, sample_rate = jaxeq.load_audio(path)
  try:
    spectrum, floor = spectrum_and_noise_floor(audio, sample_rate)
    windows = jaxeq.log_spectrogram_windows(audio, sample_rate, max_windows)
  except jaxeq.AudioError as e:
    raise jaxeq.AudioError(f"{path}: {e}") from None
  return spectrum, floor, windows.astype(np.float16)


def _assemble(out: Path, rows: list[dict], part_paths: list[str]) -> list[str]:
  """Joins the chunks into the split's arrays and index; returns the clips left out."""
  parts = []
  for path in part_paths:
    with np.load(path, allow_pickle=False) as part:
      parts.append({name: part[name] for name in part.files})
  total_windows = sum(len(p["window_clip"]) for p in parts)
  spectra, floors, labels, window_clip, index, skipped = [], [], [], [], [], []
  with atomic_path(out / "windows.npy", suffix=".npy") as tmp:
    # Written in place chunk by chunk: a large split's windows need not fit in memory.
    windows = (np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                         shape=(total_windows, *WINDOW_SHAPE)) if total_windows
               else np.zeros((0, *WINDOW_SHAPE), np.float16))
    w = 0
    for start, part in zip(range(0, len(rows), CHUNK), parts):
      counts = np.bincount(part["window_clip"], minlength=len(part["errors"]))
      for i, error in enumerate(part["errors"]):
        row = rows[start + i]
        if error:
          skipped.append(str(error))
          continue
        clip = len(spectra)
        spectra.append(part["spectra"][i])
        floors.append(part["noise_floors"][i])
        labels.append(jaxeq.CLASSES.index(row["class"]))
        index.append({**row, "class_index": labels[-1], "window_start": w + int(np.sum(counts[:i])),
                      "window_count": int(counts[i])})
        window_clip += [clip] * int(counts[i])
      windows[w:w + len(part["windows"])] = part["windows"]
      w += len(part["windows"])
    if total_windows:
      windows.flush()
    else:  # a memory map cannot be empty
      with open(tmp, "wb") as f:
        np.save(f, windows)
    del windows
  curves = lambda rows: np.array(rows, np.float32).reshape(-1, len(jaxeq.FREQS))  # noqa: E731
  for name, array in (("spectra", curves(spectra)), ("noise_floors", curves(floors)),
                      ("labels", np.array(labels, np.int16)),
                      ("window_clip", np.array(window_clip, np.int32))):
    with atomic_path(out / f"{name}.npy", suffix=".npy") as tmp, open(tmp, "wb") as f:
      np.save(f, array)
  columns = list(rows[0]) + ["class_index", "window_start", "window_count"]
  write_text_atomically(out / "index.csv", manifest.csv_text(columns, index))
  return skipped


def _digest(rows: list[dict], max_windows: int) -> str:
  """Identifies what a split's features are computed from."""
  key = json.dumps([FEATURES_FORMAT, max_windows, [(r["path"], r["class"]) for r in rows]])
  return hashlib.sha256(key.encode("utf-8")).hexdigest()


if __name__ == "__main__":
  sys.exit(main())
