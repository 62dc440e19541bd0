"""The `jaxeq` command (apply, process, targets build), run as a user runs it."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import soundfile as sf

import jaxeq
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
  assert "to keep its true peak under -0.1 dBTP" in ok.stderr
  out, _ = sf.read(tmp_path / "out" / "loud.wav")
  assert np.max(np.abs(out)) < 1.0
  # A lossy output keeps 1 dB of headroom, so that it decodes within full scale.
  sf.write(tmp_path / "loud.ogg", loud, 44100)
  lossy = _jaxeq("apply", "loud.ogg", "--eq", "boost.json", "--out", "out", cwd=tmp_path)
  assert lossy.returncode == 0 and "under -1 dBTP" in lossy.stderr
  out, _ = sf.read(tmp_path / "out" / "loud.ogg")
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
  own = [name for name in bank.classes if bank.origin(name) == "reference tracks"]
  assert own == ["kick", "hihat"] and len(bank.classes) == len(jaxeq.CLASSES)
  assert [bank.counts[bank.classes.index(name)] for name in own] == [2, 2]
  assert bank.target("hihat")[-1] > bank.target("kick")[-1] + 10
  assert (tmp_path / "bank.png").stat().st_size > 10_000


def test_skip_existing_resumes_a_batch_and_quiet_keeps_only_errors_and_the_total(tmp_path):
  rng = np.random.default_rng(2)
  (tmp_path / "in" / "kit").mkdir(parents=True)
  for name in ("a.wav", "kit/b.wav", "kit/c.wav"):
    sf.write(tmp_path / "in" / name, 0.1 * rng.standard_normal(8000), 44100)
  (tmp_path / "in" / "broken.wav").write_bytes(b"not audio")
  EQ([Band("peak", 1000, -3.0, 1.0)]).save(tmp_path / "eq.json")
  first = _jaxeq("apply", "in", "--eq", "eq.json", "--out", "out", cwd=tmp_path)
  assert first.returncode == 1
  assert "in/kit/b.wav: out/kit/b.wav" in first.stdout.splitlines()
  assert first.stdout.splitlines()[-1] == "apply: 3 of 4 tracks written to out, 1 failed"

  # An interrupted batch: one output never written, another left from an earlier run.
  (tmp_path / "out" / "kit" / "c.wav").unlink()
  kept = (tmp_path / "out" / "a.wav").stat().st_mtime_ns
  again = _jaxeq("apply", "in", "--eq", "eq.json", "--out", "out", "--skip-existing",
                 "--quiet", cwd=tmp_path)
  assert again.returncode == 1
  assert again.stdout.splitlines() == [
      "apply: 1 of 4 tracks written to out, 2 skipped (their outputs exist), 1 failed"]
  assert "broken.wav" in again.stderr  # errors still print
  assert (tmp_path / "out" / "kit" / "c.wav").exists()
  assert (tmp_path / "out" / "a.wav").stat().st_mtime_ns == kept


def test_a_silent_reference_is_named_before_the_models_load(tmp_path):
  sf.write(tmp_path / "track.wav", 0.1 * np.random.default_rng(3).standard_normal(44100), 44100)
  sf.write(tmp_path / "quiet.wav", np.zeros(44100), 44100)
  result = _jaxeq("analyze", "track.wav", "--reference", "quiet.wav", cwd=tmp_path)
  assert result.returncode == 2 and "Traceback" not in result.stderr
  assert result.stderr.startswith("jaxeq: --reference: quiet.wav: audio is silent")


def test_a_reference_with_no_band_in_common_is_refused_naming_it(tmp_path):
  rate = 44100
  noise = np.random.default_rng(4).standard_normal(2 * rate)
  bins = np.fft.rfftfreq(len(noise), 1 / rate)
  sf.write(tmp_path / "rumble.wav", 0.3 * np.fft.irfft(np.fft.rfft(noise) * (bins < 80)), rate)
  sf.write(tmp_path / "hiss.wav", 0.1 * np.fft.irfft(np.fft.rfft(noise) * (bins > 10000)), rate)
  result = _jaxeq("analyze", "rumble.wav", "--reference", "hiss.wav", cwd=tmp_path)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  line, = [line for line in result.stderr.splitlines() if "rumble.wav" in line]
  assert "--reference hiss.wav" in line and "octaves of audible band" in line


def _real_drums(kit: str, *names: str) -> list:
  from data_prep import fetch
  return [fetch.source_dir("hydrogen-drumkits") / kit / name for name in names]


def test_a_bank_of_some_classes_keeps_the_shipped_targets_for_the_others(tmp_path):
  """Real snare and kick recordings (a training kit's) make a bank of two classes; a snare
  of another kit and a real violin note are processed with it."""
  from data_prep import fetch
  from jaxeq.targets import SHIPPED_FALLBACK, TargetBank, load_targets
  refs = tmp_path / "refs"
  for folder, names in (("Snare", ["SN_06.aiff", "SN_07.aiff", "SN_08.aiff"]),
                        ("kick", ["BD_06.aiff", "BD_07.aiff"])):
    (refs / folder).mkdir(parents=True)
    for path in _real_drums("BJA_Pacific", *names):
      shutil.copy(path, refs / folder)
  built = _jaxeq("targets", "build", "refs", "--out", "bank.npz", cwd=tmp_path)
  assert built.returncode == 0, built.stderr
  assert "the shipped targets for the 35 other classes" in built.stdout
  bank, shipped = TargetBank.load(tmp_path / "bank.npz"), load_targets()
  assert set(bank.classes) == set(shipped.classes)
  assert [bank.counts[bank.classes.index(name)] for name in ("kick", "snare")] == [2, 3]
  assert bank.origin("snare") == bank.origin("kick") == "reference tracks"
  assert bank.origin("violin") == SHIPPED_FALLBACK
  np.testing.assert_array_equal(bank.target("violin"), shipped.target("violin"))
  assert np.max(np.abs(bank.target("snare") - shipped.target("snare"))) > 1.0
  assert (tmp_path / "bank.png").read_bytes()[:4] == b"\x89PNG"

  inputs = tmp_path / "in"
  inputs.mkdir()
  shutil.copy(*_real_drums("ColomboAcousticDrumkit", "snare-opaque-normal-mic-normal_shot3.flac"),
              inputs / "snare.flac")
  snare = _jaxeq("process", "in", "--targets", "bank.npz", "--instrument", "snare", "--out",
                 "out", cwd=tmp_path)
  assert snare.returncode == 0, snare.stderr
  assert snare.stdout.startswith("in/snare.flac: snare (given)")
  assert "shipped bank" not in snare.stdout  # the snare's target is the bank's own
  analysis = json.loads((tmp_path / "out" / "snare.analysis.json").read_text())
  np.testing.assert_allclose(analysis["target"], bank.target("snare"), atol=1e-3)

  # The classifier, and a class the bank lacks; the snare is done (and skipped).
  violin, rate = jaxeq.load_audio(fetch.source_dir("tonejs-violin") / "A4.mp3")
  sf.write(inputs / "violin.wav", violin[:2 * rate], rate)
  both = _jaxeq("process", "in", "--targets", "bank.npz", "--out", "out", "--skip-existing",
                cwd=tmp_path)
  assert both.returncode == 0, both.stderr
  line, total = both.stdout.splitlines()
  assert line.startswith("in/violin.wav: violin ")
  fallback = line.split("; target of ")[1].split(" from the shipped bank (not in --targets)")[0]
  assert "violin" in fallback.split(", ")
  assert total == "process: 1 of 2 tracks written to out, 1 skipped (their outputs exist)"


def test_targets_build_refuses_unknown_folders_and_a_missing_out_folder(tmp_path, monkeypatch,
                                                                        capsys):
  from jaxeq.cli import main
  monkeypatch.chdir(tmp_path)

  def build(out) -> str:
    assert main(["targets", "build", "refs", "--out", out]) == 2
    return capsys.readouterr().err

  rng = np.random.default_rng(4)
  for folder in ("snare", "not_a_class", "snar"):
    (tmp_path / "refs" / folder).mkdir(parents=True)
    sf.write(tmp_path / "refs" / folder / "a.wav", 0.1 * rng.standard_normal(44100), 44100)
  line, = build("bank.npz").splitlines()
  assert "refs/not_a_class: unknown class folder 'not_a_class'" in line
  assert "refs/snar: unknown class folder 'snar': did you mean harp or snare?" in line
  assert "the class folders: acoustic_piano, " in line and line.endswith(", vocals, drum_kit)")
  assert not (tmp_path / "bank.npz").exists()

  shutil.rmtree(tmp_path / "refs" / "not_a_class")
  shutil.rmtree(tmp_path / "refs" / "snar")
  assert build("no/such/bank.npz") == (
      "jaxeq: --out no/such/bank.npz: the folder no/such does not exist\n")
  (tmp_path / "file").write_text("in the way")
  assert build("file/bank.npz") == "jaxeq: --out file/bank.npz: file is not a folder\n"
  (tmp_path / "folder.npz").mkdir()
  assert build("folder.npz").startswith("jaxeq: --out folder.npz: cannot write it")


def test_process_exports_presets_that_sound_as_the_eq_and_refuses_unknown_exports(tmp_path):
  """`--export lv2-x42,lv2-lsp,apo` writes the presets beside the track; each one the plug-in
  holds renders as the saved EQ, and one it cannot hold is one line and no bundle."""
  from data_prep import fetch  # the real recordings `make sources` fetches
  from test_presets import deviation_db, measured_db
  from jaxeq import presets
  (tmp_path / "in").mkdir()
  violin, rate = sf.read(fetch.source_dir("tonejs-violin") / "A4.mp3", dtype="float32")
  sf.write(tmp_path / "in" / "violin.wav", violin[: 3 * rate], rate, subtype="PCM_16")

  refused = _jaxeq("process", "in", "--out", "out", "--export", "apo,vst3", cwd=tmp_path)
  assert refused.returncode == 2 and not (tmp_path / "out").exists()
  assert refused.stderr.strip() == ("jaxeq: --export apo,vst3: unknown export 'vst3'; expected "
                                    "a comma-separated list of apo, lv2-x42, lv2-lsp")

  result = _jaxeq("process", "in", "--instrument", "violin", "--out", "out", "--workers", "1",
                  "--export", "lv2-x42,lv2-lsp,apo", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  out = tmp_path / "out"
  eq = EQ.load(out / "violin.eq.json")
  assert (out / "violin.ParametricEQ.txt").read_text().startswith("Preamp:")
  for name, plugin in (("lsp-eq", "lsp"), ("x42-eq", "x42")):
    bundle = out / f"violin.{name}.lv2"
    try:
      presets.port_values(eq, plugin, rate)
    except ValueError as e:  # x42-eq's knobs are narrower than paper4's ranges
      assert not bundle.exists()
      assert f"jaxeq: in/violin.wav: no lv2-{plugin} preset: {e}" in result.stderr.splitlines()
      continue
    assert sorted(p.name for p in bundle.iterdir()) == ["jaxeq_violin.ttl", "manifest.ttl"]
    assert (bundle / "jaxeq_violin.ttl").read_text() == eq.to_lv2(plugin, rate, "jaxeq violin")
    freqs, measured = measured_db(eq, plugin, rate, tmp_path / plugin)
    assert deviation_db(eq, freqs, measured, rate) <= 0.5
  assert (out / "violin.lsp-eq.lv2").is_dir()  # 16 filters hold any paper4 EQ

  # Twelve bands are more than x42-eq holds: one line, and the earlier run's bundle, which is
  # not this EQ, goes.
  twelve = _jaxeq("process", "in", "--instrument", "violin", "--layout", "nercessian12", "--out",
                  "out", "--workers", "1", "--export", "lv2-x42", cwd=tmp_path)
  assert twelve.returncode == 0, twelve.stderr
  assert [line for line in twelve.stderr.splitlines() if line.startswith("jaxeq:")] == [
      "jaxeq: in/violin.wav: no lv2-x42 preset: x42-eq cannot hold 10 peaks: it has 4 "
      "parametric sections"]
  assert not (out / "violin.x42-eq.lv2").exists()

  # EqualizerAPO alone stays the default.
  plain = _jaxeq("process", "in", "--instrument", "violin", "--out", "plain", "--workers", "1",
                 cwd=tmp_path)
  assert plain.returncode == 0, plain.stderr
  assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
      "jaxeq_summary.png", "violin.ParametricEQ.txt", "violin.analysis.json", "violin.eq.json",
      "violin.wav"]


def test_the_summary_shows_every_track_and_its_instrument(tmp_path, capsys):
  """One page per run: a panel per track, titled with the instrument as the analysis heard it;
  never written over a track's own output."""
  import matplotlib.image
  from jaxeq import cli
  from jaxeq.plots import plot_summary
  assert cli._heard({"instrument": "kick", "confidence": 0.934}) == "kick 93%"
  assert cli._heard({"instrument": "violin", "confidence": None}) == "violin (given)"
  assert cli._heard({"instrument": None, "confidence": None}) == "matched to a reference"
  eq = EQ([Band("low_shelf", 100, 3.0), Band("peak", 1000, -4.0, 2.0)])
  plot_summary([("a.wav", "kick 93%", eq)] * 2, tmp_path / "two.png")
  plot_summary([("a.wav", "kick 93%", eq)] * 9, tmp_path / "nine.png")
  two, nine = (matplotlib.image.imread(tmp_path / f"{n}.png") for n in ("two", "nine"))
  assert nine.shape[0] > 2 * two.shape[0]  # three rows of panels against one
  assert sorted(p.name for p in tmp_path.iterdir()) == ["nine.png", "two.png"]  # no temporary

  out = tmp_path / "out"
  out.mkdir()
  (out / "kick.analysis.json").write_text(json.dumps({"instrument": "kick", "confidence": 0.9,
                                                      "eq": eq.to_dict()}))
  kick = [out / "kick.wav", out / "kick.eq.json", out / "kick.analysis.json"]
  assert cli._write_summary(out, [(tmp_path / "kick.wav", kick)]) == 0
  assert (out / "jaxeq_summary.png").exists()
  clash = [out / "jaxeq_summary.wav", out / "x.eq.json", out / "kick.analysis.json",
           out / "jaxeq_summary.png"]
  before = (out / "jaxeq_summary.png").read_bytes()
  assert cli._write_summary(out, [(tmp_path / "jaxeq_summary.wav", clash)]) == 1
  assert (out / "jaxeq_summary.png").read_bytes() == before
  assert capsys.readouterr().err.strip() == (
      f"jaxeq: {out / 'jaxeq_summary.png'}: not written: a track's output has that name")


def test_the_command_keeps_what_jax_compiles_in_its_cache(tmp_path):
  """A later run loads the compiled programs instead of compiling them again: every one is
  kept, however small, in $JAXEQ_JAX_CACHE (~/.cache/jaxeq/jax), or in JAX's own
  JAX_COMPILATION_CACHE_DIR when that is set."""
  sf.write(tmp_path / "track.wav", 0.1 * np.random.default_rng(0).standard_normal(22050), 22050)
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
  env["JAXEQ_JAX_CACHE"] = str(tmp_path / "cache")
  result = subprocess.run([sys.executable, "-m", "jaxeq", "analyze", "track.wav", "--instrument",
                           "snare"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr
  assert "jaxeq:" not in result.stderr
  kept = {path.name.split("-")[0] for path in (tmp_path / "cache").iterdir()}
  assert "jit_audible_weight" in kept  # a few element-wise steps: compiled in milliseconds

  env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "jax")
  code = ("from jaxeq import cli; cli.use_compilation_cache(); import jax.numpy as jnp; "
          "jnp.sin(jnp.arange(3.0)).block_until_ready()")
  subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=120)
  assert any(path.name.startswith("jit_sin") for path in (tmp_path / "jax").iterdir())
