"""Ingesting user-owned audio: a folder per class, MedleyDB and Slakh2100 trees made here."""

from pathlib import Path

import numpy as np
import pytest
import yaml

import jaxeq
from data_prep import ingest, manifest


def tone(path: Path, seconds: float = 1.0, rate: int = 44100, channels: int = 1, freq=220.0):
  t = np.arange(int(seconds * rate)) / rate
  audio = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
  jaxeq.save_audio(path, np.stack([audio] * channels, axis=1) if channels > 1 else audio, rate)


def write_yaml(path: Path, data) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(yaml.safe_dump(data))


def ingest_tree(source, root, out, *extra):
  code = ingest.main([source, str(root), "--out", str(out), "--workers", "1", *extra])
  report = (out / "ingest_report.txt").read_text()
  return code, report


def resolve(out: Path, row: dict) -> Path:
  return (out / row["path"]).resolve()


def test_folder_per_class_ingests_known_classes_and_reports_the_rest(tmp_path):
  root, out = tmp_path / "mine", tmp_path / "dataset"
  tone(root / "violin" / "take1.wav", channels=2)
  tone(root / "violin" / "deep" / "take2.flac", rate=48000)
  tone(root / "Kick" / "k.wav")
  tone(root / "banjo" / "b.wav")
  (root / "violin" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
  jaxeq.save_audio(root / "violin" / "silence.wav", np.zeros(44100, np.float32), 44100)
  (root / "violin" / "notes.txt").write_text("not audio, ignored")
  code, report = ingest_tree("folder", root, out, "--reference")
  assert code == 0
  rows = manifest.read_manifest(out)
  assert sorted((r["class"], Path(r["path"]).name) for r in rows) == [
      ("kick", "k.wav"), ("violin", "take1.wav"), ("violin", "take2.flac")]
  for row in rows:
    assert resolve(out, row).is_file()
    assert row["reference"] == "1" and row["colouration"] == "" and row["bank"] == ""
    song = str(resolve(out, row).relative_to(root.resolve()))  # each file is its own song
    assert row["split"] == ingest.assign_split(song, 0)
  assert {r["sample_rate"] for r in rows} == {"44100", "48000"}
  assert "unknown class folder 'banjo'" in report
  assert "broken.wav: not a readable audio file" in report
  assert "silence.wav: silent" in report
  assert "notes.txt" not in report
  assert "skipped 3" in report


def test_split_folders_keep_their_split(tmp_path):
  root, out = tmp_path / "mine", tmp_path / "dataset"
  tone(root / "train" / "cello" / "a.wav")
  tone(root / "test" / "cello" / "b.wav")
  tone(root / "misc" / "c.wav")
  code, report = ingest_tree("folder", root, out)
  assert code == 0
  rows = manifest.read_manifest(out)
  assert sorted((r["split"], Path(r["path"]).name) for r in rows) == [("test", "b.wav"),
                                                                        ("train", "a.wav")]
  assert "not a split folder" in report


def medleydb_tree(root: Path) -> None:
  """MedleyDB's layout: metadata apart from the audio, stems and raw tracks per song."""
  for song, stems in {
      "Band_Song": {"S01": ("clean electric guitar", ["clean electric guitar"]),
                    "S02": ("synthesizer", ["synthesizer"]),
                    "S03": ("drum set", ["kick drum", "snare drum"])},
      "Other_Tune": {"S01": ("cello", ["cello"]), "S02": ("flute", ["flute"])},
  }.items():
    meta = {"artist": song.split("_")[0], "stem_dir": f"{song}_STEMS", "raw_dir": f"{song}_RAW",
            "stems": {}}
    for sid, (label, raw_labels) in stems.items():
      n = sid[1:]
      raw = {f"R{k + 1:02d}": {"filename": f"{song}_RAW_{n}_{k + 1:02d}.wav", "instrument": lab}
             for k, lab in enumerate(raw_labels)}
      meta["stems"][sid] = {"filename": f"{song}_STEM_{n}.wav", "instrument": label, "raw": raw}
      if not (song == "Other_Tune" and sid == "S02"):  # one stem missing from the audio
        tone(root / "Audio" / song / f"{song}_STEMS" / f"{song}_STEM_{n}.wav")
      for r in raw.values():
        tone(root / "Audio" / song / f"{song}_RAW" / r["filename"])
    write_yaml(root / "Metadata" / f"{song}_METADATA.yaml", meta)
  (root / "Metadata" / "Broken_METADATA.yaml").write_text("stems: [unclosed\n")


def test_medleydb_stems_map_labels_and_keep_songs_in_one_split(tmp_path):
  root, out = tmp_path / "MedleyDB", tmp_path / "dataset"
  medleydb_tree(root)
  code, report = ingest_tree("medleydb", root, out)
  assert code == 0
  rows = manifest.read_manifest(out)
  assert sorted((r["class"], r["material"]) for r in rows) == [
      ("cello", "medleydb:cello"), ("drum_kit", "medleydb:drum set"),
      ("electric_guitar_clean", "medleydb:clean electric guitar")]
  for row in rows:
    song = Path(row["path"]).name.rsplit("_STEM", 1)[0]
    assert row["split"] == ingest.assign_split(song, 0)
  assert "unknown label 'synthesizer'" in report
  assert "Other_Tune_STEM_02.wav: no such file" in report
  assert "Broken_METADATA.yaml: unreadable metadata" in report


def test_medleydb_raw_tracks(tmp_path):
  root, out = tmp_path / "MedleyDB", tmp_path / "dataset"
  medleydb_tree(root)
  code, report = ingest_tree("medleydb", root, out, "--level", "raw")
  assert code == 0
  rows = manifest.read_manifest(out)
  assert sorted(r["class"] for r in rows) == [
      "cello", "electric_guitar_clean", "flute", "kick", "snare"]
  # The raw tracks of one song share its split.
  splits = {r["split"] for r in rows if "Band_Song" in r["path"]}
  assert len(splits) == 1
  assert "unknown label 'synthesizer'" in report


def test_slakh_stems_by_program_name_with_its_splits(tmp_path):
  root, out = tmp_path / "slakh2100_flac_redux", tmp_path / "dataset"
  stems = {
      "S00": {"midi_program_name": "Acoustic Grand Piano", "program_num": 0, "is_drum": False,
              "audio_rendered": True, "inst_class": "Piano"},
      "S01": {"midi_program_name": "Drums", "program_num": 0, "is_drum": True,
              "audio_rendered": True, "inst_class": "Drums"},
      "S02": {"midi_program_name": "String Ensemble 1", "program_num": 48, "is_drum": False,
              "audio_rendered": False, "inst_class": "Strings (continued)"},
      "S03": {"midi_program_name": "Electric Bass (finger)", "program_num": 33,
              "is_drum": False, "audio_rendered": True, "inst_class": "Bass"},
  }
  for split, track in (("train", "Track00001"), ("validation", "Track01501")):
    write_yaml(root / split / track / "metadata.yaml",
               {"UUID": "x", "audio_dir": "stems", "midi_dir": "MIDI", "stems": stems})
    for sid in ("S00", "S01"):
      tone(root / split / track / "stems" / f"{sid}.flac")
    (root / split / track / "stems" / "S03.flac").write_bytes(b"fLaC but not really")
  code, report = ingest_tree("slakh", root, out)
  assert code == 0
  rows = manifest.read_manifest(out)
  # Slakh2100's drum stems are whole kits: drum_kit.
  assert sorted((r["split"], r["class"]) for r in rows) == [
      ("train", "acoustic_piano"), ("train", "drum_kit"), ("validation", "acoustic_piano"),
      ("validation", "drum_kit")]
  details = [line for line in report.splitlines() if line.startswith(str(root))]
  assert sum(line.endswith("S02: not rendered in Slakh2100") for line in details) == 2
  assert sum("S03.flac: not a readable audio file" in line for line in details) == 2
  assert "unknown label" not in report


def test_nothing_to_ingest_is_an_error_not_a_crash(tmp_path, capsys):
  root = tmp_path / "empty"
  root.mkdir()
  assert ingest.main(["slakh", str(root), "--out", str(tmp_path / "d")]) == 1
  assert "nothing to ingest" in capsys.readouterr().err
  assert ingest.main(["folder", str(tmp_path / "absent"), "--out", str(tmp_path / "d")]) == 2


def test_split_assignment_is_stable_and_near_the_fractions():
  splits = [ingest.assign_split(f"song{i}", 0) for i in range(2000)]
  assert splits == [ingest.assign_split(f"song{i}", 0) for i in range(2000)]
  assert splits.count("train") / 2000 == pytest.approx(0.8, abs=0.03)
  assert splits.count("validation") / 2000 == pytest.approx(0.1, abs=0.03)
