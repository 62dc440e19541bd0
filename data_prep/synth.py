"""General-MIDI sample banks played by FluidSynth (through pyfluidsynth).

Banks are found by name: FluidR3_GM (Debian `fluid-soundfont-gm`), MuseScore_General (Debian
`musescore-general-soundfont-small`, a compressed `.sf3`) and TimGM6mb (inside the
`pretty_midi` package). A folder named by `$JAXEQ_SOUNDFONTS` is searched first, for other
systems. Reverb and chorus are off: the tracks are dry, as close-miked recordings are.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from data_prep.material import Material

SAMPLE_RATE = 44100
BANK_FILES = {"FluidR3_GM": "FluidR3_GM.sf2", "MuseScore_General": "MuseScore_General.sf3",
              "TimGM6mb": "TimGM6mb.sf2"}
_SYSTEM_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts",
                "/usr/local/share/soundfonts", "/opt/homebrew/share/soundfonts",
                "~/.local/share/soundfonts")
_INSTALL_HINT = {
    "FluidR3_GM": "install the Debian/Ubuntu package fluid-soundfont-gm (apt-get install "
                  "fluid-soundfont-gm), or put FluidR3_GM.sf2 in a folder named by "
                  "$JAXEQ_SOUNDFONTS",
    "MuseScore_General": "install the Debian/Ubuntu package musescore-general-soundfont-small "
                         "(apt-get install musescore-general-soundfont-small), or put "
                         "MuseScore_General.sf3 in a folder named by $JAXEQ_SOUNDFONTS",
    "TimGM6mb": "reinstall pretty_midi (pip install -e '.[data]'), which ships it",
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


class Renderer:
  """Renders `Material` to audio with FluidSynth, banks loaded on first use.

  Every clip gets a fresh synthesizer: FluidSynth's voices carry state from one note to the
  next (at about -55 dB), and a clip's audio should depend on its seed alone. A long-lived
  synthesizer keeps each bank in FluidSynth's sample cache, so loading it again is quick.
  """

  def __init__(self):
    self._fluidsynth = import_fluidsynth()
    self._holder = self._new_synth()
    # pyfluidsynth only offers dithered 16-bit output; float output is exact.
    self._write_float = ctypes.CDLL(self._fluidsynth.lib).fluid_synth_write_float
    self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p, ctypes.c_int,
                                                                     ctypes.c_int] * 2
    self._banks: dict[str, str] = {}

  def _new_synth(self):
    return self._fluidsynth.Synth(gain=0.2, samplerate=float(SAMPLE_RATE),
                                  **{"synth.reverb.active": 0, "synth.chorus.active": 0})

  def _load(self, synth, bank: str) -> int:
    if bank not in self._banks:
      path = str(find_bank(bank))
      if self._holder.sfload(path) < 0:
        raise SetupError(f"FluidSynth could not load {path}")
      self._banks[bank] = path
    return synth.sfload(self._banks[bank])

  def render(self, material: Material, bank: str, seconds: float) -> tuple[np.ndarray, int]:
    """`(mono float32 audio of exactly `seconds`, the program or drum kit used)`.

    A drum kit the bank lacks falls back to its standard kit (0).
    """
    synth = self._new_synth()
    try:
      sfid = self._load(synth, bank)
      channel, bank_number = (9, 128) if material.is_drum else (0, 0)
      program = material.program
      if synth.sfpreset_name(sfid, bank_number, program) is None:
        if not material.is_drum:
          raise SetupError(f"bank {bank} has no GM program {program}")
        program = 0
      synth.program_select(channel, sfid, bank_number, program)
      events = [(c.time, 1, "cc", c.number, c.value) for c in material.controls]
      for n in material.notes:
        events += [(n.start, 2, "on", n.pitch, n.velocity), (n.end, 0, "off", n.pitch, 0)]
      events.sort()  # at equal times: note-offs, then controls, then note-ons
      out = np.zeros((2, int(round(seconds * SAMPLE_RATE))), np.float32)
      position = 0
      for time, _, kind, a, b in events:
        position = self._advance(synth, out, position, int(round(time * SAMPLE_RATE)))
        if kind == "on":
          synth.noteon(channel, a, b)
        elif kind == "off":
          synth.noteoff(channel, a)
        else:
          synth.cc(channel, a, b)
      self._advance(synth, out, position, out.shape[1])
    finally:
      synth.delete()
    return out.mean(axis=0), program

  def _advance(self, synth, out: np.ndarray, start: int, stop: int) -> int:
    """Renders frames `start:stop` (clipped to the clip) into `out`; returns the position."""
    stop = min(stop, out.shape[1])
    for begin in range(start, stop, _BLOCK):
      count = min(_BLOCK, stop - begin)
      left, right = out[0, begin:], out[1, begin:]
      self._write_float(synth.synth, count, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
    return max(start, stop)
