"""The one interface between what is played and how it sounds (DESIGN.md §4).

`data_prep.material` says what a clip plays (`Material`: notes, controls, the GM program or
drum kit) and which sounds a source has (`Sounds`); a sound source turns material into audio.
Sources: General-MIDI banks through FluidSynth or TiMidity++ (`data_prep.synth`), real note
recordings through a sampler (`data_prep.sampler`), real drum kits (`data_prep.drumkits`).
None of them imports another's internals, and `material` imports none of them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from data_prep.material import Material, Sounds

SAMPLE_RATE = 44100


class SoundSource(Protocol):
  """Plays `Material` with one set of recordings (a bank, an instrument's samples, a kit)."""

  name: str

  def sounds(self) -> Sounds:
    """What the source can play: `make_material(..., sounds)` draws only these."""

  def render(self, material: Material, seconds: float) -> np.ndarray:
    """Mono float32 audio at `SAMPLE_RATE`, exactly `seconds` long, dry (no reverb)."""
