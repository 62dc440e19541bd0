"""Musical material for one clip: notes idiomatic to an instrument class, drawn from a seed.

`make_material(class_name, rng, seconds)` is deterministic given `rng`. Melodic classes play
either generated parts (bass lines, chord comping, strums, arpeggios, pads, leads, power
chords) over a random key and chord progression, or parts of real scores from the music21
corpus (which ships inside its package) moved into the instrument's range. Drum classes play
a pattern for their one drum piece, as one track of a multitrack drum recording;
`make_kit_material` plays those patterns together, a whole kit on one track. Tempo,
register, transposition, dynamics and articulation vary from clip to clip.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import numpy as np

from jaxeq.classes import InstrumentClass, class_info


class Note(NamedTuple):
  pitch: int
  start: float  # seconds
  end: float
  velocity: int


class Control(NamedTuple):
  time: float  # seconds
  number: int  # MIDI continuous controller
  value: int


class Sounds(NamedTuple):
  """What a sound source plays with recordings of its own: melodic GM programs, GM percussion
  keys, and (for a source sampled over part of the keyboard) the MIDI notes it covers."""
  programs: frozenset[int]
  drum_notes: frozenset[int]
  pitch_range: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class Material:
  """What one clip plays. `program` is the GM program, or the GM drum kit for drum classes."""
  notes: tuple[Note, ...]
  controls: tuple[Control, ...]
  program: int
  is_drum: bool
  description: str
  tempo_bpm: float
  articulation: str
  velocity: int


# The styles each melodic class plays, drawn with equal probability.
STYLES = {
    "acoustic_piano": ("corpus_texture", "block_chords", "broken_chords", "arpeggio", "lead"),
    "electric_piano": ("block_chords", "offbeat_chords", "broken_chords", "pad", "corpus_texture"),
    "organ": ("corpus_texture", "pad", "block_chords", "offbeat_chords"),
    "mallets": ("corpus_melody", "arpeggio", "lead", "broken_chords"),
    "acoustic_guitar_nylon": ("arpeggio", "broken_chords", "strum", "corpus_melody"),
    "acoustic_guitar_steel": ("strum", "arpeggio", "broken_chords", "corpus_melody"),
    "electric_guitar_clean": ("strum", "offbeat_chords", "arpeggio", "lead", "corpus_melody"),
    "electric_guitar_distorted": ("power_chords", "lead", "corpus_melody"),
    "upright_bass": ("bass_line", "corpus_melody"),
    "electric_bass": ("bass_line", "corpus_melody"),
    "synth_bass": ("bass_line",),
    "violin": ("corpus_melody", "lead"),
    "viola": ("corpus_melody", "lead"),
    "cello": ("corpus_melody", "lead"),
    "contrabass": ("corpus_melody", "bass_line"),
    "string_ensemble": ("corpus_texture", "pad"),
    "harp": ("arpeggio", "broken_chords", "corpus_texture"),
    "choir": ("corpus_texture", "pad"),
    "trumpet": ("corpus_melody", "lead"),
    "trombone": ("corpus_melody", "lead"),
    "tuba": ("corpus_melody", "bass_line"),
    "french_horn": ("corpus_melody", "lead"),
    "brass_section": ("corpus_texture", "block_chords", "pad"),
    "saxophone": ("corpus_melody", "lead"),
    "oboe": ("corpus_melody", "lead"),
    "bassoon": ("corpus_melody", "lead"),
    "clarinet": ("corpus_melody", "lead"),
    "flute": ("corpus_melody", "lead"),
    "synth_lead": ("lead", "arpeggio", "corpus_melody"),
    "synth_pad": ("pad", "corpus_texture"),
}
# GM drum kits (GS numbering): standard, room, power, electronic, TR-808, jazz, brush,
# orchestra. Banks without one use standard.
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40, 48)
# The orchestra kit has timpani on the tom, hi-hat and most cymbal keys: only its bass drums and
# snares play their classes.
_KIT_CLASSES = {48: ("kick", "snare")}
# music21 corpus composers (folders) whose scores supply corpus parts.
CORPUS_POOLS = {
    "chorale": ("bach",),
    "polyphony": ("palestrina",),
    "quartet": ("haydn", "mozart", "schumann_robert"),
    "tune": ("ryansMammoth",),
}
ARTICULATIONS = {"legato": 0.98, "normal": 0.85, "staccato": 0.45}
DYNAMICS = {"pp": 40, "p": 55, "mf": 75, "f": 95, "ff": 112}
# Families whose players shape sustained notes (expression swells, vibrato).
_SUSTAINING = frozenset({"strings", "brass", "woodwinds", "voice", "synth", "keys"})
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Chord progressions as scale degrees (0 = tonic), one chord a bar.
_PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 3), (1, 4, 0, 0), (5, 3, 0, 4), (0, 4, 5, 3),
                 (0, 0, 3, 4), (0, 3, 0, 4), (5, 1, 4, 0))


def make_material(class_name: str, rng: np.random.Generator, seconds: float,
                  sounds: Sounds | None = None) -> Material:
  """The notes one clip of `class_name` plays over `seconds`, with the class's GM programs or
  drum keys (those of them a bank has, where its `sounds` are given)."""
  info = _playable(class_name, sounds)
  if info.is_drum:
    return _drum_material(info, rng, seconds)
  style = str(rng.choice(STYLES[class_name]))
  program = int(rng.choice(info.gm_programs))
  articulation = str(rng.choice(list(ARTICULATIONS)))
  if style in ("pad", "corpus_texture") or info.family == "voice":
    articulation = "legato"  # sustained textures are not played detached
  dynamic = str(rng.choice(list(DYNAMICS)))
  ctx = _context(info, rng, seconds, style, articulation, DYNAMICS[dynamic])
  if style.startswith("corpus_"):
    notes, description = _corpus_part(ctx, texture=style == "corpus_texture")
  else:
    notes, description = _GENERATORS[style](ctx), f"generated {style}"
  controls = _expression(ctx, info, style)
  return Material(notes=_humanise(notes, rng, seconds, 0.008), controls=controls, program=program,
                  is_drum=False, description=description, tempo_bpm=round(ctx.tempo, 1),
                  articulation=articulation, velocity=DYNAMICS[dynamic])


def make_one_shot(class_name: str, rng: np.random.Generator,
                  sounds: Sounds | None = None) -> Material:
  """One note or one drum hit of `class_name`, as a sample library's one-shot: a pitch in the
  class's (and the source's) range or one of its drum keys, at a random dynamic, held for a
  random time (drums: the hit rings out)."""
  info = _playable(class_name, sounds)
  velocity = int(rng.integers(30, 128))
  if info.is_drum:
    pitch, hold = int(rng.choice(info.gm_drum_notes)), 0.1
    program = int(rng.choice(_kits(info)))
  else:
    lo, hi = info.pitch_range
    pitch, program = int(rng.integers(lo, hi + 1)), int(rng.choice(info.gm_programs))
    hold = float(np.exp(rng.uniform(np.log(0.15), np.log(3.0))))
  return Material(notes=(Note(pitch, 0.0, hold, velocity),), controls=(), program=program,
                  is_drum=info.is_drum, description=f"one-shot {pitch}", tempo_bpm=0.0,
                  articulation="normal", velocity=velocity)


def _playable(class_name: str, sounds: Sounds | None) -> InstrumentClass:
  """The class, its GM programs, drum keys and pitch range narrowed to what `sounds` has."""
  info = class_info(class_name)
  if sounds is None:
    return info
  info = dataclasses.replace(
      info, gm_programs=tuple(p for p in info.gm_programs if p in sounds.programs),
      gm_drum_notes=tuple(n for n in info.gm_drum_notes if n in sounds.drum_notes))
  if not (info.gm_drum_notes if info.is_drum else info.gm_programs):
    raise ValueError(f"the bank has none of the GM sounds of {class_name}")
  if sounds.pitch_range is not None and not info.is_drum:  # sampled over part of the keys
    lo = max(info.pitch_range[0], sounds.pitch_range[0])
    hi = min(info.pitch_range[1], sounds.pitch_range[1])
    if lo > hi:
      raise ValueError(f"the source plays no note in the range of {class_name}")
    info = dataclasses.replace(info, pitch_range=(lo, hi))
  return info


# --- harmonic context -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Context:
  rng: np.random.Generator
  seconds: float
  tempo: float
  meter: int  # beats a bar
  scale: tuple[int, ...]  # pitch classes of the key
  chords: tuple[tuple[int, ...], ...]  # pitch classes, one chord a bar
  lo: int
  hi: int
  velocity: int
  length_ratio: float  # sounding fraction of each note's time

  @property
  def beat(self) -> float:
    return 60.0 / self.tempo

  @property
  def bar(self) -> float:
    return self.meter * self.beat

  def vel(self, accent: float = 0.0) -> int:
    return int(np.clip(round(self.velocity + accent + self.rng.normal(0, 6)), 1, 127))


def _context(info: InstrumentClass, rng, seconds, style, articulation, velocity) -> _Context:
  slow = style in ("pad", "corpus_texture", "corpus_melody")
  tempo = float(rng.uniform(60, 110) if slow else rng.uniform(70, 150))
  meter = int(rng.choice((3, 4), p=(0.2, 0.8)))
  root = int(rng.integers(12))
  scale = tuple((root + s) % 12 for s in (_MAJOR if rng.random() < 0.6 else _MINOR))
  progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
  n_bars = math.ceil(seconds / (meter * 60.0 / tempo)) + 1
  seventh = rng.random() < 0.3
  chords = tuple(_triad(scale, progression[b % len(progression)], seventh) for b in range(n_bars))
  lo, hi = info.pitch_range
  return _Context(rng, seconds, tempo, meter, scale, chords, lo, hi, velocity,
                  ARTICULATIONS[articulation])


def _triad(scale, degree: int, seventh: bool) -> tuple[int, ...]:
  steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
  return tuple(scale[(degree + s) % 7] for s in steps)


def _nearest(pitch_class: int, target: float) -> int:
  """The pitch of `pitch_class` closest to `target`."""
  base = int(round(target)) - ((int(round(target)) - pitch_class) % 12)
  return base + 12 if target - base > 6 else base


def _fold(pitch: int, lo: int, hi: int) -> int:
  """`pitch` moved by octaves into [lo, hi]."""
  while pitch < lo:
    pitch += 12
  while pitch > hi:
    pitch -= 12
  return max(pitch, lo)


def _voicing(chord, centre: float, lo: int, hi: int) -> list[int]:
  """A close voicing of `chord` around `centre`, inside the range."""
  return sorted({_fold(_nearest(pc, centre), lo, hi) for pc in chord})


def _register(ctx: _Context, low: float, high: float) -> float:
  """A random centre pitch between fractions `low` and `high` of the range."""
  return ctx.lo + (ctx.hi - ctx.lo) * float(ctx.rng.uniform(low, high))


def _note(ctx: _Context, pitch: int, start: float, length: float, accent: float = 0.0) -> Note:
  return Note(_fold(int(pitch), ctx.lo, ctx.hi), start, start + length * ctx.length_ratio,
              ctx.vel(accent))


def _bars(ctx: _Context):
  """(bar start in seconds, chord) for every bar that starts inside the clip."""
  for b, chord in enumerate(ctx.chords):
    if b * ctx.bar < ctx.seconds:
      yield b * ctx.bar, chord


# --- generated parts --------------------------------------------------------------------


def _bass_line(ctx: _Context) -> list[Note]:
  kind = str(ctx.rng.choice(("roots", "root_fifth", "walking", "eighths", "syncopated")))
  anchor = _register(ctx, 0.1, 0.35)
  notes = []
  for t0, chord in _bars(ctx):
    root = _nearest(chord[0], anchor)
    tones = [root, root + 7, root + 12, _nearest(chord[1], root + 4)]
    if kind == "syncopated":
      mask = ctx.rng.random(4 * ctx.meter) < 0.4
      mask[0] = True
      for step in np.flatnonzero(mask):
        pitch = tones[0] if ctx.rng.random() < 0.6 else tones[ctx.rng.integers(4)]
        notes.append(_note(ctx, pitch, t0 + step * ctx.beat / 4, ctx.beat / 4, 10 * (step == 0)))
    elif kind == "eighths":
      for step in range(2 * ctx.meter):
        pitch = root + 12 * (ctx.rng.random() < 0.15)
        accent = 10 * (step % 2 == 0)
        notes.append(_note(ctx, pitch, t0 + step * ctx.beat / 2, ctx.beat / 2, accent))
    else:
      for beat in range(ctx.meter):
        if kind == "roots":
          pitch = root
        elif kind == "root_fifth":
          pitch = tones[beat % 2]
        else:  # walking: chord tones, then a chromatic approach to the next bar's root
          pitch = (root if beat == 0 else tones[ctx.rng.integers(1, 4)] if beat < ctx.meter - 1
                   else root + int(ctx.rng.choice((-1, 1, 5))))
        notes.append(_note(ctx, pitch, t0 + beat * ctx.beat, ctx.beat, 10 * (beat == 0)))
  return notes


def _block_chords(ctx: _Context) -> list[Note]:
  centre = _register(ctx, 0.3, 0.6)
  per_bar = int(ctx.rng.choice((1, 2, ctx.meter)))
  notes = []
  for t0, chord in _bars(ctx):
    for hit in range(per_bar):
      start = t0 + hit * ctx.bar / per_bar
      notes += [_note(ctx, p, start, ctx.bar / per_bar, 8 * (hit == 0))
                for p in _voicing(chord, centre, ctx.lo, ctx.hi)]
  return notes


def _offbeat_chords(ctx: _Context) -> list[Note]:
  centre = _register(ctx, 0.35, 0.65)
  notes = []
  for t0, chord in _bars(ctx):
    for beat in range(ctx.meter):
      start = t0 + (beat + 0.5) * ctx.beat
      notes += [_note(ctx, p, start, ctx.beat / 2, 6)
                for p in _voicing(chord, centre, ctx.lo, ctx.hi)]
  return notes


def _broken_chords(ctx: _Context) -> list[Note]:
  centre = _register(ctx, 0.25, 0.55)
  order = (0, 2, 1, 2)  # low, high, middle, high (Alberti)
  notes = []
  for t0, chord in _bars(ctx):
    voicing = _voicing(chord, centre, ctx.lo, ctx.hi)
    for step in range(2 * ctx.meter):
      pitch = voicing[order[step % 4] % len(voicing)]
      notes.append(_note(ctx, pitch, t0 + step * ctx.beat / 2, ctx.beat / 2, 8 * (step == 0)))
  return notes


def _arpeggio(ctx: _Context) -> list[Note]:
  division = int(ctx.rng.choice((2, 3, 4)))  # eighths, triplets, sixteenths
  span = int(ctx.rng.choice((1, 2)))  # octaves
  base = _register(ctx, 0.2, 0.5)
  notes = []
  for t0, chord in _bars(ctx):
    tones = sorted(_nearest(pc, base) + 12 * o for o in range(span) for pc in chord)
    cycle = tones + tones[-2:0:-1] if ctx.rng.random() < 0.5 else tones
    for step in range(division * ctx.meter):
      notes.append(_note(ctx, cycle[step % len(cycle)], t0 + step * ctx.beat / division,
                         ctx.beat / division, 8 * (step == 0)))
  return notes


def _strum(ctx: _Context) -> list[Note]:
  """Guitar strums: strings sound a few milliseconds apart, down and up strokes."""
  centre = _register(ctx, 0.2, 0.45)
  pattern = ctx.rng.random(2 * ctx.meter) < 0.7
  pattern[0] = True
  notes = []
  for t0, chord in _bars(ctx):
    voicing = _voicing(chord, centre, ctx.lo, ctx.hi)
    voicing = sorted(set(voicing + [_fold(voicing[0] + 12, ctx.lo, ctx.hi), voicing[0] - 12]))
    voicing = [p for p in voicing if ctx.lo <= p <= ctx.hi]
    for step in np.flatnonzero(pattern):
      strings = voicing if step % 2 == 0 else voicing[::-1][:3]  # up strokes hit the top strings
      spread = float(ctx.rng.uniform(0.006, 0.02))
      for k, pitch in enumerate(strings):
        start = t0 + step * ctx.beat / 2 + k * spread
        notes.append(_note(ctx, pitch, start, ctx.beat / 2, 10 if step % 2 == 0 else -5))
  return notes


def _power_chords(ctx: _Context) -> list[Note]:
  """Root, fifth and octave: held, or chugged in eighths (palm-muted)."""
  anchor = _register(ctx, 0.0, 0.25)
  chug = ctx.rng.random() < 0.6
  notes = []
  for t0, chord in _bars(ctx):
    root = _nearest(chord[0], anchor)
    hits = ([(s * ctx.beat / 2, ctx.beat / 2) for s in range(2 * ctx.meter)] if chug
            else [(0, ctx.bar)])
    for offset, length in hits:
      notes += [_note(ctx, p, t0 + offset, length * (0.6 if chug else 1.0), 10 * (offset == 0))
                for p in (root, root + 7, root + 12)]
  return notes


def _pad(ctx: _Context) -> list[Note]:
  centre = _register(ctx, 0.3, 0.6)
  bars_per_chord = int(ctx.rng.choice((1, 2)))
  notes = []
  for t0, chord in list(_bars(ctx))[::bars_per_chord]:
    notes += [Note(p, t0, t0 + bars_per_chord * ctx.bar, ctx.vel())
              for p in _voicing(chord, centre, ctx.lo, ctx.hi)]
  return notes


def _lead(ctx: _Context) -> list[Note]:
  """A melody: a walk over the scale in rhythmic cells, phrases ending on chord tones."""
  cells = ((1.0,), (0.5, 0.5), (1.5, 0.5), (2.0,), (0.25, 0.25, 0.5), (0.75, 0.25))
  centre = _register(ctx, 0.3, 0.7)
  scale_pitches = [p for p in range(ctx.lo, ctx.hi + 1) if p % 12 in ctx.scale]
  position = int(np.argmin([abs(p - centre) for p in scale_pitches]))
  notes, t = [], 0.0
  while t < ctx.seconds:
    for length in cells[ctx.rng.integers(len(cells))]:
      chord = ctx.chords[min(int(t / ctx.bar), len(ctx.chords) - 1)]
      step = int(ctx.rng.choice((-2, -1, -1, 0, 1, 1, 2, 3, -3)))
      position = int(np.clip(position + step, 0, len(scale_pitches) - 1))
      pitch = scale_pitches[position]
      on_beat = abs(t / ctx.beat - round(t / ctx.beat)) < 1e-6
      if on_beat and pitch % 12 not in chord and ctx.rng.random() < 0.5:
        pitch = _fold(_nearest(chord[0], pitch), ctx.lo, ctx.hi)
      notes.append(_note(ctx, pitch, t, length * ctx.beat, 8 * on_beat))
      t += length * ctx.beat
    if ctx.rng.random() < 0.2:  # breathe between phrases
      t += ctx.beat
  return notes


_GENERATORS = {
    "bass_line": _bass_line, "block_chords": _block_chords, "offbeat_chords": _offbeat_chords,
    "broken_chords": _broken_chords, "arpeggio": _arpeggio, "strum": _strum,
    "power_chords": _power_chords, "pad": _pad, "lead": _lead,
}


def _expression(ctx: _Context, info: InstrumentClass, style: str) -> tuple[Control, ...]:
  """Vibrato depth (CC1) and slow expression swells (CC11) for sustaining instruments."""
  if info.family not in _SUSTAINING or style in ("strum", "power_chords", "broken_chords"):
    return ()
  controls = [Control(0.0, 1, int(ctx.rng.integers(0, 64)))]
  if style in ("pad", "corpus_texture", "corpus_melody", "lead") and ctx.rng.random() < 0.7:
    period = float(ctx.rng.uniform(2.0, 8.0))
    phase = float(ctx.rng.uniform(0, 2 * np.pi))
    for t in np.arange(0.0, ctx.seconds, 0.05):
      swell = 0.5 + 0.5 * np.sin(2 * np.pi * t / period + phase)
      controls.append(Control(float(t), 11, int(round(127 * (0.55 + 0.45 * swell)))))
  return tuple(controls)


def _humanise(notes, rng, seconds: float, jitter_s: float) -> tuple[Note, ...]:
  """Onsets moved by a few milliseconds; notes starting after the clip dropped; sorted."""
  out = []
  for n in notes:
    shift = float(rng.normal(0, jitter_s))
    start = max(0.0, n.start + shift)
    if start < seconds - 0.05:
      out.append(Note(int(n.pitch), start, max(start + 0.02, n.end + shift), int(n.velocity)))
  return tuple(sorted(out, key=lambda n: (n.start, n.pitch)))


# --- corpus parts -----------------------------------------------------------------------


def _corpus_part(ctx: _Context, texture: bool) -> tuple[list[Note], str]:
  """A random excerpt of a real score: one part, or all parts together (`texture`)."""
  pools = ("chorale", "polyphony") if texture else tuple(CORPUS_POOLS)
  for _ in range(8):  # a few scores in the corpus have no usable parts; draw another
    works = corpus_works(str(ctx.rng.choice(pools)))
    work = works[ctx.rng.integers(len(works))]
    parts = corpus_parts(work)
    if parts:
      break
  else:
    raise RuntimeError("no usable score found in the music21 corpus")
  if texture:
    chosen, name = [e for _, events in parts for e in events], "all parts"
  else:
    name, chosen = parts[ctx.rng.integers(len(parts))]
  events = sorted(chosen)
  quarters = ctx.seconds / ctx.beat
  length = max(offset + dur for offset, dur, _ in events)
  onsets = sorted({offset for offset, _, _ in events})
  candidates = [o for o in onsets if o <= length - quarters] or onsets[:1]
  start = float(candidates[ctx.rng.integers(len(candidates))])
  shift = int(ctx.rng.integers(-5, 7))
  excerpt, loop = [], 0.0
  while not excerpt or loop * length < quarters + start:  # loop scores shorter than the clip
    excerpt += [(o + loop * length - start, d, p) for o, d, p in events
                if 0 <= o + loop * length - start < quarters]
    loop += 1
  pitches = [p for _, _, chord in excerpt for p in chord]
  target = _register(ctx, 0.3, 0.6)
  octave = 12 * round((target - (np.median(pitches) + shift)) / 12)
  notes = []
  for offset, dur, chord in excerpt:
    accent = 8 if abs(offset % ctx.meter) < 1e-6 else 0
    for p in chord:
      notes.append(_note(ctx, p + shift + octave, offset * ctx.beat, dur * ctx.beat, accent))
  unique = {(n.pitch, round(n.start, 4)): n for n in notes}  # voices in unison sound once
  return list(unique.values()), f"corpus {work}: {name}"


@functools.lru_cache(maxsize=None)
def corpus_works(pool: str) -> tuple[str, ...]:
  """Paths (relative to the music21 corpus) of the scores in a pool, sorted."""
  from music21 import corpus  # imported here: it takes a moment and only corpus styles need it
  paths = []
  for composer in CORPUS_POOLS[pool]:
    for path in corpus.getComposer(composer):
      parts = str(path).replace("\\", "/").split("/corpus/")
      paths.append(parts[-1])
  return tuple(sorted(paths))


@functools.lru_cache(maxsize=128)
def corpus_parts(work: str) -> tuple[tuple[str, tuple], ...]:
  """`(part name, ((offset, duration, pitches), ...))` for each part of a score, in quarter
  notes; parts with fewer than 8 notes are left out."""
  from music21 import corpus, stream
  try:
    score = corpus.parse(work, forceSource=True)
  except Exception:  # music21 raises many types on the odd corpus file; such a score is skipped
    return ()
  if isinstance(score, stream.Opus):
    score = score.scores[0]
  parts = []
  for i, part in enumerate(score.parts):
    events = _tied_events(part.flatten().notes)
    if len(events) >= 8:
      name = " ".join((part.partName or "").split())  # some names hold line breaks
      parts.append((name or f"part {i + 1}", tuple(events)))
  return tuple(parts)


def _tied_events(notes) -> list[tuple[float, float, tuple[int, ...]]]:
  """`(offset, duration, pitches)` of notes and chords, tied notes joined into one.

  (music21's `stripTies` does this too, but deep-copies the score, which takes longer than
  parsing it.)
  """
  events, open_ties = [], {}
  for n in notes:
    if n.quarterLength <= 0:  # grace notes
      continue
    offset, length = float(n.offset), float(n.quarterLength)
    pitches = tuple(p.midi for p in n.pitches)
    tie = n.tie.type if n.tie is not None else None
    if tie in ("continue", "stop") and pitches in open_ties:
      i = open_ties[pitches]
      events[i] = (events[i][0], offset + length - events[i][0], pitches)
      if tie == "stop":
        del open_ties[pitches]
      continue
    events.append((offset, length, pitches))
    if tie == "start":
      open_ties[pitches] = len(events) - 1
  return events


# --- drums ------------------------------------------------------------------------------

_KICK = ("x...x...x...x...", "x.......x.x.....", "x..x..x...x.....", "x.....x...x..x..",
         "x.......x.......", "x.x...x.x.x...x.")
_SNARE = ("....x.......x...", "........x.......", "....x..x....x...", "....x.......x..x")
_HIHAT = ("x.x.x.x.x.x.x.x.", "xxxxxxxxxxxxxxxx", "..x...x...x...x.", "x.xxx.xxx.xxx.xx")


def _drum_material(info: InstrumentClass, rng, seconds: float) -> Material:
  tempo = float(rng.uniform(70, 160))
  dynamic = str(rng.choice(list(DYNAMICS)))
  step = 60.0 / tempo / 4  # sixteenth notes
  n_bars = math.ceil(seconds / (16 * step))
  velocity = DYNAMICS[dynamic]
  hits, description = _DRUM_PATTERNS[info.name](info, rng, n_bars, velocity)
  notes = [Note(p, s * step, s * step + ring, v) for s, p, v, ring in hits]
  return Material(notes=_humanise(notes, rng, seconds, 0.004), controls=(),
                  program=int(rng.choice(_kits(info))), is_drum=True, description=description,
                  tempo_bpm=round(tempo, 1), articulation="normal", velocity=velocity)


# A whole kit on one track plays these pieces, each with this probability (where the source has
# it), each piece its own pattern above at one tempo.
KIT_PIECES = {"kick": 1.0, "snare": 1.0, "hihat": 0.9, "cymbals": 0.6, "toms": 0.4}
_KIT_BALANCE = 10  # each piece's dynamic is the kit's within ± this (a drummer's balance)


def make_kit_material(rng: np.random.Generator, seconds: float,
                      sounds: Sounds | None = None) -> Material:
  """A whole drum kit playing together over `seconds`, as on a drum loop, overheads or a drum
  bus: the patterns of each drum class above (`KIT_PIECES`), of the pieces `sounds` has, at one
  tempo and dynamic, on a GM kit that plays them all (not the orchestra kit). A kit with
  neither kick nor snare cannot play one: a ValueError."""
  tempo = float(rng.uniform(70, 160))
  dynamic = str(rng.choice(list(DYNAMICS)))
  step = 60.0 / tempo / 4  # sixteenth notes
  n_bars = math.ceil(seconds / (16 * step))
  hits, played = [], []
  for piece, probability in KIT_PIECES.items():
    if rng.random() >= probability:
      continue
    try:
      info = _playable(piece, sounds)
    except ValueError:  # the kit has no such piece
      continue
    velocity = int(np.clip(DYNAMICS[dynamic] + rng.integers(-_KIT_BALANCE, _KIT_BALANCE + 1),
                           1, 127))
    piece_hits, description = _DRUM_PATTERNS[piece](info, rng, n_bars, velocity)
    hits += piece_hits
    played.append((piece, description.removeprefix("generated ")))
  if not {"kick", "snare"} & {piece for piece, _ in played}:
    raise ValueError("the kit has neither a kick nor a snare to play a kit track with")
  notes = [Note(p, s * step, s * step + ring, v) for s, p, v, ring in hits]
  kits = [k for k in DRUM_KITS if k not in _KIT_CLASSES]
  return Material(notes=_humanise(notes, rng, seconds, 0.004), controls=(),
                  program=int(rng.choice(kits)), is_drum=True,
                  description="drum kit: " + "; ".join(d for _, d in played),
                  tempo_bpm=round(tempo, 1),
                  articulation="normal", velocity=DYNAMICS[dynamic])


def _kits(info: InstrumentClass) -> list[int]:
  """The GM drum kits that play the class with a sound of its own."""
  return [k for k in DRUM_KITS if info.name in _KIT_CLASSES.get(k, (info.name,))]


def _velocity(rng, base: int, accent: float = 0.0) -> int:
  return int(np.clip(round(base + accent + rng.normal(0, 7)), 1, 127))


def _grid(pattern: str, rng, n_bars: int, change: float = 0.08):
  """Steps (sixteenths from the start) where `pattern` hits, with a few random changes a bar."""
  for bar in range(n_bars):
    flips = rng.random(16) < change
    for i, c in enumerate(pattern):
      if (c == "x") != (flips[i] and i % 4 != 0):  # downbeats keep their pattern
        yield bar * 16 + i


def _kick(info, rng, n_bars, v):
  note = int(rng.choice(info.gm_drum_notes))
  pattern = _KICK[rng.integers(len(_KICK))]
  hits = [(s, note, _velocity(rng, v, 12 * (s % 16 == 0)), 0.3)
          for s in _grid(pattern, rng, n_bars)]
  return hits, f"generated kick pattern {pattern}"


def _snare(info, rng, n_bars, v):
  note = int(rng.choice(info.gm_drum_notes))
  pattern = _SNARE[rng.integers(len(_SNARE))]
  hits = [(s, note, _velocity(rng, v, 15), 0.3) for s in _grid(pattern, rng, n_bars, change=0.0)]
  ghosts = rng.random(16 * n_bars) < 0.15  # quiet ghost notes between the backbeats
  hits += [(int(s), note, _velocity(rng, 30), 0.2) for s in np.flatnonzero(ghosts)
           if pattern[s % 16] != "x"]
  if rng.random() < 0.5:  # a fill of sixteenths, getting louder, in the last bar
    last = 16 * (n_bars - 1)
    hits += [(last + 8 + i, note, _velocity(rng, v, -20 + 4 * i), 0.2) for i in range(8)]
  return sorted(set(hits)), f"generated snare pattern {pattern}"


def _hihat(info, rng, n_bars, v):
  """Closed hats in a pattern, opened now and then, with pedal hits: of the hats the source has
  (a kit with one hat plays it for all three)."""
  keys = set(info.gm_drum_notes)
  closed = next(k for k in (42, 44, 46) if k in keys)
  pedal, opened = (k if k in keys else closed for k in (44, 46))
  pattern = _HIHAT[rng.integers(len(_HIHAT))]
  open_every = int(rng.choice((0, 1, 2)))  # open the hat on the last off-beat of every nth bar
  hits = []
  for s in _grid(pattern, rng, n_bars):
    note = opened if open_every and s % (16 * open_every) == 14 else closed
    hits.append((s, note, _velocity(rng, v, 12 * (s % 4 == 0) - 6 * (s % 2 == 1)), 0.15))
  if rng.random() < 0.4 and 44 in keys:
    hits += [(bar * 16 + b, pedal, _velocity(rng, v - 10), 0.1)
             for bar in range(n_bars) for b in (4, 12)]
  return sorted(hits), f"generated hi-hat pattern {pattern}"


def _toms(info, rng, n_bars, v):
  size = min(int(rng.integers(2, 5)), len(info.gm_drum_notes))
  toms = sorted(rng.choice(info.gm_drum_notes, size=size, replace=False))[::-1]
  hits = []
  if rng.random() < 0.5:  # a groove on the low toms
    mask = rng.random(16) < 0.45
    mask[0] = True
    floor = int(toms[-1])
    rack = int(toms[-2]) if len(toms) > 1 else floor
    hits += [(bar * 16 + i, rack if i % 3 == 2 else floor,
              _velocity(rng, v, 10 * (i % 4 == 0)), 0.5)
             for bar in range(n_bars) for i in np.flatnonzero(mask)]
  fill_every = int(rng.choice((1, 2)))
  for bar in range(fill_every - 1, n_bars, fill_every):  # fills down the toms, high to low
    length = int(rng.choice((4, 8, 16)))
    start = bar * 16 + 16 - length
    hits += [(start + i, int(toms[i * len(toms) // length]), _velocity(rng, v, 5), 0.5)
             for i in range(length)]
  return sorted(set(hits)), f"generated tom fills on {' '.join(str(int(t)) for t in toms)}"


def _cymbals(info, rng, n_bars, v):
  """A ride pattern (with the bell), crashes with china and splash accents, or both: of the
  cymbals the source has (a kit without a ride plays crashes, one without crashes a ride)."""
  keys = set(info.gm_drum_notes)
  crashes = tuple(k for k in (49, 57) if k in keys) or tuple(sorted(keys))
  rides = tuple(k for k in (51, 59) if k in keys) or tuple(sorted(keys))
  crash = int(rng.choice(crashes))
  ride = int(rng.choice(rides))
  modes = ("ride", "crashes", "mixed")
  if not keys & {49, 57, 52, 55}:
    modes = ("ride",)
  elif not keys & {51, 59, 53}:
    modes = ("crashes",)
  mode = str(rng.choice(modes))
  bell = 53 if 53 in keys else ride
  accent_keys = tuple(k for k in (52, 55) if k in keys) + (crash,)
  hits = []
  if mode in ("ride", "mixed"):
    every = int(rng.choice((2, 4)))
    for bar in range(n_bars):
      for i in range(0, 16, every):
        note = bell if i % 8 == 4 and rng.random() < 0.3 else ride  # the bell, now and then
        hits.append((bar * 16 + i, note, _velocity(rng, v, 8 * (i % 4 == 0)), 1.5))
  if mode in ("crashes", "mixed"):
    for bar in range(0, n_bars, int(rng.choice((1, 2)))):
      hits.append((bar * 16, crash, _velocity(rng, v, 15), 3.0))
    accents = rng.random(16 * n_bars) < 0.05
    hits += [(int(s), int(rng.choice(accent_keys)), _velocity(rng, v, 5), 2.0)
             for s in np.flatnonzero(accents)]
  return sorted(set(hits)), f"generated cymbals ({mode})"


_DRUM_PATTERNS = {"kick": _kick, "snare": _snare, "hihat": _hihat, "toms": _toms,
                  "cymbals": _cymbals}
