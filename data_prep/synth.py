"""General-MIDI sample banks, played by FluidSynth (through pyfluidsynth) or TiMidity++.

Banks are found by name: FluidR3_GM (Debian `fluid-soundfont-gm`), MuseScore_General (Debian
`musescore-general-soundfont-small`, a compressed `.sf3`) and TimGM6mb (inside the
`pretty_midi` package), which FluidSynth plays; FreePats (Debian `freepats`, Gravis patches
that TiMidity++ plays: a second synthesizer as well as other samples). A folder named by
`$JAXEQ_SOUNDFONTS` is searched first, for other systems. Reverb and chorus are off: the
tracks are dry, as close-miked recordings are.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
import numpy as np

from data_prep.material import Material, Sounds
from data_prep.sound_source import SAMPLE_RATE
from jaxeq.classes import class_info

BANK_FILES = {"FluidR3_GM": "FluidR3_GM.sf2", "MuseScore_General": "MuseScore_General.sf3",
              "TimGM6mb": "TimGM6mb.sf2", "FreePats": "freepats.cfg"}
_SYSTEM_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts",
                "/usr/local/share/soundfonts", "/opt/homebrew/share/soundfonts",
                "~/.local/share/soundfonts", "/etc/timidity")


_ALL_GM = Sounds(frozenset(range(128)), frozenset(range(128)))
# FreePats (20060219) has patches for these programs and keys only, less those whose samples
# TimGM6mb uses too (`python -m benchmarks.bank_overlap` scores them 0.75 or more): xylophone
# (13), soprano sax (64), oboe (68), English horn (69), pan flute (75), ocarina (79), seashore
# (122), square click (key 32) and high tom (key 50, TimGM6mb's snare). Playing those in
# training would let the models hear the unseen bank.
_FREEPATS = Sounds(
    programs=frozenset({0, 1, 2, 4, 5, 6, 7, 8, 9, 14, 15, 16, 19, 21, 23, 24, 25, 26, 27, 28,
                        29, 30, 32, 33, 34, 35, 36, 37, 38, 40, 42, 44, 45, 46, 47, 48, 53, 56, 57,
                        58, 59, 60, 61, 65, 66, 67, 70, 71, 72, 73, 74, 76, 80, 84, 88, 94, 95, 98,
                        101, 102, 104, 114, 115, 120, 125}),
    drum_notes=frozenset({25, 26, 27, 31, *range(33, 50), *range(51, 83), 84}))
SOUNDS = {"FluidR3_GM": _ALL_GM, "MuseScore_General": _ALL_GM, "TimGM6mb": _ALL_GM,
          "FreePats": _FREEPATS}
_INSTALL_HINT = {
    "FluidR3_GM": "install the Debian/Ubuntu package fluid-soundfont-gm (apt-get install "
                  "fluid-soundfont-gm), or put FluidR3_GM.sf2 in a folder named by "
                  "$JAXEQ_SOUNDFONTS",
    "MuseScore_General": "install the Debian/Ubuntu package musescore-general-soundfont-small "
                         "(apt-get install musescore-general-soundfont-small), or put "
                         "MuseScore_General.sf3 in a folder named by $JAXEQ_SOUNDFONTS",
    "TimGM6mb": "reinstall pretty_midi (pip install -e '.[data]'), which ships it",
    "FreePats": "install the Debian/Ubuntu package freepats (apt-get install timidity "
                "freepats), or put freepats.cfg and the patches it names in a folder named by "
                "$JAXEQ_SOUNDFONTS",
}
# Rendering runs in blocks of this many frames between MIDI events at most.
_BLOCK = 4096


class SetupError(RuntimeError):
  """FluidSynth or a sample bank is missing; the message says what to install."""


def find_bank(name: str) -> Path:
  """The `.sf2` file of bank `name`, or a `SetupError` saying how to get it."""
  if name not in BANK_FILES:
    raise SetupError(f"unknown sample bank {name!r}: expected one of {', '.join(BANK_FILES)}")
  dirs = [d for d in os.environ.get("JAXEQ_SOUNDFONTS", "").split(os.pathsep) if d]
  dirs += list(_SYSTEM_DIRS)
  try:
    import pretty_midi
    dirs.append(os.path.dirname(pretty_midi.__file__))
  except ImportError:
    pass
  for d in dirs:
    path = Path(d).expanduser() / BANK_FILES[name]
    if path.is_file():
      if path.suffix == ".cfg":
        _timidity()  # the bank is of no use without its player
      return path
  raise SetupError(f"sample bank {BANK_FILES[name]} not found: {_INSTALL_HINT[name]}")


def import_fluidsynth():
  """The pyfluidsynth module, or a `SetupError` saying what to install."""
  try:
    import fluidsynth
  except ModuleNotFoundError:
    raise SetupError("pyfluidsynth is not installed: pip install -e '.[data]'") from None
  except ImportError:
    raise SetupError("the FluidSynth library is not installed: apt-get install fluidsynth "
                     "(Debian/Ubuntu) or brew install fluid-synth (macOS)") from None
  return fluidsynth


def plays(bank: str, class_name: str) -> bool:
  """Whether `bank` has samples of its own for some GM program (or drum key) of the class."""
  info = class_info(class_name)
  if info.is_drum:
    return bool(SOUNDS[bank].drum_notes.intersection(info.gm_drum_notes))
  return bool(SOUNDS[bank].programs.intersection(info.gm_programs))


class Renderer:
  """Renders `Material` to audio with FluidSynth, banks loaded on first use (TiMidity++ for
  FreePats).

  Every clip gets a fresh synthesizer (`play_soundfont`). A long-lived synthesizer keeps each
  bank in FluidSynth's sample cache, so loading it again for a clip is quick, and answers which
  presets a bank has.
  """

  def __init__(self):
    self._fluidsynth = import_fluidsynth()
    self._holder = new_synth(self._fluidsynth)
    self._banks: dict[str, tuple[Path, int]] = {}

  def _bank_file(self, bank: str) -> tuple[Path, int]:
    """The bank's file and its SoundFont id in the long-lived synthesizer, found once."""
    if bank not in self._banks:
      path, sfid = find_bank(bank), -1
      if path.suffix != ".cfg":
        sfid = self._holder.sfload(str(path))
        if sfid < 0:
          raise SetupError(f"FluidSynth could not load {path}")
      self._banks[bank] = path, sfid
    return self._banks[bank]

  def render(self, material: Material, bank: str, seconds: float) -> tuple[np.ndarray, int]:
    """`(mono float32 audio of exactly `seconds`, the program or drum kit used)`.

    A drum kit the bank lacks falls back to its standard kit (0).
    """
    sounds = SOUNDS[bank]
    if material.is_drum:
      missing = sorted({n.pitch for n in material.notes} - sounds.drum_notes)
      if missing:
        raise SetupError(f"bank {bank} has no drum key {missing[0]} of its own")
    elif material.program not in sounds.programs:
      raise SetupError(f"bank {bank} has no GM program {material.program} of its own")
    path, sfid = self._bank_file(bank)
    if path.suffix == ".cfg":
      program = 0 if material.is_drum else material.program
      return play_with_timidity(material, path, seconds), program
    bank_number, program = 128 if material.is_drum else 0, material.program
    if self._holder.sfpreset_name(sfid, bank_number, program) is None:
      if not material.is_drum:
        raise SetupError(f"bank {bank} has no GM program {program}")
      program = 0
    return play_soundfont(self._fluidsynth, path, material, seconds, bank_number, program), program


def new_synth(fluidsynth):
  """A FluidSynth synthesizer at `SAMPLE_RATE` with reverb and chorus off (dry tracks)."""
  return fluidsynth.Synth(gain=0.2, samplerate=float(SAMPLE_RATE),
                          **{"synth.reverb.active": 0, "synth.chorus.active": 0})


@functools.lru_cache(maxsize=None)
def _write_float(library: str):
  """FluidSynth's `fluid_synth_write_float`: pyfluidsynth only offers dithered 16-bit output,
  and float output is exact."""
  write = ctypes.CDLL(library).fluid_synth_write_float
  write.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p, ctypes.c_int,
                                                      ctypes.c_int] * 2
  return write


def play_soundfont(fluidsynth, path: Path, material: Material, seconds: float, bank_number: int,
                   program: int) -> np.ndarray:
  """Mono float32 audio of exactly `seconds`: `material` played by preset `bank_number`:`program`
  of SoundFont `path` (which must have it) on a fresh FluidSynth synthesizer.

  The one way this package drives FluidSynth. A fresh synthesizer for every clip: FluidSynth's
  voices carry state from one note to the next (at about -55 dB), and a clip's audio should
  depend on its seed alone. `fluidsynth` is the module `import_fluidsynth` returns.
  """
  write_float = _write_float(fluidsynth.lib)
  synth = new_synth(fluidsynth)
  try:
    sfid = synth.sfload(str(path))
    if sfid < 0:
      raise SetupError(f"FluidSynth could not load {path}")
    channel = 9 if material.is_drum else 0
    synth.program_select(channel, sfid, bank_number, program)
    events = [(c.time, 1, "cc", c.number, c.value) for c in material.controls]
    for n in material.notes:
      events += [(n.start, 2, "on", n.pitch, n.velocity), (n.end, 0, "off", n.pitch, 0)]
    events.sort()  # at equal times: note-offs, then controls, then note-ons
    out = np.zeros((2, int(round(seconds * SAMPLE_RATE))), np.float32)

    def advance(start: int, stop: int) -> int:
      """Renders frames `start:stop` (clipped to the clip) into `out`; returns the position."""
      stop = min(stop, out.shape[1])
      for begin in range(start, stop, _BLOCK):
        count = min(_BLOCK, stop - begin)
        left, right = out[0, begin:], out[1, begin:]
        write_float(synth.synth, count, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
      return max(start, stop)

    position = 0
    for time, _, kind, a, b in events:
      position = advance(position, int(round(time * SAMPLE_RATE)))
      if kind == "on":
        synth.noteon(channel, a, b)
      elif kind == "off":
        synth.noteoff(channel, a)
      else:
        synth.cc(channel, a, b)
    advance(position, out.shape[1])
  finally:
    synth.delete()
  return out.mean(axis=0)


def _timidity() -> str:
  """The TiMidity++ executable, or a `SetupError` saying how to install it."""
  path = shutil.which("timidity")
  if path is None:
    raise SetupError("TiMidity++ is not installed: apt-get install timidity (Debian/Ubuntu) or "
                     "brew install timidity (macOS)")
  return path


def play_with_timidity(material: Material, config: Path, seconds: float) -> np.ndarray:
  """Mono float32 audio of exactly `seconds`: `material` played by TiMidity++ with the patches
  `config` names (its standard drum kit for drums)."""
  import pretty_midi
  timidity = _timidity()
  midi = pretty_midi.PrettyMIDI(resolution=960)  # 1 ms steps at the default 120 bpm
  track = pretty_midi.Instrument(program=0 if material.is_drum else material.program,
                                 is_drum=material.is_drum)
  track.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in material.notes]
  track.control_changes = [pretty_midi.ControlChange(c.number, c.value, c.time)
                           for c in material.controls]
  midi.instruments.append(track)
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "clip.mid")
    midi.write(path)
    # Raw mono 16-bit output on stdout. TiMidity++ reads the system configuration too, but the
    # patches `config` maps win over it, and only mapped sounds are played (`SOUNDS`).
    result = subprocess.run(
        [timidity, "-c", str(config), "-idq", "-OrMs1", "-s", str(SAMPLE_RATE), "-EFreverb=d",
         "-EFchorus=d", "-o", "-", path], capture_output=True, check=False)
  if result.returncode != 0:
    reason = result.stderr.decode(errors="replace").strip().splitlines() or [result.returncode]
    raise RuntimeError(f"timidity -c {config} failed: {reason[-1]}")
  played = np.frombuffer(result.stdout, np.int16).astype(np.float32) / 32768
  audio = np.zeros(int(round(seconds * SAMPLE_RATE)), np.float32)
  audio[:len(played)] = played[:len(audio)]
  return audio
