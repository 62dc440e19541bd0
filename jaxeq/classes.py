"""The 37 instrument classes of the classifier, from `assets/classes.json`.

`CLASSES` holds the names in the classifier's output order; `CLASS_INFO` maps each name to
its `InstrumentClass`: family, the General MIDI programs (or GM drum keys) that render it,
and the MedleyDB and Slakh2100 labels that map onto it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
from importlib import resources
from typing import Mapping

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
# Drums and basses whose fundamental a target never cuts (`jaxeq.spectrum.correction`): a
# class target, the mean over many pitches and kits, is flatter than any one well-recorded
# kick or bass note, whose fundamental stands out of it (hi-hats and cymbals have none).
KEEPS_FUNDAMENTAL = frozenset({"kick", "snare", "toms", "drum_kit", "electric_bass",
                               "upright_bass", "synth_bass", "contrabass", "tuba"})


def fundamental_share(mix: Mapping[str, float]) -> float:
  """How much of a target blended as `mix` (class → share) is a drum's or a bass's: how far
  its correction keeps the track's fundamental (`keep_fundamental` of
  `jaxeq.spectrum.correction`)."""
  return float(sum(share for name, share in mix.items() if name in KEEPS_FUNDAMENTAL))


def resolve_name(name: str, names, what: str = "instrument class") -> str:
  """The one of `names` that `name` means, ignoring case, spaces and hyphens ("Acoustic
  Piano" is `acoustic_piano`); a `ValueError` suggesting the nearest names otherwise."""
  names = tuple(names)
  key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
  for candidate in names:
    if candidate.lower() == key:
      return candidate
  near = difflib.get_close_matches(key, [n.lower() for n in names], n=3, cutoff=0.5)
  hint = (f"did you mean {' or '.join(n for n in names if n.lower() in near)}?" if near
          else f"expected one of {', '.join(names)}")
  raise ValueError(f"unknown {what} {name!r}: {hint}")


def class_info(name: str) -> InstrumentClass:
  """The class called `name` (see `resolve_name`); a `ValueError` naming the nearest otherwise."""
  return CLASS_INFO[resolve_name(name, CLASSES)]


def label_map(dataset: str) -> dict[str, str]:
  """Lower-cased labels of `dataset` ('medleydb' or 'slakh') → class name."""
  if dataset not in DATASETS:
    raise ValueError(f"dataset {dataset!r} has no label map: expected one of {', '.join(DATASETS)}")
  return {label.lower(): c.name for c in _INFO for label in getattr(c, dataset)}
