"""The real recordings in the dataset (data_prep.recordings, .render): which recordings each
split plays, and that no test clip comes from a recording any training clip comes from.

These play the fetched recordings (`make sources` installs them before the tests run).
"""

import numpy as np
import pytest

import jaxeq
from data_prep import plan, recordings, render
from data_prep.material import make_material, make_one_shot


def test_test_recordings_are_held_out_whole_kits_whole_instruments_or_notes():
  for name in jaxeq.CLASSES:
    train, test = (set(recordings.recorded_sources(name, s)) for s in ("train", "test"))
    assert set(recordings.recorded_sources(name, "validation")) == train
    assert bool(train) == bool(test) == recordings.has_recordings(name), name
    assert not train & test, name
  assert set(recordings.TRAIN_KITS).isdisjoint(recordings.TEST_KITS)
  assert recordings.recorded_sources("acoustic_piano", "test") == ("tonejs-piano",)
  assert recordings.recorded_sources("acoustic_piano", "train") == ("salamander",)
  # Hydrogen's Black Pearl and AVL's are the same drums: never one in each split.
  black_pearls = [k for k in recordings.TRAIN_KITS + recordings.TEST_KITS if "Black" in k]
  assert len(black_pearls) == 2 and set(black_pearls) <= set(recordings.TRAIN_KITS)


def test_a_held_out_note_is_never_played_by_a_training_sampler():
  for instrument in ("violin", "flute", "bass-electric"):
    whole = recordings.open_source(f"tonejs-{instrument}")
    train = recordings.open_source(f"tonejs-{instrument}/train")
    test = recordings.open_source(f"tonejs-{instrument}/test")
    notes = whole.samples.notes()
    assert set(test.samples.notes()) == set(notes[1::recordings.HELD_OUT_EVERY])
    assert set(train.samples.notes()) | set(test.samples.notes()) == set(notes)
    assert not set(train.samples.notes()) & set(test.samples.notes())
    files = {z.path for z in train.samples.zones}
    assert not files & {z.path for z in test.samples.zones}


def test_the_kit_table_says_which_classes_each_kit_really_has():
  for kit in recordings.TRAIN_KITS + recordings.TEST_KITS:
    keys = recordings.open_source(kit).sounds().drum_notes
    heard = {c for c in recordings.DRUM_CLASSES
             if keys & set(jaxeq.class_info(c).gm_drum_notes)}
    assert heard == recordings.kit_classes(kit), kit


@pytest.mark.parametrize("source", ["salamander", "tonejs-harmonium", "tonejs-cello/test",
                                    "hydrogen/ForzeeStereo", "avldrums/Red_Zeppelin_4_LV2"])
def test_every_kind_of_recorded_source_plays_phrases_and_one_shots(source):
  player = recordings.open_source(source)
  class_name = ("snare" if source.startswith(("hydrogen", "avl")) else
                "acoustic_piano" if source == "salamander" else
                "organ" if "harmonium" in source else "cello")
  rng = np.random.default_rng(0)
  phrase = player.render(make_material(class_name, rng, 3.0, player.sounds()), 3.0)
  assert phrase.shape == (3 * 44100,) and phrase.dtype == np.float32
  assert np.sqrt(np.mean(phrase ** 2)) > 1e-3
  shot = render.trim_one_shot(player.render(make_one_shot(class_name, rng, player.sounds()), 4.0))
  assert 0.05 * 44100 <= len(shot) <= 4 * 44100 and np.max(np.abs(shot)) > 1e-3
  # A one-shot ends where it has died away, without a click.
  assert np.max(np.abs(shot[-10:])) < 0.05 * np.max(np.abs(shot))


def test_a_one_shot_is_cut_where_its_sound_dies_away():
  decay = np.exp(-np.arange(44100 * 2) / 2205.0).astype(np.float32)  # -60 dB after ~0.35 s
  shot = render.trim_one_shot(decay * np.sin(np.arange(decay.size) * 0.05, dtype=np.float32))
  assert 0.3 * 44100 < len(shot) < 0.4 * 44100
  assert len(render.trim_one_shot(np.r_[np.ones(10), np.zeros(44100)].astype(np.float32))) \
      == int(render.ONE_SHOT_MIN_S * 44100)


def test_a_silent_clip_is_skipped_and_listed_not_failed(tmp_path, monkeypatch):
  clip = next(c for c in plan.plan("smoke", 0) if c.recorded and c.kind == "phrase")
  players = render.Players()
  monkeypatch.setattr(players, "play", lambda clip, material: (np.zeros(88200, np.float32), 0))
  with pytest.raises(render.SilentClip, match="silence"):
    render.render_clip(clip, tmp_path, players)
  monkeypatch.setattr(render, "_PLAYERS", players)
  assert render._render_in_worker((clip, str(tmp_path), ())).startswith(f"silent: {clip.path}")
  assert not (tmp_path / clip.path).exists()
