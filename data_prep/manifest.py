"""The dataset manifest (`DIR/manifest.csv`), one row a clip, and the render journal.

Rendered and ingested datasets share the columns; a value a source does not have is empty.
`path` is relative to the dataset folder; `colouration` is the JSON of the `jaxeq.EQ` the
renderer applied (no bands for a clean reference clip; empty for ingested audio); `recorded`
is 1 for real recordings (rendered from a recorded source, or ingested), `kind` says whether a
clip plays a phrase, a short phrase or a one-shot, and `chain` is the JSON of the recording
chain's stages applied to a training clip.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

from jaxeq.atomic import write_text_atomically
from jaxeq.classes import CLASSES

COLUMNS = ("path", "class", "split", "bank", "reference", "seed", "program", "drum_notes",
           "material", "tempo_bpm", "articulation", "velocity", "peak_dbfs", "duration_s",
           "sample_rate", "colouration", "recorded", "kind", "chain")
SPLITS = ("train", "validation", "test")
FILENAME = "manifest.csv"
JOURNAL_DIR = "journal"


class ManifestError(ValueError):
  """A manifest that cannot be used; the message names the file and the reason."""


def write_manifest(path, rows) -> None:
  """Writes `rows` (dicts keyed by `COLUMNS`) atomically."""
  write_text_atomically(path, csv_text(COLUMNS, rows))


def csv_text(columns, rows) -> str:
  """`rows` (dicts) as CSV text with `columns`, one row a line, that reads back cell for cell."""
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
  writer.writeheader()
  writer.writerows({c: _cell(row.get(c, "")) for c in columns} for row in rows)
  return text.getvalue()


def read_manifest(path) -> list[dict[str, str]]:
  """The rows of a manifest, checked: known classes and splits, no path twice."""
  path = Path(path)
  if path.is_dir():
    path = path / FILENAME
  if not path.is_file():
    raise ManifestError(f"{path}: no manifest (render or ingest a dataset there first)")
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    missing = [c for c in ("path", "class", "split") if c not in (reader.fieldnames or ())]
    if missing:
      raise ManifestError(f"{path}: not a jaxeq manifest, missing column(s) {', '.join(missing)}")
    rows, seen = [], set()
    for line, row in enumerate(reader, start=2):
      if row["class"] not in CLASSES:
        raise ManifestError(f"{path}, line {line}: unknown class {row['class']!r}")
      if row["split"] not in SPLITS:
        raise ManifestError(f"{path}, line {line}: unknown split {row['split']!r}, expected one "
                            f"of {', '.join(SPLITS)}")
      if row["path"] in seen:
        raise ManifestError(f"{path}, line {line}: {row['path']} is listed twice")
      seen.add(row["path"])
      rows.append(row)
  return rows


def read_journal(directory) -> dict[str, dict]:
  """Rows of finished clips from every journal in `directory`, by path.

  A line cut short by a crash is ignored: its clip is rendered again.
  """
  rows = {}
  for journal in sorted(Path(directory).glob("*.jsonl")):
    for line in journal.read_text(encoding="utf-8").splitlines():
      with contextlib.suppress(json.JSONDecodeError):
        row = json.loads(line)
        if isinstance(row, dict) and "path" in row:
          rows[row["path"]] = row
  return rows


@contextlib.contextmanager
def open_journal(path):
  """Yields `write(row)`, which appends one row a line and flushes it."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "ab+") as f:
    size = f.seek(0, io.SEEK_END)
    if size:
      f.seek(size - 1)
      if f.read(1) != b"\n":
        f.write(b"\n")  # end a line a crash cut short, so it stays alone and ignored

    def write(row: dict) -> None:
      f.write(json.dumps(row).encode("utf-8") + b"\n")
      f.flush()

    yield write


def _cell(value) -> str:
  if isinstance(value, bool):
    return "1" if value else "0"
  # The writer quotes a cell holding "\n" (its line end) but not a lone "\r", which a reader
  # takes for a line end all the same (a music21 part name held one).
  return str(value).replace("\r\n", "\n").replace("\r", "\n")
