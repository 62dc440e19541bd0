"""The `jaxeq apply` command, run as a user runs it."""

import subprocess
import sys

import numpy as np
import soundfile as sf

from jaxeq import EQ, Band, apply_eq


def _jaxeq(*args, cwd):
  return subprocess.run([sys.executable, "-m", "jaxeq", *map(str, args)], cwd=cwd,
                        capture_output=True, text=True, timeout=120)


def test_apply_processes_good_files_and_reports_bad_ones(tmp_path):
  rng = np.random.default_rng(0)
  inputs = tmp_path / "in"
  (inputs / "sub").mkdir(parents=True)
  stereo = (0.1 * rng.standard_normal((48000, 2))).astype(np.float32)
  sf.write(inputs / "a.wav", stereo, 48000, subtype="PCM_24")
  sf.write(inputs / "sub" / "b.flac", stereo[:, 0], 22050, subtype="PCM_16")
  (inputs / "broken.wav").write_bytes(b"not audio at all")
  before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
  eq = EQ([Band("low_shelf", 100, 3.0), Band("peak", 1000, -4.0, 2.0)])
  eq.save(tmp_path / "eq.json")

  result = _jaxeq("apply", inputs, "--eq", tmp_path / "eq.json", "--out", tmp_path / "out",
                  cwd=tmp_path)

  assert result.returncode == 1
  errors = [line for line in result.stderr.splitlines() if line.startswith("jaxeq:")]
  assert len(errors) == 1 and "broken.wav" in errors[0] and "not a readable audio file" in errors[0]
  assert "Traceback" not in result.stderr
  a = sf.info(tmp_path / "out" / "a.wav")
  assert (a.samplerate, a.channels, a.frames, a.subtype) == (48000, 2, 48000, "PCM_24")
  b = sf.info(tmp_path / "out" / "sub" / "b.flac")  # the input tree is kept
  assert (b.samplerate, b.channels, b.subtype, b.format) == (22050, 1, "PCM_16", "FLAC")
  processed, _ = sf.read(tmp_path / "out" / "a.wav", dtype="float32")
  original, _ = sf.read(inputs / "a.wav", dtype="float32")
  np.testing.assert_allclose(processed, apply_eq(original, 48000, eq), atol=1e-4)
  assert before == {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}


def test_folder_mode_keeps_the_input_tree_and_refuses_shared_outputs(tmp_path):
  rng = np.random.default_rng(1)
  kits = tmp_path / "drums"
  for kit, level in (("kitA", 0.1), ("kitB", 0.3)):
    (kits / kit).mkdir(parents=True)
    sf.write(kits / kit / "kick.wav", level * rng.standard_normal(8000), 44100)
  EQ([Band("peak", 1000, -3.0, 1.0)]).save(tmp_path / "eq.json")

  result = _jaxeq("apply", kits, "--eq", "eq.json", "--out", "out", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  a, _ = sf.read(tmp_path / "out" / "kitA" / "kick.wav")
  b, _ = sf.read(tmp_path / "out" / "kitB" / "kick.wav")
  assert 2 < np.std(b) / np.std(a) < 4  # each kit's kick is its own

  # kick.wav and kick.flac would share kick.eq.json: refused before any work, both named.
  sf.write(kits / "kitA" / "kick.flac", rng.standard_normal(8000) * 0.1, 44100)
  clash = _jaxeq("apply", kits, "--eq", "eq.json", "--out", "clash", cwd=tmp_path)
  assert clash.returncode == 2 and "Traceback" not in clash.stderr
  assert "kitA/kick.flac" in clash.stderr and "kitA/kick.wav" in clash.stderr
  assert not (tmp_path / "clash").exists() or not any((tmp_path / "clash").rglob("*.wav"))
  # Two files of the same name given on the command line: refused the same way.
  same = _jaxeq("apply", kits / "kitA" / "kick.wav", kits / "kitB" / "kick.wav", "--eq",
                "eq.json", "--out", "same", cwd=tmp_path)
  assert same.returncode == 2 and "same outputs" in same.stderr

  # An --out that cannot be written is named before any track is read.
  (tmp_path / "blocked").write_text("a file where the folder should be")
  blocked = _jaxeq("apply", kits / "kitB", "--eq", "eq.json", "--out", "blocked/out",
                   cwd=tmp_path)
  assert blocked.returncode == 2 and "--out blocked/out" in blocked.stderr
  assert "Traceback" not in blocked.stderr


def test_apply_never_overwrites_its_input_and_never_clips(tmp_path):
  loud = np.full(44100, 0.9, np.float32) * np.sin(np.linspace(0, 2000, 44100)).astype(np.float32)
  sf.write(tmp_path / "loud.wav", loud, 44100, subtype="PCM_16")
  original = (tmp_path / "loud.wav").read_bytes()
  EQ([Band("peak", 14, 12.0, 0.5), Band("peak", 50, 12.0, 0.5)]).save(tmp_path / "boost.json")

  same = _jaxeq("apply", "loud.wav", "--eq", "boost.json", "--out", ".", cwd=tmp_path)
  assert same.returncode == 1 and "refusing to overwrite the input" in same.stderr
  assert (tmp_path / "loud.wav").read_bytes() == original

  ok = _jaxeq("apply", "loud.wav", "--eq", "boost.json", "--out", "out", cwd=tmp_path)
  assert ok.returncode == 0, ok.stderr
  assert "to avoid clipping" in ok.stderr
  out, _ = sf.read(tmp_path / "out" / "loud.wav")
  assert np.max(np.abs(out)) < 1.0


def test_bad_eq_file_is_one_line(tmp_path):
  (tmp_path / "eq.json").write_text('{"format": "jaxeq.eq/1", "bands": [{"kind": "x"}]}')
  result = _jaxeq("apply", ".", "--eq", "eq.json", "--out", "out", cwd=tmp_path)
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "eq.json" in result.stderr


def test_targets_build_from_a_folder_per_class(tmp_path):
  rng = np.random.default_rng(0)
  for name, gain in (("kick", -9.0), ("hihat", 9.0)):
    (tmp_path / "refs" / name).mkdir(parents=True)
    for i in range(2):
      noise = 0.1 * rng.standard_normal(44100)
      sf.write(tmp_path / "refs" / name / f"{i}.wav",
               apply_eq(noise, 44100, EQ([Band("high_shelf", 2000, gain)])), 44100)
  (tmp_path / "refs" / "hihat" / "silent.wav").parent.mkdir(exist_ok=True)
  sf.write(tmp_path / "refs" / "hihat" / "silent.wav", np.zeros(44100), 44100)

  result = _jaxeq("targets", "build", "refs", "--out", "bank.npz", cwd=tmp_path)

  assert result.returncode == 1  # one reference was unusable, and said so
  assert "silent.wav" in result.stderr and "silent" in result.stderr
  from jaxeq.targets import TargetBank
  bank = TargetBank.load(tmp_path / "bank.npz")
  assert bank.classes == ("hihat", "kick") and list(bank.counts) == [2, 2]
  assert bank.target("hihat")[-1] > bank.target("kick")[-1] + 10
  assert (tmp_path / "bank.png").stat().st_size > 10_000
