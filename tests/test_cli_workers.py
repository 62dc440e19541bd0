"""`jaxeq process --workers N`: a folder spread over processes gives what one process gives."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import jaxeq


def _jaxeq(*args, cwd):
  return subprocess.run([sys.executable, "-m", "jaxeq", *map(str, args)], cwd=cwd,
                        capture_output=True, text=True, timeout=300)


def _jaxeq_here(*args, cwd, monkeypatch, capsys):
  """The command's `main` in this process (one worker needs no other), as `_jaxeq` reports it."""
  from jaxeq import cli
  monkeypatch.chdir(cwd)
  capsys.readouterr()
  code = cli.main(list(map(str, args)))
  out, err = capsys.readouterr()
  return subprocess.CompletedProcess(args, code, out, err)


def test_two_workers_write_what_one_does_and_report_a_corrupt_file(tmp_path, monkeypatch,
                                                                   capsys):
  from data_prep import fetch
  drums = fetch.source_dir("hydrogen-drumkits")
  inputs = tmp_path / "in"
  (inputs / "kit").mkdir(parents=True)
  shutil.copy(drums / "ColomboAcousticDrumkit" / "snare-opaque-normal-mic-normal_shot3.flac",
              inputs / "kit" / "snare.flac")
  shutil.copy(drums / "BJA_Pacific" / "BD_06.aiff", inputs / "kit" / "kick.aiff")
  violin, rate = jaxeq.load_audio(fetch.source_dir("tonejs-violin") / "A4.mp3")
  sf.write(inputs / "violin.wav", violin[:2 * rate], rate, subtype="PCM_24")
  (inputs / "broken.wav").write_bytes(b"RIFF, but not audio")
  outputs = [".eq.json", ".analysis.json", ".ParametricEQ.txt"]

  one = _jaxeq_here("process", "in", "--out", "one", "--workers", "1", cwd=tmp_path,
                    monkeypatch=monkeypatch, capsys=capsys)
  # Two workers resume the batch: the kick is done, the snare and the violin are not.
  for suffix in [".aiff", *outputs]:
    (tmp_path / "two" / "kit").mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "one" / "kit" / f"kick{suffix}", tmp_path / "two" / "kit")
  two = _jaxeq("process", "in", "--out", "two", "--workers", "2", "--skip-existing",
               cwd=tmp_path)

  for run, written, done in ((one, "3 of 4 tracks written to one", ["kit/kick.aiff"]),
                             (two, "2 of 4 tracks written to two, 1 skipped (their outputs "
                              "exist)", [])):
    assert run.returncode == 1, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("jaxeq:")]
    assert len(errors) == 1 and "in/broken.wav" in errors[0], run.stderr
    assert "not a readable audio file" in errors[0] and "Traceback" not in run.stderr
    *lines, total = run.stdout.splitlines()
    assert total == f"process: {written}, 1 failed"
    # One line per track, whichever worker did it.
    assert sorted(line.split(": ")[0] for line in lines) == sorted(
        f"in/{track}" for track in ["kit/snare.flac", "violin.wav", *done])
  for track in ("kit/snare.flac", "violin.wav"):
    stem = Path(track).with_suffix("")
    for suffix in [".eq.json", ".analysis.json"]:
      assert ((tmp_path / "one" / f"{stem}{suffix}").read_text()
              == (tmp_path / "two" / f"{stem}{suffix}").read_text()), (track, suffix)
    np.testing.assert_allclose(sf.read(tmp_path / "one" / track)[0],
                               sf.read(tmp_path / "two" / track)[0], atol=1e-6)
