"""The 37 instrument classes and their mappings (jaxeq/assets/classes.json)."""

import pytest
from pretty_midi.constants import INSTRUMENT_MAP

import jaxeq
from jaxeq.classes import CLASS_INFO, CLASSES, class_info, label_map

ISSUE_ORDER = (
    "acoustic_piano electric_piano organ mallets acoustic_guitar_nylon acoustic_guitar_steel "
    "electric_guitar_clean electric_guitar_distorted upright_bass electric_bass synth_bass violin "
    "viola cello contrabass string_ensemble harp choir trumpet trombone tuba french_horn "
    "brass_section saxophone oboe bassoon clarinet flute synth_lead synth_pad kick snare hihat "
    "toms cymbals vocals drum_kit").split()
RECORDED_ONLY = ("vocals", "drum_kit")


def test_classes_are_the_37_in_the_classifier_order():
  assert jaxeq.CLASSES == tuple(ISSUE_ORDER)
  assert [class_info(c).index for c in jaxeq.CLASSES] == list(range(37))


def test_every_class_is_rendered_by_gm_programs_or_drum_keys_owned_by_it_alone():
  programs = [p for c in CLASS_INFO.values() for p in c.gm_programs]
  drum_notes = [n for c in CLASS_INFO.values() for n in c.gm_drum_notes]
  assert len(programs) == len(set(programs)) and all(0 <= p < 128 for p in programs)
  assert len(drum_notes) == len(set(drum_notes)) and all(35 <= n <= 81 for n in drum_notes)
  for c in CLASS_INFO.values():
    assert c.family
    if c.name in RECORDED_ONLY:  # voices and whole kits: only real recordings play them
      assert not c.gm_programs and not c.gm_drum_notes and not c.is_drum
      continue
    assert bool(c.gm_programs) != bool(c.gm_drum_notes), c.name
    assert c.is_drum == (c.family == "drums")
    if not c.is_drum:
      lo, hi = c.pitch_range
      assert 0 <= lo < hi <= 127 and hi - lo >= 24, c.name


def test_slakh_labels_are_the_gm_names_of_the_class_programs():
  for c in CLASS_INFO.values():
    if c.name not in RECORDED_ONLY:
      assert c.slakh == tuple(INSTRUMENT_MAP[p] for p in c.gm_programs)


def test_voices_and_whole_kits_have_classes_and_take_the_datasets_labels():
  assert CLASSES[-2:] == RECORDED_ONLY  # appended: the first 35 keep their output index
  assert class_info("vocals").family == "voice" and class_info("drum_kit").family == "drums"
  medleydb, slakh = label_map("medleydb"), label_map("slakh")
  for label in ("male singer", "female singer", "male speaker", "vocalists"):
    assert medleydb[label] == "vocals"
  assert medleydb["choir"] == "choir" and medleydb["drum set"] == "drum_kit"
  assert slakh["drums"] == "drum_kit"  # Slakh2100's drum stems are whole kits


def test_dataset_labels_map_onto_classes():
  medleydb = label_map("medleydb")
  assert medleydb["clean electric guitar"] == "electric_guitar_clean"
  assert medleydb["high hat"] == "hihat"
  assert medleydb["double bass"] == "upright_bass"
  assert "synthesizer" not in medleydb  # says neither bass, lead nor pad
  slakh = label_map("slakh")
  assert slakh["distortion guitar"] == "electric_guitar_distorted"
  assert slakh["electric bass (finger)"] == "electric_bass"
  assert slakh["drums"] == "drum_kit"  # a whole kit, not one drum piece


def test_unknown_names_are_clear_errors():
  with pytest.raises(ValueError, match="unknown instrument class 'banjo'"):
    class_info("banjo")
  with pytest.raises(ValueError, match="no label map"):
    label_map("musdb")
