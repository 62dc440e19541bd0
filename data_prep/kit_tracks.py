"""A whole drum kit on one track, through a room: a drum loop, a stereo kit, overheads, a bus.

The drum classes hear each piece of a kit alone, as one track of a multitrack recording; a
producer's drum track often holds them all. `render_kit_track(kit, seconds, rng)` plays a kit
(any `SoundSource` with drum keys: `data_prep.drumkits`' Hydrogen and SoundFont kits, a GM
bank) with `material.make_kit_material` (kick, snare, hi-hat and now and then cymbals and
toms, each its drum class's pattern, at one tempo), into one mono track, and puts it through a
room: the recording chain's own room stage (`recording_chain`: a pyroomacoustics shoebox or
Freeverb), with every other stage off. The track keeps its dry peak, lowered to `PEAK` where it
is louder, so it never clips.
"""

from __future__ import annotations

import copy

import ml_collections
import numpy as np

from data_prep import recording_chain
from data_prep.material import Material, make_kit_material
from data_prep.sound_source import SAMPLE_RATE, SoundSource

PEAK = 10 ** (-1 / 20)  # -1 dBFS: the highest a kit track peaks


def room_only(config: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
  """`config` (default: `recording_chain.default_config()`) with its room stage always on and
  every other stage off; `config` itself is left as it was."""
  config = copy.deepcopy(config) if config is not None else recording_chain.default_config()
  for stage in recording_chain.STAGES:
    config[stage].probability = 1.0 if stage == "room" else 0.0
  return config


def render_kit_track(kit: SoundSource, seconds: float, rng: np.random.Generator,
                     config: ml_collections.ConfigDict | None = None
                     ) -> tuple[np.ndarray, Material, dict]:
  """`(mono float32 track of `seconds` at SAMPLE_RATE, the material played, the room's
  parameters)`: the kit's pieces played together, through a room drawn from `config`'s room
  stage (the recording chain's defaults). Deterministic given `rng`; the material and the room
  draw from generators of their own, so a change of room leaves the pattern as it was."""
  material_rng, room_rng = rng.spawn(2)
  material = make_kit_material(material_rng, seconds, kit.sounds())
  dry = np.asarray(kit.render(material, seconds), np.float32)
  if not np.any(dry):
    return dry, material, {}
  track, applied = recording_chain.apply_chain(dry, SAMPLE_RATE, room_rng, room_only(config))
  peak = float(np.max(np.abs(track)))
  if peak > PEAK:
    track = track * np.float32(PEAK / peak)
  return track.astype(np.float32, copy=False), material, applied.get("room", {})
