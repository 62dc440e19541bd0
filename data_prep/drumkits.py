"""Real recorded drum kits as sound sources (DESIGN.md §3–4): Hydrogen kits and SoundFont kits.

`HydrogenKit(folder)` plays a Hydrogen drum kit (a folder with `drumkit.xml` and its WAV, FLAC
or AIFF recordings; Debian `hydrogen-drumkits`) with a small sampler of its own: velocity
layers, round-robin, layer pitch, hi-hat choke. Each instrument is given one of jaxeq's drum
classes and a GM key from its name (`classify_instrument`); instruments of no drum class
(claps, cowbells, congas, effects) are left out, and `HydrogenKit.unused` says why each is.

`SoundFontKit(path)` plays a drum kit SoundFont (Debian `avldrums.lv2-soundfont`: the AVL
Black Pearl and Red Zeppelin kits) through FluidSynth, the same way the GM banks are played
(`synth.play_soundfont`).

Both take paths: `data_prep.fetch` finds or fills the cache that holds the recordings.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_prep.material import Material, Note, Sounds
from data_prep.sound_source import SAMPLE_RATE
from data_prep.synth import SetupError, import_fluidsynth, new_synth, play_soundfont
from jaxeq.classes import CLASSES, class_info

# The GM keys of each role, filled in order by the role's instruments (a kick first on 36, a
# second kick on 35). A slot's later roles come after its first: rimshots fill 40 only after a
# second plain snare, a half-open hat 46 only where there is no open one.
_SLOTS = (
    ((36, 35), ("kick",)),
    ((38, 40), ("snare", "rimshot")),
    ((37,), ("side_stick",)),
    ((42,), ("hihat_closed",)),
    ((44,), ("hihat_pedal",)),
    ((46,), ("hihat_open", "hihat_half_open")),
    ((49, 57), ("crash", "crash_ride")),
    ((51, 59), ("ride",)),
    ((53,), ("ride_bell",)),
    ((52,), ("china",)),
    ((55,), ("splash",)),
)
_TOM_KEYS = (41, 43, 45, 47, 48, 50)  # low floor tom up to high tom
# The GM keys of the cymbal roles, for generic names ("cymbal 1") whose note says which.
_CYMBAL_ROLE = {49: "crash", 57: "crash", 51: "ride", 59: "ride", 53: "ride_bell", 52: "china",
                55: "splash"}
# Names with these words are of no drum class, or are a stroke the patterns do not play (rolls,
# swishes, chokes): left out.
_OTHER = frozenset("clap claps cowbell conga congas djembe cajon shaker maraca maracas tambourine "
                   "agogo bongo clave woodblock waterglasshi waterglasslo waterglass finger snaps "
                   "whistle zap fx sangban dununba kenkeni roll swish choke".split())
_NOTE_PREFIX = re.compile(r"^\s*([a-g])(#?)(-?\d)\s*-\s*")  # "c#3 - stick": Hydrogen note names
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
CHOKE_SECONDS = 0.03  # a closed or pedal hi-hat stops a ringing open hat within this time
_CHOKERS = frozenset({42, 44})
_CHOKED = 46


def _words(name: str) -> tuple[list[str], int | None]:
  """The lowercase words of an instrument name (hi-hat spellings joined into "hihat"), and the
  GM key of a leading Hydrogen note name ("d#4 - cymbal 1": 51), if any."""
  key = None
  text = name.lower()
  match = _NOTE_PREFIX.match(text)
  if match:
    letter, sharp, octave = match.groups()
    key = 12 * int(octave) + _PITCH_CLASS[letter] + bool(sharp)  # Hydrogen's c3 is key 36
    text = text[match.end():]
  text = re.sub(r"\(.*?\)", " ", text)  # "(Tama Superstar 22\")": make and size
  text = re.sub(r"[^a-z0-9]+", " ", text)
  text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
  text = re.sub(r"\bhi ?hat\b|\bhh\b|\bhat\b", " hihat ", text)
  text = re.sub(r"\bbassdrum\b|\bbass drum\b|\bbd\b", " kick ", text)
  text = re.sub(r"\btomhi\b", " tom hi ", text)
  text = re.sub(r"\brim ?shot\b", " rimshot ", text)
  text = re.sub(r"\bsemi ?open\b|\bhalf ?open\b", " semiopen ", text)
  return text.split(), key


def classify_instrument(name: str) -> tuple[str, str] | None:
  """`(jaxeq drum class, role)` of a drum-kit instrument from its name, or None where it is of
  no drum class (claps, percussion, effects) or a stroke no pattern plays (rolls, chokes).

  Roles: kick; snare, rimshot, side_stick; hihat_closed, hihat_pedal, hihat_open,
  hihat_half_open; tom; crash, crash_ride, ride, ride_bell, china, splash.
  """
  words, key = _words(name)
  if not words or set(words) & _OTHER:
    return None
  w = set(words)
  if "stick" in w or "rim" in w or "sidestick" in w:
    return "snare", "side_stick"
  if "kick" in w:
    return "kick", "kick"
  if "snare" in w or "sd" in w:
    return "snare", "rimshot" if "rimshot" in w else "snare"
  if "hihat" in w:
    if w & {"closed", "close", "cl", "chh"}:
      return "hihat", "hihat_closed"
    if w & {"pedal", "pd", "foot"}:
      return "hihat", "hihat_pedal"
    if "semiopen" in w:
      return "hihat", "hihat_half_open"
    if w & {"open", "opened", "op"}:
      return "hihat", "hihat_open"
    return None
  if "tom" in w:
    return "toms", "tom"
  if "china" in w:
    return "cymbals", "china"
  if "splash" in w:
    return "cymbals", "splash"
  if w & {"bell", "cup"}:
    return "cymbals", "ride_bell"
  if "crash" in w and "ride" in w:  # a crash/ride is named by what it is first
    if "bow" in w or words.index("ride") < words.index("crash"):
      return "cymbals", "ride"
    return "cymbals", "crash_ride"
  if "crash" in w:
    return "cymbals", "crash"
  if "ride" in w:
    return "cymbals", "ride"
  if "cymbal" in w:
    return "cymbals", _CYMBAL_ROLE.get(key, "crash")
  return None


def _tom_rank(name: str) -> float:
  """Where a tom sits from low to high by its name: floor < low < (unnamed rack) < mid < high.
  Numbered rack toms without a word count down from the highest ("Tom 1" above "Tom 2")."""
  words, _ = _words(name)
  for rank, names in enumerate((("floor",), ("low", "lo"), (), ("mid", "middle"),
                                ("high", "hi"))):
    if set(words) & set(names):
      return float(rank)
  numbers = [int(w) for w in words if w.isdigit()]
  return 2.0 - 0.01 * (numbers[0] if numbers else 0)


class Layer(NamedTuple):
  """One recording of an instrument: played for velocities (0–1) in [low, high]."""
  path: Path
  low: float
  high: float
  gain: float
  pitch: float  # semitones


class Instrument(NamedTuple):
  """A Hydrogen instrument: components (microphones, played together), each a list of layers."""
  name: str
  gain: float  # the instrument's gain times its mixer volume
  components: tuple[tuple[Layer, ...], ...]


def _number(element, tag: str, default: float) -> float:
  text = element.findtext(tag)
  try:
    return float(text) if text is not None and text.strip() else default
  except ValueError:
    return default


def parse_drumkit(folder: str | Path) -> tuple[str, list[Instrument]]:
  """`(kit name, instruments)` of the `drumkit.xml` in `folder`, in its order, with the layers
  whose files exist. Reads both formats: `<layer>` elements (velocity range, gain, pitch,
  file; inside `<instrumentComponent>` in newer kits) and the old one file an instrument."""
  folder = Path(folder)
  xml = folder / "drumkit.xml"
  if not xml.is_file():
    raise SetupError(f"no Hydrogen drum kit in {folder}: drumkit.xml is missing")
  root = ET.parse(xml).getroot()
  for element in root.iter():  # drop the namespace newer kits declare
    element.tag = element.tag.rsplit("}", 1)[-1]
  instruments = []
  for item in root.iter("instrument"):
    name = (item.findtext("name") or "").strip()
    pitch = _number(item, "pitchOffset", 0.0)
    groups = item.findall("instrumentComponent") or [item]
    components = []
    for group in groups:
      scale = _number(group, "gain", 1.0) if group is not item else 1.0
      layers = [Layer(folder / (layer.findtext("filename") or "").strip(),
                      _number(layer, "min", 0.0), _number(layer, "max", 1.0),
                      scale * _number(layer, "gain", 1.0), pitch + _number(layer, "pitch", 0.0))
                for layer in group.findall("layer")]
      if not layers and group.findtext("filename"):
        layers = [Layer(folder / group.findtext("filename").strip(), 0.0, 1.0, scale, pitch)]
      layers = tuple(layer for layer in layers if layer.path.is_file())
      if layers:
        components.append(layers)
    gain = _number(item, "gain", 1.0) * _number(item, "volume", 1.0)
    instruments.append(Instrument(name, gain, tuple(components)))
  return (root.findtext("name") or folder.name).strip(), instruments


def assign_keys(instruments: list[Instrument]
                ) -> tuple[dict[int, Instrument], list[tuple[str, str]]]:
  """`({GM key: instrument}, [(instrument name, why it is left out)])`.

  Each role's instruments fill its keys in the kit's order. Toms, ordered low to high by name
  (then by layer pitch, then kit order), are spread over the six GM tom keys.
  """
  unused, roles, toms = [], {}, []
  for index, instrument in enumerate(instruments):
    found = classify_instrument(instrument.name)
    if not instrument.components:
      unused.append((instrument.name, "no samples"))
    elif found is None:
      unused.append((instrument.name, "no drum class"))
    elif found[1] == "tom":
      pitch = instrument.components[0][0].pitch
      toms.append((_tom_rank(instrument.name), pitch, index, instrument))
    else:
      roles.setdefault(found[1], []).append(instrument)
  by_key = {}
  for keys, slot_roles in _SLOTS:
    candidates = [i for role in slot_roles for i in roles.get(role, [])]
    by_key.update(zip(keys, candidates))
    unused += [(i.name, "no GM key left") for i in candidates[len(keys):]]
  toms = [t[-1] for t in sorted(toms, key=lambda t: t[:3])]
  if len(toms) > len(_TOM_KEYS):  # keep six spread from low to high
    kept = {round(j * (len(toms) - 1) / (len(_TOM_KEYS) - 1)) for j in range(len(_TOM_KEYS))}
    unused += [(t.name, "no GM key left") for i, t in enumerate(toms) if i not in kept]
    toms = [t for i, t in enumerate(toms) if i in kept]
  if len(toms) == 1:
    by_key[45] = toms[0]
  elif toms:
    last = len(_TOM_KEYS) - 1
    by_key.update({_TOM_KEYS[round(i * last / (len(toms) - 1))]: t for i, t in enumerate(toms)})
  return dict(sorted(by_key.items())), unused


def _load(path: Path, pitch: float) -> np.ndarray:
  """A recording as mono float32 at `SAMPLE_RATE`, `pitch` semitones higher (played faster)."""
  import soundfile as sf
  import soxr
  audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
  mono = audio.mean(axis=1)
  source_rate = rate * 2.0 ** (pitch / 12)
  if abs(source_rate - SAMPLE_RATE) > 1e-6:
    mono = soxr.resample(mono, source_rate, SAMPLE_RATE, quality="HQ")
  return np.ascontiguousarray(mono, np.float32)


class HydrogenKit:
  """A Hydrogen drum kit as a `SoundSource`.

  Notes play the instrument on their GM key: the layer whose velocity range holds
  `velocity / 127` (the first such range; several layers of one range take turns, in order,
  from the start of each clip), at layer gain × instrument gain and volume × velocity / 127, as
  Hydrogen plays it. A note's `end` is ignored (drums are one-shots); a closed or pedal hi-hat
  chokes a ringing open one within `CHOKE_SECONDS`. Recordings are loaded on first use and kept.
  """

  def __init__(self, folder: str | Path):
    self.folder = Path(folder)
    self.kit_name, self.instruments = parse_drumkit(self.folder)
    self.name = f"hydrogen:{self.kit_name}"
    self.by_key, self.unused = assign_keys(self.instruments)
    self._samples: dict[tuple[Path, float], np.ndarray] = {}

  def sounds(self) -> Sounds:
    return Sounds(programs=frozenset(), drum_notes=frozenset(self.by_key))

  def table(self) -> list[tuple[int, str, str, int]]:
    """`(GM key, class, instrument name, velocity layers)` for each key the kit plays."""
    rows = []
    for key, instrument in self.by_key.items():
      ranges = {(layer.low, layer.high) for layer in instrument.components[0]}
      rows.append((key, _class_of_key(key), instrument.name, len(ranges)))
    return rows

  def _sample(self, layer: Layer) -> np.ndarray:
    cached = (layer.path, layer.pitch)
    if cached not in self._samples:
      self._samples[cached] = _load(layer.path, layer.pitch)
    return self._samples[cached]

  def render(self, material: Material, seconds: float) -> np.ndarray:
    n = int(round(seconds * SAMPLE_RATE))
    out = np.zeros(n, np.float32)
    missing = sorted({note.pitch for note in material.notes} - set(self.by_key))
    if missing:
      raise SetupError(f"drum kit {self.kit_name} has no drum key {missing[0]}")
    notes = sorted(material.notes, key=lambda note: (note.start, note.pitch))
    choke_times = [note.start for note in notes if note.pitch in _CHOKERS]
    turns: dict[tuple, int] = {}
    fade = int(round(CHOKE_SECONDS * SAMPLE_RATE))
    for note in notes:
      start = int(round(note.start * SAMPLE_RATE))
      if start >= n:
        continue
      instrument = self.by_key[note.pitch]
      velocity = note.velocity / 127
      voice = np.zeros(0, np.float32)
      for c, layers in enumerate(instrument.components):
        layer = self._pick(layers, velocity, turns, (note.pitch, c))
        sample = self._sample(layer) * np.float32(layer.gain * instrument.gain * velocity)
        if len(sample) > len(voice):
          sample[:len(voice)] += voice
          voice = sample
        else:
          voice[:len(sample)] += sample
      voice = voice[:n - start]
      if note.pitch == _CHOKED:
        later = [t for t in choke_times if t > note.start]
        if later:
          stop = int(round(later[0] * SAMPLE_RATE)) - start
          voice = voice[:stop + fade].copy()
          tail = voice[stop:]
          tail *= np.linspace(1, 0, fade, dtype=np.float32)[:len(tail)]
      out[start:start + len(voice)] += voice
    return out

  @staticmethod
  def _pick(layers: tuple[Layer, ...], velocity: float, turns: dict, voice: tuple) -> Layer:
    """The layer for `velocity`: of the first range that holds it (else the nearest range), the
    next in turn among that range's layers."""
    ranges = list(dict.fromkeys((layer.low, layer.high) for layer in layers))
    holding = [r for r in ranges if r[0] <= velocity <= r[1]]
    chosen = holding[0] if holding else min(
        ranges, key=lambda r: min(abs(velocity - r[0]), abs(velocity - r[1])))
    group = [layer for layer in layers if (layer.low, layer.high) == chosen]
    turn = turns.get((voice, chosen), 0)
    turns[(voice, chosen)] = turn + 1
    return group[turn % len(group)]


@functools.lru_cache(maxsize=None)
def _drum_classes() -> dict[int, str]:
  """GM key → jaxeq drum class."""
  return {key: name for name in CLASSES for key in class_info(name).gm_drum_notes}


def _class_of_key(key: int) -> str:
  return _drum_classes().get(key, "")


# Keys of these SoundFont presets hold other strokes than their GM sound: the AVL kits put a hi-hat
# swish on 48 (GM: hi-mid tom), a crash choke on 50 (high tom) and a ride choke on 52 (china).
_NOT_THEIR_GM_SOUND = {"Black_Pearl_4pc": frozenset({48, 50, 52}),
                       "Red_Zeppelin_4pc": frozenset({48, 50, 52})}
_SILENT_RMS = 1e-4


class SoundFontKit:
  """A drum kit SoundFont as a `SoundSource`, played through FluidSynth (`play_soundfont`).

  `preset` is `(bank, program)`; by default the standard GM kit (128, 0) where the file has
  one, else its first preset (the AVL kits: (0, 0)). `sounds()` holds the drum-class keys with
  recordings: each is played once and kept where it is not silent, less keys known to hold
  another stroke (`_NOT_THEIR_GM_SOUND`).
  """

  def __init__(self, path: str | Path, preset: tuple[int, int] | None = None):
    self.path = Path(path)
    if not self.path.is_file():
      raise SetupError(f"drum kit SoundFont {self.path} not found")
    self._fluidsynth = import_fluidsynth()
    self._holder = new_synth(self._fluidsynth)  # keeps the samples in FluidSynth's cache
    sfid = self._holder.sfload(str(self.path))
    if sfid < 0:
      raise SetupError(f"FluidSynth could not load {self.path}")
    presets = {(b, p): self._holder.sfpreset_name(sfid, b, p)
               for b in (0, 128) for p in range(128)}
    presets = {k: v for k, v in presets.items() if v is not None}
    if preset is None:
      preset = (128, 0) if (128, 0) in presets else min(presets, default=None)
    if preset not in presets:
      raise SetupError(f"{self.path.name} has no preset {preset}: it has {sorted(presets)}")
    self.bank_number, self.program = preset
    self.preset_name = presets[preset]
    self.name = f"soundfont:{self.path.stem}:{self.preset_name}"
    self._sounds: Sounds | None = None

  def sounds(self) -> Sounds:
    if self._sounds is None:
      skip = _NOT_THEIR_GM_SOUND.get(self.preset_name, frozenset())
      keys = set()
      for key in sorted(set(_drum_classes()) - skip):
        probe = Material(notes=(Note(key, 0.0, 0.3, 100),), controls=(), program=self.program,
                         is_drum=True, description="probe", tempo_bpm=120.0,
                         articulation="normal", velocity=100)
        audio = self._play(probe, 0.4)
        if np.sqrt(np.mean(audio ** 2)) > _SILENT_RMS:
          keys.add(key)
      self._sounds = Sounds(programs=frozenset(), drum_notes=frozenset(keys))
    return self._sounds

  def _play(self, material: Material, seconds: float) -> np.ndarray:
    return play_soundfont(self._fluidsynth, self.path, material, seconds, self.bank_number,
                          self.program)

  def render(self, material: Material, seconds: float) -> np.ndarray:
    missing = sorted({n.pitch for n in material.notes} - self.sounds().drum_notes)
    if missing:
      raise SetupError(f"drum kit {self.name} has no drum key {missing[0]}")
    return self._play(material, seconds)


def main() -> None:
  """`python -m data_prep.drumkits FOLDER_OR_SF2...`: each kit's GM keys, classes, instruments
  and velocity layers, and what is left out."""
  import sys
  for arg in sys.argv[1:]:
    path = Path(arg)
    if path.suffix.lower() in (".sf2", ".sf3"):
      kit = SoundFontKit(path)
      print(f"{kit.name}: keys {sorted(kit.sounds().drum_notes)}")
      continue
    kit = HydrogenKit(path)
    print(f"{kit.name}")
    for key, name, instrument, layers in kit.table():
      print(f"  {key:3d} {name:8s} {instrument:50s} {layers} layer(s)")
    for instrument, why in kit.unused:
      print(f"      left out: {instrument or '(no name)'} ({why})")


if __name__ == "__main__":
  main()
