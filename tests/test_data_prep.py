"""Rendering the dataset with real FluidSynth, and its features (data_prep.render/.features).

The smoke set (every class, every split) is rendered once for the module; the other tests
read it, resume it, shard a part of it and featurize it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import jaxeq
from data_prep import dataset, features, manifest, plan, recording_chain, recordings
from data_prep.material import corpus_parts, make_material
from data_prep.synth import SOUNDS, SetupError, find_bank
from jaxeq.spectrum import spectrum_and_noise_floor
import data_prep.synth as synth_module

REPO = Path(__file__).resolve().parents[1]


def run(module, *args):
  """`python -m data_prep.MODULE ARGS` from the repository root; its completed process."""
  result = subprocess.run([sys.executable, "-m", f"data_prep.{module}", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  return result


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  out = tmp_path_factory.mktemp("smoke")
  run("render", "--size", "smoke", "--out", out, "--workers", 2)
  return out


def mtimes(folder: Path) -> dict:
  return {p: p.stat().st_mtime_ns for p in folder.rglob("*.flac")}


# --- the plan and the material (pure) ---------------------------------------------------

# Voices and whole kits have no GM program: data_prep.recognition plays their recordings.
RENDERED = tuple(name for name in jaxeq.CLASSES if name not in ("vocals", "drum_kit"))


def test_sizes_plan_every_rendered_class_and_split_and_the_paper_size():
  smoke = plan.plan("smoke", 0)
  assert {(c.class_name, c.split) for c in smoke} == {
      (name, split) for name in RENDERED for split in plan.SPLITS}
  assert {c.bank for c in smoke if c.split == "test" and not c.recorded} == {"TimGM6mb"}
  assert sum(not c.recorded for c in plan.plan("paper", 0)) == 45010
  assert plan.plan("default", 3) == plan.plan("default", 3)
  assert plan.plan("default", 3) != plan.plan("default", 4)


def test_training_splits_alternate_banks_evenly_and_the_test_bank_is_never_trained_on():
  clips = plan.plan("default", 0)
  for name in ("violin", "snare"):
    for split in ("train", "validation"):
      for reference in (True, False):
        banks = [c.bank for c in clips
                 if (c.class_name, c.split, c.reference) == (name, split, reference)]
        if banks:
          counts = [banks.count(bank) for bank in plan.TRAINING_BANKS]
          assert max(counts) - min(counts) <= 1, (name, split, reference, counts)
  assert {c.bank for c in clips if c.split == "test" and not c.recorded} == {"TimGM6mb"}
  assert "TimGM6mb" not in plan.TRAINING_BANKS


def test_recorded_clips_of_every_class_with_recordings_in_every_split_at_every_length():
  clips = plan.plan("medium", 0)
  recorded = [c for c in clips if c.recorded]
  with_recordings = {c.class_name for c in recorded}
  assert len(with_recordings) == 24 and {"kick", "violin", "acoustic_piano"} <= with_recordings
  assert "synth_pad" not in with_recordings
  for split in plan.SPLITS:
    assert {c.class_name for c in recorded if c.split == split} == with_recordings
  assert {c.kind for c in recorded} == set(plan.KINDS)
  assert {c.kind for c in clips if c.reference} == {"phrase"}
  one_shots = [c for c in recorded if c.kind == "one_shot"]
  assert 0.2 < len(one_shots) / len(recorded) < 0.4
  shorts = [c.seconds for c in recorded if c.kind == "short_phrase"]
  assert plan.SHORT_SECONDS[0] <= min(shorts) and max(shorts) <= plan.SHORT_SECONDS[1]


def test_every_bank_renders_an_instrument_in_its_own_timbre():
  from data_prep.synth import Renderer
  renderer = Renderer()
  material = make_material("violin", np.random.default_rng(0), 2.0)
  spectra = {}
  for bank in (*plan.TRAINING_BANKS, "TimGM6mb"):
    audio, program = renderer.render(material, bank, 2.0)
    assert program == material.program and np.all(np.isfinite(audio))
    assert np.sqrt(np.mean(audio ** 2)) > 1e-4, bank
    spectra[bank] = jaxeq.long_term_spectrum(audio, 44100)
  banks = list(spectra)
  for i, a in enumerate(banks):
    for b in banks[i + 1:]:  # the same notes, different samples: spectra differ by decibels
      difference = (spectra[a] - spectra[a].mean()) - (spectra[b] - spectra[b].mean())
      assert np.mean(np.abs(difference)) > 1.0, (a, b)


def test_each_clip_plays_through_a_bank_with_samples_of_its_class():
  clips = plan.plan("default", 0)
  freepats = {c.class_name for c in clips if c.bank == "FreePats"}
  clips = [c for c in clips if not c.recorded]  # recorded sources: tests/test_recordings.py
  # FreePats has no viola or contrabass, and its oboe is TimGM6mb's: those play elsewhere.
  # Nor does it play its high tom, TimGM6mb's snare.
  assert freepats == set(RENDERED) - {"viola", "contrabass", "oboe"}
  toms = [c for c in clips if (c.class_name, c.bank) == ("toms", "FreePats")]
  for clip in clips[::7] + toms:
    material = make_material(clip.class_name, np.random.default_rng(clip.seed), clip.seconds,
                             SOUNDS[clip.bank])
    if material.is_drum:
      assert {n.pitch for n in material.notes} <= SOUNDS[clip.bank].drum_notes, clip
    else:
      assert material.program in SOUNDS[clip.bank].programs, clip
  with pytest.raises(ValueError, match="the bank has none of the GM sounds of oboe"):
    make_material("oboe", np.random.default_rng(0), 2.0, SOUNDS["FreePats"])


def test_timidity_renders_a_clip_the_same_every_time():
  from data_prep.synth import Renderer
  renderer = Renderer()
  for name in ("cello", "snare"):
    material = make_material(name, np.random.default_rng(1), 2.0, SOUNDS["FreePats"])
    first, program = renderer.render(material, "FreePats", 2.0)
    second, _ = renderer.render(material, "FreePats", 2.0)
    assert first.shape == (88200,) and first.dtype == np.float32
    assert np.sqrt(np.mean(first ** 2)) > 1e-3 and np.array_equal(first, second), name
    assert program == (0 if material.is_drum else material.program)


def test_a_subset_of_classes_plans_the_same_clips_as_the_whole():
  whole = {c.clip_id: c for c in plan.plan("default", 0)}
  for clip in plan.plan("default", 0, ["flute", "toms"]):
    assert whole[clip.clip_id] == clip


def test_shards_are_disjoint_and_cover_the_plan():
  clips = plan.plan("default", 0)
  shards = [plan.shard(clips, 3, i) for i in range(3)]
  paths = [c.path for s in shards for c in s]
  assert len(paths) == len(set(paths)) == len(clips)
  with pytest.raises(ValueError, match="shard index 3 of 3"):
    plan.shard(clips, 3, 3)


def test_material_stays_in_the_instrument_range_and_is_deterministic():
  for name in RENDERED:
    info = jaxeq.class_info(name)
    for seed in range(3):
      material = make_material(name, np.random.default_rng(seed), 6.0)
      assert material == make_material(name, np.random.default_rng(seed), 6.0)
      pitches = {n.pitch for n in material.notes}
      assert material.notes and all(0 <= n.start < n.end for n in material.notes)
      if info.is_drum:
        assert pitches <= set(info.gm_drum_notes), name
      else:
        assert info.pitch_range[0] <= min(pitches) and max(pitches) <= info.pitch_range[1], name
        assert material.program in info.gm_programs


def test_corpus_part_names_are_one_line():
  # This score's third vocal part is named "Tenor\rViola" in the music21 corpus.
  assert "Tenor Viola" in [name for name, _ in corpus_parts("bach/bwv171.6.mxl")]


def test_a_missing_bank_says_what_to_install(monkeypatch):
  monkeypatch.setattr(synth_module, "_SYSTEM_DIRS", ())
  monkeypatch.delenv("JAXEQ_SOUNDFONTS", raising=False)
  with pytest.raises(SetupError, match="apt-get install fluid-soundfont-gm"):
    find_bank("FluidR3_GM")
  with pytest.raises(SetupError, match="apt-get install musescore-general-soundfont-small"):
    find_bank("MuseScore_General")
  with pytest.raises(SetupError, match="apt-get install timidity freepats"):
    find_bank("FreePats")
  assert find_bank("TimGM6mb").is_file()  # ships inside pretty_midi


# --- the rendered smoke set -------------------------------------------------------------


def test_smoke_manifest_lists_every_clip_with_its_bank_seed_and_colouration(smoke):
  rows = manifest.read_manifest(smoke)
  planned = plan.plan("smoke", 0)
  assert [r["path"] for r in rows] == [c.path for c in planned]
  assert set(manifest.COLUMNS) <= set(rows[0])
  for row, clip in zip(rows, planned):
    assert (row["class"], row["split"], row["bank"], int(row["seed"])) == (
        clip.class_name, clip.split, clip.bank, clip.seed)
    assert (row["recorded"], row["kind"]) == (str(int(clip.recorded)), clip.kind)
    eq = jaxeq.EQ.from_json(row["colouration"])
    assert row["reference"] == ("1" if clip.reference else "0")
    assert (len(eq.bands) == 0) == clip.reference
    # The recording chain is drawn for the coloured training clips only, never the test split.
    if row["chain"]:
      assert row["split"] != "test" and not clip.reference
      assert set(json.loads(row["chain"])) <= set(recording_chain.STAGES) - {"eq"}
    info = jaxeq.class_info(row["class"])
    if info.is_drum:
      assert {int(n) for n in row["drum_notes"].split()} <= set(info.gm_drum_notes)
    else:
      assert int(row["program"]) in info.gm_programs
  # A clean reference clip a class, and a recorded one for each class with recordings.
  references = [r for r in rows if r["reference"] == "1"]
  assert sum(r["recorded"] == "0" for r in references) == 35
  assert sum(r["recorded"] == "1" for r in references) == 24
  assert all(not json.loads(r["colouration"])["bands"] and not r["chain"] for r in references)
  assert any(r["chain"] for r in rows)
  dataset = json.loads((smoke / "dataset.json").read_text())
  assert (dataset["size"], dataset["seed"]) == ("smoke", 0)
  assert "--size smoke" in dataset["command"]
  # Every real source the clips play is credited, with its licence.
  credited = {r["name"] for r in dataset["recordings"]}
  assert credited == {name for c in planned if c.recorded
                      for name in recordings.fetched_names(c.bank)}
  assert {"hydrogen-drumkits", "salamander-release", "tonejs-violin"} <= credited
  assert all(r["licence"] and r["attribution"] for r in dataset["recordings"])


def test_smoke_clips_are_44k1_mono_flac_at_their_recorded_level(smoke):
  for row in manifest.read_manifest(smoke):
    info = sf.info(smoke / row["path"])
    assert (info.format, info.samplerate, info.channels) == ("FLAC", 44100, 1)
    if row["kind"] == "one_shot":  # cut where it has died away
      assert 0.05 * 44100 <= info.frames <= 2 * 44100
    else:
      assert info.frames == round(float(row["duration_s"]) * 44100) <= 2 * 44100
    audio, _ = jaxeq.load_audio(smoke / row["path"])
    peak_dbfs = 20 * np.log10(np.max(np.abs(audio)))
    assert peak_dbfs == pytest.approx(float(row["peak_dbfs"]), abs=0.05), row["path"]


def test_a_coloured_clip_is_its_clean_render_through_the_recorded_eq(smoke):
  """Re-rendering a clip from its seed and applying the manifest's EQ gives the file."""
  from data_prep.synth import Renderer
  renderer = Renderer()
  rows = [r for r in manifest.read_manifest(smoke) if r["reference"] == "0" and not r["chain"]
          and r["kind"] == "phrase" and r["recorded"] == "0"]
  assert len(rows) >= 20
  for row in rows[::5]:
    material_seed = np.random.SeedSequence(int(row["seed"])).spawn(4)[0]
    material = make_material(row["class"], np.random.default_rng(material_seed), 2.0,
                             SOUNDS[row["bank"]])
    clean, _ = renderer.render(material, row["bank"], 2.0)
    expected = jaxeq.apply_eq(clean, 44100, jaxeq.EQ.from_json(row["colouration"]))
    stored, _ = jaxeq.load_audio(smoke / row["path"])
    # The manifest's level is rounded to 0.01 dB: the stored peak gives the exact gain.
    assert 20 * np.log10(np.max(np.abs(stored))) == pytest.approx(float(row["peak_dbfs"]),
                                                                  abs=0.01)
    expected *= np.max(np.abs(stored)) / np.max(np.abs(expected))
    assert np.max(np.abs(stored - expected)) < 2e-4, row["path"]  # 16-bit quantisation


def test_rendering_again_resumes_and_renders_only_what_is_missing(smoke):
  before = mtimes(smoke)
  manifest_before = (smoke / "manifest.csv").read_text()
  result = run("render", "--size", "smoke", "--out", smoke, "--workers", 1)
  planned = len(plan.plan("smoke", 0))
  assert f"{planned} already on disk, rendering 0" in result.stdout
  assert mtimes(smoke) == before
  assert (smoke / "manifest.csv").read_text() == manifest_before
  missing = smoke / "audio/test/oboe/oboe_test_00000.flac"
  content = missing.read_bytes()
  missing.unlink()
  result = run("render", "--size", "smoke", "--out", smoke, "--workers", 1)
  assert f"{planned - 1} already on disk, rendering 1" in result.stdout
  assert missing.read_bytes() == content  # the same audio: it depends on the seed alone
  assert (smoke / "manifest.csv").read_text() == manifest_before


def test_another_size_is_refused_in_the_same_folder(smoke):
  result = subprocess.run([sys.executable, "-m", "data_prep.render", "--size", "default",
                           "--out", str(smoke)], cwd=REPO, capture_output=True, text=True)
  assert result.returncode == 2
  assert "holds the 'smoke' dataset" in result.stderr


def test_shards_render_disjoint_parts_that_match_the_whole(smoke, tmp_path):
  classes = "flute,hihat"
  for index in (0, 1):
    run("render", "--size", "smoke", "--out", tmp_path, "--workers", 1, "--classes", classes,
        "--num-shards", 2, "--shard-index", index)
  shard_rows = [
      {json.loads(line)["path"] for line in (tmp_path / "journal" / f"shard-{i:04d}-of-0002.jsonl")
       .read_text().splitlines()} for i in (0, 1)]
  assert shard_rows[0] and shard_rows[1] and not shard_rows[0] & shard_rows[1]
  rows = manifest.read_manifest(tmp_path)
  assert {r["path"] for r in rows} == shard_rows[0] | shard_rows[1]
  assert len(rows) == len(plan.plan("smoke", 0, classes.split(",")))
  for row in rows:
    assert (tmp_path / row["path"]).read_bytes() == (smoke / row["path"]).read_bytes()


# --- features -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_features(smoke):
  run("features", smoke, "--workers", 2)
  return smoke / "features"


def test_features_of_an_older_format_are_refused_with_the_command_that_remakes_them(tmp_path):
  for split in dataset.SPLITS:
    (tmp_path / "features" / split).mkdir(parents=True)
    (tmp_path / "features" / split / "info.json").write_text('{"format": "jaxeq.features/1"}')
  assert not dataset.is_prepared(tmp_path)  # `dataset.ensure` featurizes it again
  with pytest.raises(FileNotFoundError, match="format jaxeq.features/1, expected "
                                              "jaxeq.features/2.*python -m data_prep.features"):
    dataset.load_split(tmp_path, "train")


def test_features_hold_every_clip_spectrum_and_window(smoke, smoke_features):
  rows = manifest.read_manifest(smoke)
  for split in plan.SPLITS:
    folder = smoke_features / split
    spectra = np.load(folder / "spectra.npy", mmap_mode="r")
    windows = np.load(folder / "windows.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy")
    window_clip = np.load(folder / "window_clip.npy")
    split_rows = [r for r in rows if r["split"] == split]
    assert spectra.shape == (len(split_rows), 256) and spectra.dtype == np.float32
    assert windows.shape == (len(split_rows), 256, 256) and windows.dtype == np.float16
    assert window_clip.tolist() == list(range(len(split_rows)))  # one 6 s window a 2 s clip
    assert labels.tolist() == [jaxeq.CLASSES.index(r["class"]) for r in split_rows]
    info = json.loads((folder / "info.json").read_text())
    assert (info["clips"], info["windows"], info["skipped"]) == (len(split_rows),) * 2 + ([],)
    assert not (folder / "parts").exists()
  index = (smoke_features / "test" / "index.csv").read_text().splitlines()
  test_rows = [r for r in rows if r["split"] == "test"]
  assert len(index) == len(test_rows) + 1
  assert index[0].endswith("class_index,window_start,window_count")
  # Each row is what jaxeq computes from the clip's file.
  row = [r for r in rows if r["split"] == "test"][7]
  audio, rate = jaxeq.load_audio(smoke / row["path"])
  np.testing.assert_array_equal(np.load(smoke_features / "test/spectra.npy")[7],
                                jaxeq.long_term_spectrum(audio, rate))
  # ... and its noise floor, which fine-tuning builds its corrections with, as inference does.
  np.testing.assert_array_equal(np.load(smoke_features / "test/noise_floors.npy")[7],
                                spectrum_and_noise_floor(audio, rate)[1])
  np.testing.assert_array_equal(np.load(smoke_features / "test/windows.npy")[7],
                                jaxeq.log_spectrogram_windows(audio, rate)[0].astype(np.float16))


def test_features_resume_from_saved_chunks_and_skip_finished_splits(smoke, smoke_features):
  rows = [r for r in manifest.read_manifest(smoke) if r["split"] == "validation"]
  folder = smoke_features / "validation"
  before = {name: np.load(folder / f"{name}.npy") for name in ("spectra", "windows", "labels")}
  train_mtime = (smoke_features / "train" / "windows.npy").stat().st_mtime_ns
  # An interrupted run: the first chunk saved, the split not finished.
  (folder / "info.json").unlink()
  digest = features._digest(rows, 8)
  part = folder / "parts" / f"{digest[:16]}-000000.npz"
  part.parent.mkdir()
  features._featurize_chunk((str(smoke), [r["path"] for r in rows[:features.CHUNK]], str(part), 8))
  with np.load(part) as saved:
    marked = {name: saved[name] for name in saved.files}
  marked["spectra"][0] = 1234.0  # proves the saved chunk is used, not recomputed
  with open(part, "wb") as f:
    np.savez(f, **marked)
  result = run("features", smoke, "--workers", 1)
  assert "train: up to date" in result.stdout
  assert (smoke_features / "train" / "windows.npy").stat().st_mtime_ns == train_mtime
  spectra = np.load(folder / "spectra.npy")
  assert spectra[0, 0] == 1234.0
  np.testing.assert_array_equal(spectra[1:], before["spectra"][1:])
  np.testing.assert_array_equal(np.load(folder / "windows.npy"), before["windows"])


def test_features_leave_out_unreadable_clips_and_say_so(smoke, tmp_path):
  rows = [r for r in manifest.read_manifest(smoke) if r["split"] == "train"][:3]
  for row in rows[:2]:
    (tmp_path / row["path"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(smoke / row["path"], tmp_path / row["path"])
  (tmp_path / rows[2]["path"]).parent.mkdir(parents=True, exist_ok=True)
  (tmp_path / rows[2]["path"]).write_bytes(b"not audio")
  manifest.write_manifest(tmp_path / "manifest.csv", rows)
  result = run("features", tmp_path, "--workers", 1)
  assert "not a readable audio file" in result.stderr and rows[2]["path"] in result.stderr
  index = (tmp_path / "features/train/index.csv").read_text().splitlines()
  assert len(index) == 3 and rows[2]["path"] not in "".join(index)
  assert np.load(tmp_path / "features/train/spectra.npy").shape == (2, 256)


def test_a_description_with_a_carriage_return_or_comma_reads_back_intact(smoke, tmp_path):
  # A music21 part name once held a bare "\r", which split its manifest row in two.
  rows = [r for r in manifest.read_manifest(smoke) if r["split"] == "train"][:2]
  for row in rows:
    (tmp_path / row["path"]).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(smoke / row["path"], tmp_path / row["path"])
  rows[0] = {**rows[0], "material": "corpus bach/bwv171.6.mxl: Tenor\rViola, solo"}
  manifest.write_manifest(tmp_path / "manifest.csv", rows)
  read = manifest.read_manifest(tmp_path)
  assert [r["path"] for r in read] == [r["path"] for r in rows]
  assert read[0]["material"] == "corpus bach/bwv171.6.mxl: Tenor\nViola, solo"
  assert read[1] == rows[1]
  run("features", tmp_path, "--workers", 1)
  split = dataset.load_split(tmp_path, "train")
  assert [r["material"] for r in split.rows] == [r["material"] for r in read]
