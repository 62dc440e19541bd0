"""The 35 instrument classes of the classifier, from `assets/classes.json`.

`CLASSES` holds the names in the classifier's output order; `CLASS_INFO` maps each name to
its `InstrumentClass`: family, the General MIDI programs (or GM drum keys) that render it,
and the MedleyDB and Slakh2100 labels that map onto it.
"""

from __future__ import annotations

import dataclasses
import json
import types
from importlib import resources

JSON_FORMAT = "jaxeq.classes/1"
DATASETS = ("medleydb", "slakh")


@dataclasses.dataclass(frozen=True)
class InstrumentClass:
  """One class. `pitch_range` is the lowest and highest MIDI note rendered (None for drums)."""
  name: str
  index: int
  family: str
  gm_programs: tuple[int, ...]
  gm_drum_notes: tuple[int, ...]
  pitch_range: tuple[int, int] | None
  medleydb: tuple[str, ...]
  slakh: tuple[str, ...]

  @property
  def is_drum(self) -> bool:
    return bool(self.gm_drum_notes)


def _load() -> tuple[InstrumentClass, ...]:
  data = json.loads(resources.files("jaxeq").joinpath("assets/classes.json").read_text("utf-8"))
  if data.get("format") != JSON_FORMAT:
    raise ValueError(f"jaxeq/assets/classes.json: expected \"format\": \"{JSON_FORMAT}\"")
  return tuple(
      InstrumentClass(name=c["name"], index=i, family=c["family"],
                      gm_programs=tuple(c["gm_programs"]), gm_drum_notes=tuple(c["gm_drum_notes"]),
                      pitch_range=tuple(c["pitch_range"]) if c["pitch_range"] else None,
                      medleydb=tuple(c["medleydb"]), slakh=tuple(c["slakh"]))
      for i, c in enumerate(data["classes"]))


_INFO = _load()
CLASSES: tuple[str, ...] = tuple(c.name for c in _INFO)
CLASS_INFO: types.MappingProxyType = types.MappingProxyType({c.name: c for c in _INFO})


def class_info(name: str) -> InstrumentClass:
  """The class called `name`; a `ValueError` naming the valid classes otherwise."""
  try:
    return CLASS_INFO[name]
  except (KeyError, TypeError):
    raise ValueError(f"unknown instrument class {name!r}: expected one of "
                     f"{', '.join(CLASSES)}") from None


def label_map(dataset: str) -> dict[str, str]:
  """Lower-cased labels of `dataset` ('medleydb' or 'slakh') → class name."""
  if dataset not in DATASETS:
    raise ValueError(f"dataset {dataset!r} has no label map: expected one of {', '.join(DATASETS)}")
  return {label.lower(): c.name for c in _INFO for label in getattr(c, dataset)}
