"""The exported presets, checked by running the real plug-ins headless.

An impulse goes through x42-eq (loaded from the preset bundle by `lv2file -P`, as a DAW loads
it) and through LSP Parametric Equalizer (`lv2apply`, given the preset's values: lv2file
cannot run LSP, lv2apply cannot run x42-eq's atom ports, and lilv must list the preset). Its
magnitude response must be within 0.5 dB of `EQ.response_db` from 20 Hz to 20 kHz (or
Nyquist) wherever the response lies within 30 dB of its maximum, for every shipped layout and
for 44.1, 48 and 96 kHz. The EqualizerAPO text is read back by a reader of its own (RBJ
biquads from the text alone) and held to the same bound. `make` installs the plug-ins and the
hosts from Debian (x42-plugins, lsp-plugins-lv2, lilv-utils, lv2file).
"""

import os
import re
import subprocess

import jax
import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from jaxeq import EQ, Band, presets
from jaxeq.layouts import BUILTIN, get_layout
from jaxeq.training.synthetic import sample_settings
from rbj_reference import rbj_ba

RATES = (44100, 48000, 96000)
TOLERANCE_DB = 0.5
WITHIN_DB = 30.0
# x42-eq glides to new settings over about 0.75 s (its shelves move 1 % a 32-sample block):
# the impulse comes after this much silence, once the preset has settled.
PRE_ROLL_S = 1.5
IMPULSE = 0.1  # well under full scale, so no host clips a boosted response


def measured_db(eq: EQ, plugin: str, rate: int, workdir) -> tuple[np.ndarray, np.ndarray]:
  """`(freqs, dB)`: the plug-in's magnitude response with `eq`'s preset, from an impulse."""
  workdir.mkdir(parents=True, exist_ok=True)
  pre, length = int(PRE_ROLL_S * rate), 1 << int(np.ceil(np.log2(rate)))
  x = np.zeros(pre + length, np.float32)
  x[pre] = IMPULSE
  sf.write(workdir / "in.wav", x, rate, subtype="FLOAT")
  label = f"test {plugin} {rate}"
  # Installed where a user installs it: HOME/.lv2/NAME.lv2/, which lilv searches.
  bundle_dir = workdir / ".lv2" / "test.lv2"
  bundle_dir.parent.mkdir(exist_ok=True)
  files = presets.bundle(eq, plugin, rate, label)
  presets.write_bundle_atomically(bundle_dir, files)
  env = {**os.environ, "HOME": str(workdir)}
  env.pop("LV2_PATH", None)
  uri = presets.PLUGINS[plugin]
  out = workdir / "out.wav"
  if plugin == "x42":
    command = ["lv2file", "--ignore-clipping", "-b", "4096", "-P",
               f"{label} ({rate / 1000:g} kHz)", "-i", workdir / "in.wav", "-o", out, uri]
  else:
    listed = subprocess.run(["lv2info", uri], env=env, capture_output=True, text=True, check=True)
    assert f"{label} ({rate / 1000:g} kHz)" in listed.stdout, "lilv does not list the preset"
    command = ["lv2apply", "-i", workdir / "in.wav", "-o", out]
    preset = next(text for name, text in files.items() if name != "manifest.ttl")
    for symbol, value in read_preset(preset, uri).items():
      command += ["-c", symbol, repr(value)]
    command.append(uri)
  out.unlink(missing_ok=True)
  subprocess.run(list(map(str, command)), env=env, capture_output=True, check=True, timeout=60)
  y, _ = sf.read(out, dtype="float64")
  h = y[pre:] / IMPULSE
  return np.fft.rfftfreq(len(h), 1 / rate), 20 * np.log10(np.abs(np.fft.rfft(h)) + 1e-30)


def read_preset(text: str, uri: str) -> dict[str, float]:
  """The port values of an LV2 preset as jaxeq writes it (a reader of our own, apart from
  jaxeq.presets), checking that it applies to `uri`."""
  assert "@prefix pset: <http://lv2plug.in/ns/ext/presets#>" in text
  assert re.search(r"a pset:Preset", text) and f"lv2:appliesTo <{uri}>" in text
  pairs = re.findall(r'\[\s*lv2:symbol\s+"([^"]+)"\s*;\s*pset:value\s+([-+0-9.eE]+)\s*\]', text)
  assert len(pairs) == text.count("lv2:symbol")
  return {symbol: float(value) for symbol, value in pairs}


def deviation_db(eq: EQ, freqs, measured, rate) -> float:
  """The largest |measured - jaxeq| over 20 Hz-20 kHz (to Nyquist), where jaxeq's response
  lies within 30 dB of its maximum."""
  keep = (freqs >= 20) & (freqs <= min(20000, rate / 2))
  expected = eq.response_db(freqs[keep], rate)
  loud = expected >= expected.max() - WITHIN_DB
  return float(np.max(np.abs(measured[keep] - expected)[loud]))


def random_eqs(layout_name: str, rate: int, count: int, seed: int = 0) -> list[EQ]:
  """`count` random settings of a shipped layout as jaxeq makes them at `rate` (the paper's
  sampler, and Nercessian's for nercessian12)."""
  layout = get_layout(layout_name).for_sample_rate(rate)
  scheme = "nercessian" if layout_name == "nercessian12" else "paper"
  return layout.to_eqs(sample_settings(layout, jax.random.PRNGKey(seed), (count,), scheme=scheme))


def holdable(eqs, plugin, rate) -> list[EQ]:
  def fits(eq):
    try:
      presets.port_values(eq, plugin, rate)
      return True
    except ValueError:
      return False
  return [eq for eq in eqs if fits(eq)]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("layout_name", sorted(BUILTIN))
def test_lsp_sounds_as_jaxeq_for_every_layout_and_rate(layout_name, rate, tmp_path):
  eq = random_eqs(layout_name, rate, 1, seed=rate)[0]
  freqs, measured = measured_db(eq, "lsp", rate, tmp_path)
  assert deviation_db(eq, freqs, measured, rate) <= TOLERANCE_DB


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("layout_name", ["paper4", "six_band"])
def test_x42_sounds_as_jaxeq_for_the_layouts_it_holds(layout_name, rate, tmp_path):
  # x42-eq's knobs hold less than the layouts' ranges (a low shelf to 400 Hz, narrow peaks
  # only low): the first random EQ it can hold is rendered.
  eqs = holdable(random_eqs(layout_name, rate, 64, seed=rate), "x42", rate)
  assert eqs, f"x42-eq holds none of 64 random {layout_name} EQs at {rate} Hz"
  freqs, measured = measured_db(eqs[0], "x42", rate, tmp_path)
  assert deviation_db(eqs[0], freqs, measured, rate) <= TOLERANCE_DB


def test_x42_every_section_and_shelf_at_their_ends(tmp_path):
  """Both shelves and all four sections at once, boosts and cuts at the ends of the knobs."""
  eq = EQ([Band("low_shelf", 25, 12.0, 1.9), Band("peak", 60, -12.0, 0.3),
           Band("peak", 250, 9.0, 4.0), Band("peak", 2500, -6.0, 1.0),
           Band("peak", 9000, 4.0, 2.0), Band("high_shelf", 16000, -12.0, 0.25)])
  freqs, measured = measured_db(eq, "x42", 48000, tmp_path)
  assert deviation_db(eq, freqs, measured, 48000) <= TOLERANCE_DB


def test_lsp_passes_and_notch_and_a_band_moved_below_nyquist(tmp_path):
  eq = EQ([Band("high_pass", 35, q=2.0), Band("notch", 3000, q=4.0),
           Band("low_pass", 12000, q=0.5), Band("high_shelf", 30000, 6.0)])
  with pytest.warns(UserWarning, match="30000 Hz lie above"):  # designed at 19845 Hz
    freqs, measured = measured_db(eq, "lsp", 44100, tmp_path)
    expected_eq = EQ([*eq.bands[:3], Band("high_shelf", 0.45 * 44100, 6.0)])
  assert deviation_db(expected_eq, freqs, measured, 44100) <= TOLERANCE_DB


def test_the_check_fails_a_preset_that_copies_the_numbers_across(tmp_path):
  """The check can fail: x42-eq given jaxeq's Q as its bandwidth is off by decibels."""
  eq = EQ([Band("peak", 1000, 9.0, 2.0)])
  wrong = EQ([Band("peak", 1000, 9.0, presets.x42_section_bandwidth(1000, 2.0, 48000))])
  freqs, measured = measured_db(wrong, "x42", 48000, tmp_path)
  assert deviation_db(eq, freqs, measured, 48000) > 2.0


@pytest.mark.parametrize("plugin, eq, rate, message", [
    ("x42", get_layout("nercessian12").to_eqs(sample_settings(
        get_layout("nercessian12"), jax.random.PRNGKey(0), (1,)))[0], 48000,
     "cannot hold 10 peaks: it has 4 parametric sections"),
    ("x42", EQ([Band("peak", f, 1.0) for f in (30, 35, 1000, 2000)]), 48000,
     "band 2 (peak 35 Hz +1.0 dB Q 0.707) at 48000 Hz: its 4 parametric sections (20-2000, "
     "40-4000, 100-10000, 200-20000 Hz) hold no more peaks there"),
    ("x42", EQ([Band("low_shelf", 600, 3.0)]), 48000, "low shelf goes from 25 to 400 Hz"),
    ("x42", EQ([Band("low_shelf", 30, 3.0)]), 96000, "low shelf goes from 38.4 to 400 Hz"),
    ("x42", EQ([Band("peak", 15000, 3.0, 4.0)]), 44100,
     "that Q needs a bandwidth of 0.0443 there, outside its 0.0625-4"),
    ("x42", EQ([Band("high_pass", 80)]), 48000, "high pass is its own design"),
    ("x42", EQ([Band("low_shelf", 80, 3.0), Band("low_shelf", 200, 1.0)]), 48000,
     "band 2 (low_shelf 200 Hz +1.0 dB Q 0.707) at 48000 Hz: it has one low shelf"),
    ("lsp", EQ([Band("peak", 1000, 1.0)] * 17), 48000, "cannot hold 17 bands: it has 16"),
    ("lsp", EQ([Band("peak", 8, 1.0)]), 48000, "its frequencies go from 10 to 24000 Hz"),
    ("lsp", EQ([Band("peak", 1000, 1.0), Band("peak", 25000, 3.0)]), 96000,
     "cannot hold band 2 (peak 25000 Hz +3.0 dB Q 0.707) at 96000 Hz"),
])
def test_a_band_a_plugin_cannot_hold_is_one_line_and_no_preset(plugin, eq, rate, message):
  with pytest.raises(ValueError) as caught:
    presets.bundle(eq, plugin, rate, "x")
  assert message in str(caught.value) and "\n" not in str(caught.value)
  assert str(caught.value).startswith(presets.PLUGIN_NAMES[plugin] + " cannot hold")
  with pytest.raises(ValueError):
    eq.to_lv2(plugin, rate)


def test_unknown_plugin_and_bad_rate_are_refused():
  with pytest.raises(ValueError, match="unknown LV2 plug-in 'fabfilter'; expected one of x42, lsp"):
    EQ([Band("peak", 1000, 1.0)]).to_lv2("fabfilter")
  with pytest.raises(ValueError, match="sample rate 0 must be > 0 Hz"):
    EQ([Band("peak", 1000, 1.0)]).to_lv2("lsp", 0)


def test_bundle_is_written_whole_and_replaces_an_older_one(tmp_path):
  eq = EQ([Band("peak", 1000, 3.0)])
  path = tmp_path / "kick.x42-eq.lv2"
  presets.write_bundle_atomically(path, presets.bundle(eq, "x42", 48000, "kick"))
  presets.write_bundle_atomically(path, presets.bundle(eq, "x42", 44100, "kick"))
  assert sorted(p.name for p in path.iterdir()) == ["kick.ttl", "manifest.ttl"]
  assert "kick (44.1 kHz)" in (path / "kick.ttl").read_text()
  assert [p.name for p in tmp_path.iterdir()] == ["kick.x42-eq.lv2"]  # no temporary left
  manifest = (path / "manifest.ttl").read_text()
  assert "<kick.ttl>" in manifest and f"lv2:appliesTo <{presets.X42_URI}>" in manifest


# --- EqualizerAPO, read back independently -------------------------------------------------

_APO_KINDS = {"PK": "peak", "LSC": "low_shelf", "HSC": "high_shelf", "LPQ": "low_pass",
              "HPQ": "high_pass", "NO": "notch"}
_APO_LINE = re.compile(r"Filter \d+: ON (\w+) Fc ([\d.]+) Hz(?: Gain (-?[\d.]+) dB)? Q ([\d.]+)")


def apo_response_db(text: str, freqs, rate) -> np.ndarray:
  """The response EqualizerAPO makes of a ParametricEQ.txt (its filters, not the preamp), from
  the text alone: each line an RBJ biquad (tests/rbj_reference.py, apart from jaxeq)."""
  total = np.zeros(len(freqs))
  for line in text.splitlines()[1:]:
    code, fc, gain, q = _APO_LINE.fullmatch(line).groups()
    b, a = rbj_ba(_APO_KINDS[code], float(fc), float(gain or 0.0), float(q), rate)
    _, h = signal.freqz(b, a, worN=np.asarray(freqs), fs=rate)
    total += 20 * np.log10(np.abs(h))
  return total


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("layout_name", sorted(BUILTIN))
def test_equalizer_apo_text_sounds_as_jaxeq(layout_name, rate):
  freqs = np.geomspace(20, min(20000, rate / 2), 2000)
  for eq in random_eqs(layout_name, rate, 8, seed=rate + 1):
    text = eq.to_equalizer_apo(rate)
    expected = eq.response_db(freqs, rate)
    loud = expected >= expected.max() - WITHIN_DB
    assert np.max(np.abs(apo_response_db(text, freqs, rate) - expected)[loud]) <= TOLERANCE_DB
