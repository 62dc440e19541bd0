"""A sampler: `Material` played with real recordings of single notes (a `SoundSource`).

The recordings are a folder of files named by note, in either of two schemes:

- tonejs-instruments: `A3.mp3`, `As3.mp3` (s = sharp), `Db4.mp3` (flat), one velocity;
- Salamander Grand Piano V3: `A0v1.ogg` ... `C8v16.ogg` (note and velocity layer, `F#3v10` or
  `Fs3v10`), and release samples `rel1.ogg` ... `rel88.ogg` (key 1 = A0 = MIDI 21), usually in
  a folder of their own.

A `_rr2`-style suffix marks a round-robin recording of the same note and layer. Each note is
played by its nearest recording in pitch, resampled (soxr) to the note's pitch; velocity picks a
layer and a gain; at note-off the voice fades out over a release time that suits the class, and
a Salamander-style release sample of the key is mixed in. CC7 (volume) and CC11 (expression)
shape the level of the whole part; CC1 (vibrato depth) is ignored: the recordings carry their
own vibrato. CC64 (sustain pedal) is not played either: no material sends it.

For the test split, `SampleSet.subset` / `Sampler.subset` keep only recordings of some sampled
notes; a sampler on a subset pitch-shifts from the nearest recording *in the subset* and never
opens another file.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
import soxr

from data_prep.material import Control, Material, Note, Sounds
from data_prep.sound_source import SAMPLE_RATE
from jaxeq.classes import class_info
AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3")  # preferred first
# Note names: letter, accidental (s or # sharp, b flat), octave (C4 = MIDI 60), then an optional
# velocity layer (v10) and round-robin index (_rr2).
_NOTE_NAME = re.compile(r"^(?P<letter>[A-Ga-g])(?P<accidental>s|#|b)?(?P<octave>-?\d)"
                        r"(?:v(?P<layer>\d+))?(?:[_-]?rr(?P<rr>\d+))?$")
_RELEASE_NAME = re.compile(r"^rel(?P<key>\d+)(?:[_-]?rr(?P<rr>\d+))?$")
_PITCH_CLASS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACCIDENTAL = {None: 0, "s": 1, "#": 1, "b": -1}
# Leading samples quieter than this (relative to the recording's peak) are encoder delay and
# silence before the onset; `_PRE_ONSET_S` of them are kept. Trailing samples below
# `_TAIL_FLOOR` are dropped (some recordings end in seconds of near-silence).
_ONSET_FLOOR = 1e-3  # -60 dB
_PRE_ONSET_S = 0.003
_TAIL_FLOOR = 1e-4  # -80 dB
# Input samples resampled beyond what a voice needs, so soxr's filter does not see the cut.
_RESAMPLE_MARGIN = 256
# Gain from velocity: amplitude (velocity / top of the layer's range) ** exponent. One layer
# over 1-127 gives (v/127)**1.5 (-15 dB at v=40); narrow layers only interpolate a little.
_VELOCITY_EXPONENT = 1.5
# Release time (seconds to fall silent after note-off, -60 dB and then to zero) by family,
# then by class where the class differs from its family.
_RELEASE_S = {"keys": 0.25, "chromatic_percussion": 0.3, "guitar": 0.12, "bass": 0.1,
              "strings": 0.25, "voice": 0.2, "brass": 0.15, "woodwinds": 0.12, "synth": 0.3}
_CLASS_RELEASE_S = {"organ": 0.1, "electric_piano": 0.2, "harp": 0.3, "string_ensemble": 0.3}
# Salamander's release samples (damper noise, normalised loud) are played at -37 dB, falling
# 2 dB for every second the key was held (its SFZ: volume=-37 rt_decay=2).
RELEASE_LEVEL_DB = -37.0
_RELEASE_DECAY_DB_PER_S = 2.0
# CC7/CC11 changes are smoothed over this long (no zipper noise).
_CONTROL_SMOOTHING_S = 0.01


# --- recordings and their names ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Zone:
  """One recording: the MIDI note it sounds, its velocity layer and round-robin index (1 where
  the set has one of each)."""
  note: int
  velocity_layer: int
  round_robin: int
  path: Path


def note_number(name: str) -> int:
  """The MIDI note of a note name (`A3`, `As3`, `Cs4`, `F#3`, `Db4`; C4 = 60, A0 = 21)."""
  parsed = _NOTE_NAME.match(name)
  if parsed is None or parsed["layer"] or parsed["rr"]:
    raise ValueError(f"not a note name: {name!r}")
  return _note_of(parsed)


def _note_of(parsed: re.Match) -> int:
  return (12 * (int(parsed["octave"]) + 1) + _PITCH_CLASS[parsed["letter"].lower()]
          + _ACCIDENTAL[parsed["accidental"]])


def parse_name(stem: str) -> tuple[str, int, int, int] | None:
  """`(kind, MIDI note, velocity layer, round robin)` of a file name without its suffix, kind
  'note' or 'release' (`rel12` is the release of key 12, MIDI 32); None for other names."""
  parsed = _NOTE_NAME.match(stem)
  if parsed is not None:
    return ("note", _note_of(parsed), int(parsed["layer"] or 1), int(parsed["rr"] or 1))
  parsed = _RELEASE_NAME.match(stem)
  if parsed is not None:
    return ("release", 20 + int(parsed["key"]), 1, int(parsed["rr"] or 1))
  return None


def even_velocity_ranges(layers: Iterable[int]) -> dict[int, tuple[int, int]]:
  """Velocity ranges (inclusive) spreading `layers`, in their order, evenly over 1-127."""
  layers = sorted(set(layers))
  k = len(layers)
  return {layer: (1 + (i * 127) // k, ((i + 1) * 127) // k) for i, layer in enumerate(layers)}


@dataclasses.dataclass(frozen=True)
class SampleSet:
  """The recordings of one instrument (or its release samples), indexed by note and layer.

  `velocity_ranges` maps each layer to the velocities it plays; a subset keeps the ranges of
  the whole set, so a velocity picks the same layer in every split.
  """
  zones: tuple[Zone, ...]
  velocity_ranges: dict[int, tuple[int, int]]

  @classmethod
  def from_folder(cls, folder: str | Path, kind: str = "note",
                  velocity_ranges: dict[int, tuple[int, int]] | None = None) -> SampleSet:
    """The recordings of `kind` ('note' or 'release') in `folder`, found by file name.

    Where a note and layer has several files (e.g. `.ogg` and `.mp3`), round robins aside,
    the first suffix of `AUDIO_SUFFIXES` wins.
    """
    if kind not in ("note", "release"):
      raise ValueError(f"kind must be 'note' or 'release', not {kind!r}")
    folder = Path(folder)
    if not folder.is_dir():
      raise FileNotFoundError(f"no folder of recordings at {folder}")
    found: dict[tuple[int, int, int], Path] = {}
    for path in sorted(folder.iterdir(), key=lambda p: (AUDIO_SUFFIXES.index(p.suffix.lower())
                                                        if p.suffix.lower() in AUDIO_SUFFIXES
                                                        else 99, p.name)):
      if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
        continue
      parsed = parse_name(path.stem)
      if parsed is not None and parsed[0] == kind:
        found.setdefault(parsed[1:], path)
    if not found:
      raise FileNotFoundError(f"no {kind} recordings named by note in {folder}")
    zones = tuple(Zone(n, v, r, p) for (n, v, r), p in sorted(found.items()))
    return cls.of(zones, velocity_ranges)

  @classmethod
  def of(cls, zones: Iterable[Zone],
         velocity_ranges: dict[int, tuple[int, int]] | None = None) -> SampleSet:
    zones = tuple(sorted(zones, key=lambda z: (z.note, z.velocity_layer, z.round_robin)))
    ranges = velocity_ranges or even_velocity_ranges(z.velocity_layer for z in zones)
    missing = {z.velocity_layer for z in zones} - set(ranges)
    if missing:
      raise ValueError(f"no velocity range given for layers {sorted(missing)}")
    return cls(zones, dict(ranges))

  def notes(self) -> tuple[int, ...]:
    """The MIDI notes recorded, ascending."""
    return tuple(self._index)

  def subset(self, notes: Iterable[int]) -> SampleSet:
    """Only the recordings of the given recorded notes (all their layers and round robins)."""
    keep = set(notes)
    zones = tuple(z for z in self.zones if z.note in keep)
    if not zones:
      raise ValueError(f"none of the notes {sorted(keep)} is recorded")
    return SampleSet(zones, self.velocity_ranges)

  @functools.cached_property
  def _index(self) -> dict[int, dict[int, tuple[Zone, ...]]]:
    """note → layer → the round robins, in order."""
    index: dict[int, dict[int, list[Zone]]] = {}
    for z in self.zones:
      index.setdefault(z.note, {}).setdefault(z.velocity_layer, []).append(z)
    return {n: {v: tuple(zs) for v, zs in layers.items()} for n, layers in sorted(index.items())}

  def nearest_note(self, pitch: int) -> int:
    """The recorded note nearest to `pitch`; of two equally near, the one below."""
    return min(self.notes(), key=lambda n: (abs(n - pitch), n))

  def layer_for(self, note: int, velocity: int) -> int:
    """The layer of recorded `note` that plays `velocity`: the one whose range holds it, else
    the one whose range is nearest."""
    def distance(layer):
      lo, hi = self.velocity_ranges[layer]
      return (max(lo - velocity, velocity - hi, 0), layer)
    return min(self._index[note], key=distance)

  def round_robins(self, note: int, layer: int) -> tuple[Zone, ...]:
    return self._index[note][layer]


# --- pure signal functions --------------------------------------------------------------


def decode(path: str | Path) -> tuple[np.ndarray, int]:
  """`(mono float32 audio, sample rate)` of a recording, from just before its onset (encoder
  delay and leading silence below -60 dB of its peak trimmed, 3 ms kept) to its last sample
  above -80 dB."""
  audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
  return trim(audio.mean(axis=1), rate), rate


def trim(audio: np.ndarray, rate: int) -> np.ndarray:
  """`audio` without its leading silence (but `_PRE_ONSET_S` before the onset) and its
  trailing near-silence."""
  level = np.abs(audio)
  peak = float(level.max()) if len(level) else 0.0
  if peak <= 0:
    return np.zeros(0, np.float32)
  onset = int(np.argmax(level > peak * _ONSET_FLOOR))
  start = max(0, onset - int(round(_PRE_ONSET_S * rate)))
  stop = len(level) - int(np.argmax(level[::-1] > peak * _TAIL_FLOOR))
  return np.ascontiguousarray(audio[start:stop], np.float32)


def pitch_shift(audio: np.ndarray, rate: int, semitones: float, frames: int) -> np.ndarray:
  """The first `frames` (at most: a recording ends where it ends) of `audio` played
  `semitones` higher and resampled to `SAMPLE_RATE`, as a sampler plays a recording faster."""
  playback_rate = rate * 2.0 ** (semitones / 12)
  available = int(len(audio) * SAMPLE_RATE / playback_rate)
  frames = max(0, min(frames, available))
  if frames == 0:
    return np.zeros(0, np.float32)
  if abs(playback_rate - SAMPLE_RATE) < 1e-9:
    return audio[:frames]
  needed = min(len(audio), math.ceil(frames * playback_rate / SAMPLE_RATE) + _RESAMPLE_MARGIN)
  out = soxr.resample(audio[:needed], playback_rate, SAMPLE_RATE, quality="HQ")
  out = out[:frames]
  if len(out) < frames:
    out = np.pad(out, (0, frames - len(out)))
  return out.astype(np.float32, copy=False)


def release_envelope(frames: int, hold: int, release: int) -> np.ndarray:
  """Gain over a voice of `frames`: 1 for `hold` frames, then falling 60 dB exponentially and
  to 0 at `release` frames after the note-off."""
  env = np.ones(frames, np.float32)
  if frames > hold:
    t = np.arange(frames - hold, dtype=np.float32) / max(release, 1)
    env[hold:] = np.where(t < 1, 10.0 ** (-3.0 * t) * (1 - t), 0.0)
  return env


def velocity_gain(velocity: int, velocity_range: tuple[int, int]) -> float:
  """Amplitude of a note at `velocity` played by a layer recorded for `velocity_range`: the
  layer carries the timbre and most of the level, this the rest."""
  return float((max(velocity, 1) / velocity_range[1]) ** _VELOCITY_EXPONENT)


def control_gain(controls: Iterable[Control], frames: int) -> np.ndarray | None:
  """Gain over the clip from CC7 (volume) and CC11 (expression), each (value/127)**2 as General
  MIDI recommends, changes smoothed over 10 ms; None where neither is sent."""
  events = sorted((c.time, c.number, c.value) for c in controls if c.number in (7, 11))
  if not events:
    return None
  times = np.array([int(round(t * SAMPLE_RATE)) for t, _, _ in events])
  gains, current = [], {7: 127, 11: 127}
  for _, number, value in events:
    current[number] = value
    gains.append((current[7] / 127) ** 2 * (current[11] / 127) ** 2)
  # The gain in force at each frame: that of the last event at or before it (1 before any).
  which = np.searchsorted(times, np.arange(frames), side="right") - 1
  step = np.where(which >= 0, np.asarray(gains, np.float64)[np.maximum(which, 0)], 1.0)
  width = max(1, int(round(_CONTROL_SMOOTHING_S * SAMPLE_RATE)))
  padded = np.concatenate([np.full(width, step[0] if frames else 1.0), step])
  csum = np.cumsum(padded)
  return ((csum[width:] - csum[:-width]) / width).astype(np.float32)


def one_note(pitch: int, velocity: int, hold: float, program: int = 0) -> Material:
  """Material of one note, from 0 for `hold` seconds: what a one-shot plays."""
  return Material(notes=(Note(int(pitch), 0.0, float(hold), int(velocity)),), controls=(),
                  program=int(program), is_drum=False, description=f"one-shot {pitch}",
                  tempo_bpm=120.0, articulation="normal", velocity=int(velocity))


# --- the sound source -------------------------------------------------------------------


class Sampler:
  """Plays `Material` of one melodic class with a `SampleSet` (a `SoundSource`).

  `max_shift_semitones` is how far beyond the recorded range notes are offered (`sounds`);
  inside the range a note is always played by its nearest recording, however far. Decoded
  recordings are kept in memory, least recently used dropped beyond `cache_mb`.
  """

  def __init__(self, name: str, samples: SampleSet, class_name: str,
               releases: SampleSet | None = None, max_shift_semitones: int = 2,
               release_seconds: float | None = None,
               release_level_db: float = RELEASE_LEVEL_DB, cache_mb: float = 512):
    info = class_info(class_name)
    if info.is_drum:
      raise ValueError(f"{class_name} is a drum class: a sampler plays melodic classes")
    self.name = name
    self.samples = samples
    self.class_name = class_name
    self.releases = releases
    self.max_shift_semitones = int(max_shift_semitones)
    self.release_seconds = float(release_seconds if release_seconds is not None else
                                 _CLASS_RELEASE_S.get(class_name, _RELEASE_S[info.family]))
    self.release_level_db = float(release_level_db)
    self._cache_bytes = int(cache_mb * 2**20)
    self._cache: collections.OrderedDict[Path, tuple[np.ndarray, int]] = (
        collections.OrderedDict())

  def subset(self, notes: Iterable[int]) -> Sampler:
    """The same sampler with only the recordings of the given recorded notes, and only the
    release samples of the keys those recordings would play (those nearest to them)."""
    notes = set(notes)
    releases = None
    if self.releases is not None:
      keys = [k for k in self.releases.notes() if self.samples.nearest_note(k) in notes]
      releases = self.releases.subset(keys) if keys else None
    return Sampler(self.name, self.samples.subset(notes), self.class_name, releases,
                   self.max_shift_semitones, self.release_seconds, self.release_level_db,
                   self._cache_bytes / 2**20)

  def sounds(self) -> Sounds:
    """The class's GM programs, over the recorded range widened by the allowed shift (and
    inside the class's range)."""
    info = class_info(self.class_name)
    notes = self.samples.notes()
    lo = max(notes[0] - self.max_shift_semitones, info.pitch_range[0])
    hi = min(notes[-1] + self.max_shift_semitones, info.pitch_range[1])
    if lo > hi:
      raise ValueError(f"{self.name}: recordings {notes[0]}-{notes[-1]} lie outside the range "
                       f"of {self.class_name} ({info.pitch_range[0]}-{info.pitch_range[1]})")
    return Sounds(programs=frozenset(info.gm_programs), drum_notes=frozenset(),
                  pitch_range=(lo, hi))

  def render(self, material: Material, seconds: float) -> np.ndarray:
    """Mono float32 audio at `SAMPLE_RATE`, exactly `seconds` long: the notes' voices summed,
    shaped by CC7/CC11. The same material gives the same audio."""
    if material.is_drum:
      raise ValueError(f"{self.name} plays melodic material, not drums")
    frames = int(round(seconds * SAMPLE_RATE))
    out = np.zeros(frames, np.float32)
    release_frames = int(round(self.release_seconds * SAMPLE_RATE))
    turns: collections.Counter = collections.Counter()  # round-robin position per note, layer
    for note in sorted(material.notes, key=lambda n: (n.start, n.pitch, n.end, n.velocity)):
      start = int(round(note.start * SAMPLE_RATE))
      if start >= frames or not 0 <= note.pitch <= 127:
        continue
      hold = max(0, int(round((note.end - note.start) * SAMPLE_RATE)))
      recorded = self.samples.nearest_note(note.pitch)
      layer = self.samples.layer_for(recorded, note.velocity)
      zones = self.samples.round_robins(recorded, layer)
      zone = zones[turns[recorded, layer] % len(zones)]
      turns[recorded, layer] += 1
      audio, rate = self._decoded(zone.path)
      voice = pitch_shift(audio, rate, note.pitch - recorded,
                          min(hold + release_frames, frames - start))
      gain = velocity_gain(note.velocity, self.samples.velocity_ranges[layer])
      voice = voice * release_envelope(len(voice), hold, release_frames)
      out[start:start + len(voice)] += gain * voice
      if self.releases is not None and start + hold < frames:
        self._add_release(out, note, start + hold)
    envelope = control_gain(material.controls, frames)
    if envelope is not None:
      out *= envelope
    return out

  def one_shot(self, pitch: int, velocity: int, seconds: float) -> np.ndarray:
    """One note held so that its release (and release sample) ends with the clip: a clean
    one-shot of `seconds`."""
    tail = self.release_seconds
    zone = self._release_zone(pitch, velocity)
    if zone is not None:
      audio, rate = self._decoded(zone.path)
      tail = max(tail, len(audio) / (rate * 2.0 ** ((pitch - zone.note) / 12)))
    hold = max(seconds - tail, min(seconds, 0.05))
    program = class_info(self.class_name).gm_programs[0]
    return self.render(one_note(pitch, velocity, hold, program), seconds)

  def _add_release(self, out: np.ndarray, note: Note, at: int):
    """The release sample of the note's key (or of the nearest key within the allowed shift,
    shifted to it), at `at`."""
    zone = self._release_zone(note.pitch, note.velocity)
    if zone is None:
      return
    audio, rate = self._decoded(zone.path)
    sound = pitch_shift(audio, rate, note.pitch - zone.note, len(out) - at)
    level_db = (self.release_level_db
                - _RELEASE_DECAY_DB_PER_S * max(0.0, note.end - note.start))
    gain = 10 ** (level_db / 20) * velocity_gain(note.velocity, (1, 127))
    out[at:at + len(sound)] += gain * sound

  def _release_zone(self, pitch: int, velocity: int) -> Zone | None:
    """The release sample of key `pitch` (or of the nearest key within the allowed shift)."""
    if self.releases is None:
      return None
    key = self.releases.nearest_note(pitch)
    if abs(key - pitch) > self.max_shift_semitones:
      return None
    return self.releases.round_robins(key, self.releases.layer_for(key, velocity))[0]

  def _decoded(self, path: Path) -> tuple[np.ndarray, int]:
    """A recording decoded and trimmed, from the cache where it is there."""
    if path in self._cache:
      self._cache.move_to_end(path)
      return self._cache[path]
    audio, rate = decode(path)
    self._cache[path] = (audio, rate)
    while len(self._cache) > 1 and sum(a.nbytes for a, _ in self._cache.values()) > (
        self._cache_bytes):
      self._cache.popitem(last=False)
    return audio, rate


def from_folders(name: str, folder: str | Path, class_name: str,
                 release_folder: str | Path | None = None, **kwargs) -> Sampler:
  """A sampler on the note recordings in `folder` (and the release samples in
  `release_folder`, or in `folder` itself where it holds `rel*` files)."""
  samples = SampleSet.from_folder(folder, "note")
  releases = None
  if release_folder is not None:
    releases = SampleSet.from_folder(release_folder, "release")
  elif any(parse_name(p.stem) and parse_name(p.stem)[0] == "release"
           for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
    releases = SampleSet.from_folder(folder, "release")
  return Sampler(name, samples, class_name, releases, **kwargs)
