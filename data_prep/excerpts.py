"""Real recordings longer than a note: voices, instrument tracks, drum loops, sustained notes.

The sampler and the drum kits (DESIGN.md §3) play single recorded notes and hits. Six Debian
packages, fetched by `data_prep.fetch` (its group `excerpts`), hold what those cannot make:
people speaking and singing, the guitar track of whole songs, drum loops, and long notes of a
choir, a string section, a viola and a pipe organ. This module lists the recordings that are
used and draws clips from them.

`catalogue()` holds one `Recording` a file:

    path         the file
    source       the `data_prep.fetch` source it comes from (its licence and credit:
                 `fetch.attributions`)
    identity     who or what is recorded: a speaker (or a set of speakers who cannot be told
                 apart from the files), a singer, an instrument, an organ stop, a drum kit. A
                 leave-one-source-out evaluation holds an identity out whole.
    class_name   what it plays, as a jaxeq class name; `vocals` and `drum_kit` are not in
                 jaxeq.classes yet, so nothing here checks a name against it
    kind         "excerpt": a window of it is a clip; "utterance": a short line, letter or
                 syllable, several of which `clip` strings into one; "loop": a drum loop,
                 repeated to fill a clip; "one_shot": a drum hit, played from its onset
    native_rate  the file's sample rate: a recording at 22.05 kHz has nothing above 11 kHz, so
                 it may train a classifier but must not build a target's top octave
    seconds      its length

A file's rate is not always its band: some 44.1 kHz files hold a recording made narrower
(klettres' Spanish letters end near 7.6 kHz). `bandwidth_hz(recordings)` measures where their
long-term spectrum ends, for choosing the sources of a target's top octave.

`excerpt(recording, seconds, rng)` draws a clip from one recording, `clip(recordings, seconds,
rng)` from a set (one identity's, say): both mono float32 at `SAMPLE_RATE`, exactly `seconds`
long, deterministic given `rng`. A window is drawn among those whose RMS is within `WITHIN_DB`
of the file's loudest window, so a clip is not the silence between two lines. `LEFT_OUT` says
which recordings of the packages are not used, and why. `python -m data_prep.excerpts` prints
the catalogue's files, minutes and identities by class.
"""

from __future__ import annotations

import collections
import functools
import math
import re
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from data_prep import fetch
from data_prep.sampler import trim
from data_prep.sound_source import SAMPLE_RATE
from data_prep.synth import SetupError

SOURCES = fetch.GROUPS["excerpts"]
KINDS = ("excerpt", "utterance", "loop", "one_shot")
WITHIN_DB = 30.0  # a window's RMS is at most this far below the file's loudest window
TRIM_DB = 40.0  # an utterance starts and ends at its first and last frame within this of its peak
PAUSE_S = (0.15, 0.6)  # between two utterances strung into one clip, drawn uniformly
_FRAME_S = 0.01  # the level envelope's frame
_EDGE_S = 0.02  # kept before and after an utterance's first and last loud frame
_RESAMPLE_PAD = 256  # input samples read beyond a window, so soxr's filter does not see the cut
_WELCH = 4096  # bandwidth_hz's spectrum segment (10.8 Hz bins)


class Recording(NamedTuple):
  path: Path
  source: str
  identity: str
  class_name: str
  kind: str
  native_rate: int
  seconds: float


# Fish Fillets NG: every line of the original cast is named LEVEL-SPEAKER-LINE, where the
# speaker is m (the small fish) or v (the big fish) or a code of another character; these levels
# came later, recorded by others at 44.1 kHz (the original cast's are 22.05 kHz).
_FILLETS_ADDED_LEVELS = frozenset({"fdto", "hanoi", "hole", "keys", "linux", "nowall", "rush"})
_FILLETS_FISH = {"m": "small_fish", "v": "big_fish"}

# csoundqt-examples' SourceMaterials: file → (identity, class, kind). Its other files are
# impulse responses, single cycles, effects and sounds no class holds (see LEFT_OUT).
_CSOUNDQT = {
    "AndItsAll.wav": ("sung_phrase", "vocals", "excerpt"),  # a singer's phrase, around F#4
    "fox.wav": ("quick_brown_fox", "vocals", "utterance"),  # a low voice saying a sentence
    "choir.wav": ("choir", "choir", "excerpt"),  # a choir holding C4
    "violins.wav": ("violins", "string_ensemble", "excerpt"),  # violins holding C4
    "BratscheMono.wav": ("viola", "viola", "excerpt"),  # a viola (Bratsche) holding A3
    "flute.wav": ("flute", "flute", "excerpt"),  # a flute holding C5
    "BassGuitarC.wav": ("bass_guitar", "electric_bass", "excerpt"),  # a bass guitar's C2
    # Two recordings of a classical guitar around D3, likely one player's: one identity.
    "ClassicalGuitar.wav": ("classical_guitar", "acoustic_guitar_nylon", "excerpt"),
    "ClassGuit.wav": ("classical_guitar", "acoustic_guitar_nylon", "excerpt"),
    "SynthPad.wav": ("synth_pad", "synth_pad", "excerpt"),
    "808loop.wav": ("808_loop", "drum_kit", "loop"),  # a TR-808 beat: kick, snare, hats
    "loop.wav": ("drum_loop", "drum_kit", "loop"),  # a drum loop: kick, snare, hats
}
# chuck-data's drum hits: two sets of kick, snare and hi-hat samples, each its own kit.
_CHUCK_KITS = {"data": "data_kit", "book/digital-artists/audio": "book_kit"}
_CHUCK_HIT = re.compile(r"^(kick|snare|hihat)[-_a-z0-9]*\.wav$")

LEFT_OUT = {
    "chuck-data: special/geetar.wav": "a guitar whose kind (nylon, steel, electric) its "
                                      "spectrum does not tell",
    "chuck-data: clap, click, cowbell, stereo_fx, twilight-granular": "no class",
    "chuck-data: book/digital-artists/chapter*/audio": "copies of book/digital-artists/audio",
    "csoundqt-examples: 808loopMono.wav": "808loop.wav in mono",
    "csoundqt-examples: wave.wav": "fox.wav, processed",
    "csoundqt-examples: sample.wav, Songpan.wav, MFEM.wav": "not identified",
    "csoundqt-examples: the other files": "impulse responses, single cycles, effects, noise, a "
                                          "bell, a synthesised buzz",
    "fretsonfire-muldjord: */song.ogg": "a band's mix without its guitar: no one class",
    "grandorgue-demo: Sounds/ in the .orgue": "stop-action noise and the blower (not decoded)",
}


def catalogue(sources: Iterable[str] = SOURCES, root: Path | None = None
              ) -> tuple[Recording, ...]:
  """The recordings of the fetched `sources` (of `SOURCES`), in a fixed order; a
  `SetupError` naming what to fetch where one is missing."""
  sources = tuple(sources)
  unknown = [s for s in sources if s not in _LISTERS]
  if unknown:
    raise SetupError(f"no excerpts are read from {unknown[0]!r}: expected one of "
                     f"{', '.join(SOURCES)}")
  return _catalogue(sources, None if root is None else str(root))


@functools.lru_cache(maxsize=8)
def _catalogue(sources: tuple[str, ...], root: str | None) -> tuple[Recording, ...]:
  out = []
  for source in sources:
    folder = fetch.source_dir(source, None if root is None else Path(root))
    for path, identity, class_name, kind in _LISTERS[source](folder):
      info = _info(path)
      out.append(Recording(path, source, f"{source}/{identity}", class_name, kind,
                           info.samplerate, info.frames / info.samplerate))
  return tuple(out)


def by_identity(recordings: Iterable[Recording]) -> dict[str, tuple[Recording, ...]]:
  """The recordings of each identity, identities in order of first appearance."""
  groups = collections.defaultdict(list)
  for recording in recordings:
    groups[recording.identity].append(recording)
  return {identity: tuple(group) for identity, group in groups.items()}


def summary(recordings: Iterable[Recording]) -> dict[str, dict]:
  """Per class: files, minutes, identities, and the native sample rates found."""
  out = {}
  for r in recordings:
    row = out.setdefault(r.class_name, {"files": 0, "minutes": 0.0, "identities": set(),
                                        "rates": set()})
    row["files"] += 1
    row["minutes"] += r.seconds / 60
    row["identities"].add(r.identity)
    row["rates"].add(r.native_rate)
  return {name: {**row, "minutes": round(row["minutes"], 1),
                 "identities": sorted(row["identities"]), "rates": sorted(row["rates"])}
          for name, row in sorted(out.items())}


def bandwidth_hz(recordings: Sequence[Recording], files: int = 12,
                 below_db: float = 70.0) -> float:
  """The highest frequency at which the long-term spectrum of `recordings` (at most `files` of
  them, spread evenly over the sequence) is within `below_db` of its peak: where their band
  ends, whatever their sample rate."""
  picked = list(recordings)[::max(1, len(recordings) // files)][:files]
  total = None
  for recording in picked:
    audio = _at_rate(*_read(recording.path))
    if len(audio) >= _WELCH:
      freqs, power = signal.welch(audio, SAMPLE_RATE, nperseg=_WELCH)
      total = power if total is None else total + power
  if total is None or not total.max() > 0:
    raise ValueError(f"no audio long enough to measure a band in {len(picked)} recordings")
  audible = np.flatnonzero(total >= total.max() * 10 ** (-below_db / 10))
  return float(freqs[audible[-1]])


# --- clips --------------------------------------------------------------------------------


def excerpt(recording: Recording, seconds: float, rng: np.random.Generator) -> np.ndarray:
  """A clip of `seconds` from `recording`: mono float32 at `SAMPLE_RATE`.

  An excerpt or utterance longer than the clip gives a window drawn among those within
  `WITHIN_DB` of its loudest; a shorter one is played whole (an utterance without its
  leading and trailing silence), then silence. A loop is repeated from a drawn point; a
  one-shot is played from its onset, then silence.
  """
  n = _length(seconds)
  if recording.kind not in KINDS:
    raise ValueError(f"{recording.path}: unknown kind {recording.kind!r}")
  if recording.kind == "one_shot":
    audio, rate = _read(recording.path)
    return _fit(_at_rate(trim(audio, rate), rate), n)
  if recording.kind == "loop":
    audio = _at_rate(*_read(recording.path))
    return np.resize(np.roll(audio, -int(rng.integers(len(audio)))), n).astype(np.float32)
  power, hop, rate = _envelope(recording.path)
  need = math.ceil(n * rate / SAMPLE_RATE)
  if len(power) * hop <= need:
    return _fit(_utterance(recording.path) if recording.kind == "utterance"
                else _at_rate(*_read(recording.path)), n)
  start = _window_start(power, hop, need, rng)
  pad = _RESAMPLE_PAD if rate != SAMPLE_RATE else 0
  first = max(0, start - pad)
  audio, _ = _read(recording.path, first, need + pad + (start - first))
  skip = int(round((start - first) * SAMPLE_RATE / rate))
  return _fit(_at_rate(audio, rate)[skip:], n)


def clip(recordings: Sequence[Recording], seconds: float,
         rng: np.random.Generator) -> np.ndarray:
  """A clip of `seconds` from `recordings` (those of one identity, say): an `excerpt` of one
  drawn at random, or, where it is an utterance shorter than the clip, utterances of the set
  drawn one after another with pauses of `PAUSE_S` between them, as someone speaking."""
  if not recordings:
    raise ValueError("no recordings to draw a clip from")
  first = recordings[int(rng.integers(len(recordings)))]
  if first.kind != "utterance" or first.seconds >= seconds:
    return excerpt(first, seconds, rng)
  pool = [r for r in recordings if r.kind == "utterance"]
  n = _length(seconds)
  out = np.zeros(n, np.float32)
  at, recording = 0, first
  while at < n:
    voice = _utterance(recording.path)
    take = min(len(voice), n - at)
    out[at:at + take] = voice[:take]
    at += len(voice) + int(round(rng.uniform(*PAUSE_S) * SAMPLE_RATE))
    recording = pool[int(rng.integers(len(pool)))]
  return out


# --- reading ------------------------------------------------------------------------------


def _length(seconds: float) -> int:
  n = int(round(seconds * SAMPLE_RATE))
  if n <= 0:
    raise ValueError(f"clip length {seconds!r} s: expected a positive number")
  return n


def _info(path: Path):
  try:
    info = sf.info(str(path))
  except (sf.LibsndfileError, RuntimeError, OSError) as e:
    raise SetupError(f"{path}: cannot read: {e}") from None
  if info.frames <= 0 or info.samplerate <= 0:
    raise SetupError(f"{path}: holds no audio")
  return info


def _read(path: Path, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
  """`(mono float32 audio, native rate)` of `frames` of the file from `start` (all: -1)."""
  try:
    audio, rate = sf.read(str(path), frames=frames, start=start, dtype="float32",
                          always_2d=True)
  except (sf.LibsndfileError, RuntimeError, OSError) as e:
    raise SetupError(f"{path}: cannot read: {e}") from None
  return np.ascontiguousarray(audio.mean(axis=1), np.float32), rate


def _at_rate(audio: np.ndarray, rate: int) -> np.ndarray:
  """`audio` at `SAMPLE_RATE` (soxr HQ, as the sampler resamples)."""
  if rate == SAMPLE_RATE or not len(audio):
    return audio
  return soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
  """`audio` cut or padded with silence to `n` samples, float32."""
  out = np.zeros(n, np.float32)
  out[:min(n, len(audio))] = audio[:n]
  return out


@functools.lru_cache(maxsize=8192)
def _envelope(path: Path) -> tuple[np.ndarray, int, int]:
  """`(power of each _FRAME_S frame, frame length, native rate)` of the file's mono mix."""
  audio, rate = _read(path)
  hop = max(1, int(round(_FRAME_S * rate)))
  frames = max(1, len(audio) // hop)
  audio = np.pad(audio, (0, max(0, frames * hop - len(audio))))
  power = np.mean(audio[:frames * hop].astype(np.float64).reshape(frames, hop) ** 2, axis=1)
  return power, hop, rate


def _window_start(power: np.ndarray, hop: int, need: int, rng: np.random.Generator) -> int:
  """The first sample of a window of `need` samples whose mean power is within `WITHIN_DB` of
  the loudest window's, drawn uniformly among such windows (on the frame grid)."""
  width = max(1, math.ceil(need / hop))
  last = (len(power) * hop - need) // hop  # the last frame a whole window starts at
  sums = np.concatenate([[0.0], np.cumsum(power)])
  mean = (sums[width:] - sums[:-width])[:last + 1] / width
  loud = np.flatnonzero(mean >= mean.max() * 10 ** (-WITHIN_DB / 10))
  return int(loud[int(rng.integers(len(loud)))]) * hop


def _utterance(path: Path) -> np.ndarray:
  """The file at `SAMPLE_RATE` from `_EDGE_S` before its first frame within `TRIM_DB` of its
  loudest to `_EDGE_S` after its last."""
  power, hop, rate = _envelope(path)
  loud = np.flatnonzero(power >= power.max() * 10 ** (-TRIM_DB / 10))
  edge = int(round(_EDGE_S * rate))
  start = max(0, int(loud[0]) * hop - edge)
  stop = (int(loud[-1]) + 1) * hop + edge
  audio, _ = _read(path, start, stop - start)
  return _at_rate(audio, rate)


# --- what each package holds --------------------------------------------------------------


def _fillets(folder: Path):
  """Every line of dialogue: LEVEL/cs/*.ogg (shared jokes: share/KIND/cs/*.ogg)."""
  for path in sorted(folder.rglob("*.ogg")):
    level = path.relative_to(folder).parts[0]
    parts = path.stem.split("-")
    if level in _FILLETS_ADDED_LEVELS:
      identity = "added_levels"
    elif len(parts) >= 3 and parts[1] in _FILLETS_FISH:
      identity = _FILLETS_FISH[parts[1]]
    else:
      identity = "characters"
    yield path, identity, "vocals", "utterance"


def _klettres(folder: Path):
  """Every spoken letter (LANG/alpha) and syllable (LANG/syllab), one identity a language: its
  voices are not named, and a language's letters and syllables may share one."""
  for path in sorted(folder.glob("*/*/*.ogg")):
    language, kind = path.relative_to(folder).parts[:2]
    if kind in ("alpha", "syllab"):
      yield path, language, "vocals", "utterance"


def _csoundqt(folder: Path):
  for name, (identity, class_name, kind) in _CSOUNDQT.items():
    yield folder / name, identity, class_name, kind


def _grandorgue(folder: Path):
  """Every decoded pipe sample: STOP/NNN-NOTE.flac, one identity a stop."""
  for path in sorted(folder.glob("*/*.flac")):
    yield path, path.parent.name, "organ", "excerpt"


def _fretsonfire(folder: Path):
  """The guitar track of each song. The four songs are one band's, played by one guitarist
  (El Senator of Muldjord) with one sound, so they are one identity: holding out a song
  would not hold out the guitar."""
  for path in sorted(folder.glob("*/guitar.ogg")):
    yield path, "guitar", "electric_guitar_distorted", "excerpt"


def _chuck(folder: Path):
  for sub, identity in _CHUCK_KITS.items():
    for path in sorted((folder / sub).glob("*.wav")):
      match = _CHUCK_HIT.match(path.name)
      if match:
        yield path, identity, match.group(1), "one_shot"


_LISTERS = {"fillets-ng-cs": _fillets, "klettres": _klettres, "csoundqt-examples": _csoundqt,
            "grandorgue-demo": _grandorgue, "fretsonfire-muldjord": _fretsonfire,
            "chuck-data": _chuck}


def main() -> None:
  """`python -m data_prep.excerpts`: the catalogue's files, minutes, identities and native
  sample rates by class."""
  recordings = catalogue()
  for name, row in summary(recordings).items():
    print(f"{name:26s} {row['files']:5d} files {row['minutes']:7.1f} min  "
          f"{len(row['identities']):2d} identities  rates {row['rates']}")
    for identity, group in by_identity(r for r in recordings if r.class_name == name).items():
      print(f"    {identity:45s} {len(group):4d} files {sum(r.seconds for r in group) / 60:6.1f} "
            f"min  {sorted({r.native_rate for r in group})}")
  print(f"{len(recordings)} files, {sum(r.seconds for r in recordings) / 60:.1f} min")


if __name__ == "__main__":
  main()
