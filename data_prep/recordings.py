"""The real recordings of the dataset: which recorded source plays which class in which split.

Real recorded sound comes from the sources `data_prep.fetch` installs (DESIGN.md §3): the
tonejs-instruments note recordings, the Salamander Grand Piano, the Hydrogen drum kits and the
AVL drum kits. Every recorded source has a name, as the manifest's `bank` column holds it:

    tonejs-violin/train      the violin's recorded notes less the held-out ones
    tonejs-violin/test       every third recorded note of the violin, held out
    tonejs-piano             a whole instrument (here held out: the Salamander piano trains)
    salamander               the Salamander Grand Piano, 16 velocity layers and its releases
    hydrogen/ForzeeStereo    a Hydrogen drum kit
    avldrums/Black_Pearl_4_LV2

The test split is made of recordings no training clip comes from: whole drum kits held out;
for the piano and the organ, whose classes have two recorded instruments, one of them held
out (tonejs' piano, the harmonium); for every other instrument, every third of its recorded
notes (by pitch) held out, and a sampler on the rest never pitch-shifts one of them.
"""

from __future__ import annotations

from data_prep import fetch
from data_prep.sound_source import SoundSource
from jaxeq.classes import class_info

# tonejs-instruments instrument → class.
TONEJS_CLASSES = {
    "bass-electric": "electric_bass", "bassoon": "bassoon", "cello": "cello",
    "clarinet": "clarinet", "contrabass": "contrabass", "flute": "flute",
    "french-horn": "french_horn", "guitar-acoustic": "acoustic_guitar_steel",
    "guitar-electric": "electric_guitar_clean", "guitar-nylon": "acoustic_guitar_nylon",
    "harmonium": "organ", "harp": "harp", "organ": "organ", "piano": "acoustic_piano",
    "saxophone": "saxophone", "trombone": "trombone", "trumpet": "trumpet", "tuba": "tuba",
    "violin": "violin", "xylophone": "mallets",
}
# Whole recorded instruments held out for the test split, where a class has two.
HELD_OUT_INSTRUMENTS = {"acoustic_piano": ("tonejs-piano", "salamander"),
                        "organ": ("tonejs-harmonium", "tonejs-organ")}  # (test, train)
DRUM_CLASSES = ("kick", "snare", "hihat", "toms", "cymbals")
# Drum kits, by split. The test kits: an acoustic kit of each collection and an electronic
# one. Hydrogen's "The Black Pearl 1.0" and AVL's Black Pearl are the same drums: both train.
TRAIN_KITS = ("hydrogen/BJA_Pacific", "hydrogen/ElectricEmpireKit", "hydrogen/ForzeeStereo",
              "hydrogen/Millo-Drums_v.1", "hydrogen/Millo_MultiLayered2",
              "hydrogen/Millo_MultiLayered3", "hydrogen/The Black Pearl 1.0",
              "hydrogen/VariBreaks", "hydrogen/rumpf_kit_z01_h2", "avldrums/Black_Pearl_4_LV2")
TEST_KITS = ("hydrogen/ColomboAcousticDrumkit", "hydrogen/HardElectro1", "hydrogen/Audiophob",
             "avldrums/Red_Zeppelin_4_LV2")
# Of an instrument's recorded notes (by pitch), every `HELD_OUT_EVERY`-th, from the second, is
# held out for the test split.
HELD_OUT_EVERY = 3


def recorded_sources(class_name: str, split: str) -> tuple[str, ...]:
  """The recorded sources that play `class_name` in `split` (none for a class without real
  recordings). `validation` plays the training recordings."""
  name = class_info(class_name).name
  test = split == "test"
  if name in DRUM_CLASSES:
    return tuple(k for k in (TEST_KITS if test else TRAIN_KITS) if name in kit_classes(k))
  if name in HELD_OUT_INSTRUMENTS:
    return (HELD_OUT_INSTRUMENTS[name][0 if test else 1],)
  return tuple(f"tonejs-{instrument}/{'test' if test else 'train'}"
               for instrument, c in TONEJS_CLASSES.items() if c == name)


def has_recordings(class_name: str) -> bool:
  return bool(recorded_sources(class_name, "train"))


def fetched_names(source: str) -> tuple[str, ...]:
  """The `data_prep.fetch` sources a recorded source reads."""
  if source == "salamander":
    return fetch.GROUPS["salamander"]
  if source.startswith("hydrogen/"):
    return ("hydrogen-drumkits",)
  if source.startswith("avldrums/"):
    return ("avldrums",)
  return (source.split("/")[0],)


def kit_classes(kit: str) -> frozenset[str]:
  """The drum classes a kit has recordings of: fixed here, so a plan needs no fetched files."""
  return _KIT_CLASSES[kit]


# The classes each kit has recordings of, from `data_prep.drumkits` on the fetched kits
# (tests/test_recordings.py checks them against the kits).
_ALL = frozenset(DRUM_CLASSES)
_KIT_CLASSES = {kit: _ALL for kit in TRAIN_KITS + TEST_KITS}
_KIT_CLASSES.update({"hydrogen/ElectricEmpireKit": frozenset({"kick", "snare", "hihat"}),
                     "hydrogen/HardElectro1": frozenset({"kick", "snare", "hihat"}),
                     "hydrogen/VariBreaks": frozenset({"kick", "snare", "hihat", "toms"})})


def open_source(source: str) -> SoundSource:
  """The `SoundSource` named `source`, on its fetched recordings (a `SetupError` naming what
  to fetch when they are missing)."""
  from data_prep import drumkits, sampler
  if source.startswith("hydrogen/"):
    return drumkits.HydrogenKit(fetch.source_dir("hydrogen-drumkits") / source.split("/", 1)[1])
  if source.startswith("avldrums/"):
    return drumkits.SoundFontKit(fetch.source_dir("avldrums") / (source.split("/", 1)[1] + ".sf2"))
  if source == "salamander":
    zones = [z for name in fetch.GROUPS["salamander"] if name != "salamander-release"
             for z in sampler.SampleSet.from_folder(fetch.source_dir(name)).zones]
    releases = sampler.SampleSet.from_folder(fetch.source_dir("salamander-release"), "release")
    return sampler.Sampler(source, sampler.SampleSet.of(zones), "acoustic_piano", releases)
  instrument, _, part = source.partition("/")
  class_name = TONEJS_CLASSES[instrument.removeprefix("tonejs-")]
  whole = sampler.from_folders(source, fetch.source_dir(instrument), class_name)
  if not part:
    return whole
  notes = whole.samples.notes()
  held_out = set(notes[1::HELD_OUT_EVERY])
  return whole.subset([n for n in notes if (n in held_out) == (part == "test")])
