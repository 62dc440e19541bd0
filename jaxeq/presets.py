"""LV2 presets: an EQ as settings of a real plug-in EQ, to tweak in a DAW.

Two open parametric EQs that Ardour, Carla, Qtractor, REAPER (on Linux) and other LV2 hosts
load:

- `x42`: x42-eq (`x42-fil4`, Debian `x42-plugins`), mono: a low and a high shelf, four
  parametric sections, a high and a low pass;
- `lsp`: LSP Parametric Equalizer x16 Mono (Debian `lsp-plugins-lv2`): 16 filters.

The plug-ins do not define Q, bandwidth and shelf slope the way jaxeq's RBJ-cookbook biquads
do, so a band's numbers are not copied across: each is mapped onto the plug-in's own controls
so that the plug-in sounds as jaxeq applied the EQ (tests/test_presets.py renders an impulse
through both plug-ins and compares). A band a plug-in cannot hold, or cannot place at the
sample rate, raises one-line `ValueError` and no preset is made: a preset that sounds
different from the EQ would be worse than none.

The preset is a Turtle file as the LV2 presets extension defines it; `bundle` gives the files
of a bundle folder (`NAME.lv2/`, with its `manifest.ttl`) that a host finds in `~/.lv2/`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

X42_URI = "http://gareus.org/oss/lv2/fil4#mono"
LSP_URI = "http://lsp-plug.in/plugins/lv2/para_equalizer_x16_mono"
PLUGINS = {"x42": X42_URI, "lsp": LSP_URI}
# What a user and the files call each plug-in.
PLUGIN_NAMES = {"x42": "x42-eq", "lsp": "LSP Parametric Equalizer x16 Mono"}

# --- x42-eq (x42-plugins 20221119; ranges from `lv2info`, behaviour from its src/lv2.c,
# src/iir.h and src/filters.h). Hosts clamp a preset's values to the port ranges, so a band
# whose controls fall outside them cannot be held.
# The four parametric sections' frequency ranges, in Hz.
_X42_SECTIONS = ((20.0, 2000.0), (40.0, 4000.0), (100.0, 10000.0), (200.0, 20000.0))
_X42_SECTION_DEFAULT_HZ = (160.0, 397.0, 1250.0, 2500.0)
_X42_LOW_SHELF_HZ = (25.0, 400.0)
_X42_HIGH_SHELF_HZ = (1000.0, 16000.0)
# Its shelves clamp their frequency to [0.0004, 0.47] x the rate inside the DSP.
_X42_SHELF_RATE_FRACTIONS = (0.0004, 0.47)
_X42_GAIN_DB = (-18.0, 18.0)
_X42_BANDWIDTH = (0.0625, 4.0)  # the "Bandwidth" ports of the sections and shelves
# A shelf is an RBJ-cookbook shelf whose Q is 0.2129 + Bandwidth / 2.25, clamped to
# [0.25, 2] (src/lv2.c, src/iir.h).
_X42_SHELF_Q_OFFSET, _X42_SHELF_Q_SCALE, _X42_SHELF_Q = 0.2129, 2.25, (0.25, 2.0)

# --- LSP Parametric Equalizer (lsp-plugins 1.2.5). Its "APO (DR)" filter mode is the
# direct-form RBJ cookbook of EqualizerAPO, with the same Q; gains are linear factors.
_LSP_BANDS = 16
_LSP_TYPES = {"peak": 1, "high_pass": 2, "high_shelf": 3, "low_pass": 4, "low_shelf": 5,
              "notch": 6}
_LSP_MODE_APO = 6
_LSP_FREQ_HZ = (10.0, 24000.0)
_LSP_GAIN = (0.01585, 63.0957)  # -36 to +36 dB
_LSP_Q = (0.0, 100.0)

_GAINLESS = frozenset({"low_pass", "high_pass", "notch"})


def _describe(index: int, band) -> str:
  gain = "" if band.kind in _GAINLESS else f" {band.gain_db:+.1f} dB"
  return f"band {index} ({band.kind} {band.freq_hz:g} Hz{gain} Q {band.q:.3g})"


def _within(value: float, limits: tuple[float, float]) -> bool:
  # A hair of slack: a value computed to sit on an end must not fail on rounding.
  lo, hi = limits
  return lo * (1 - 1e-9) - 1e-12 <= value <= hi * (1 + 1e-9) + 1e-12


def _cannot(plugin: str, index: int, band, sample_rate: float, why: str) -> ValueError:
  return ValueError(f"{PLUGIN_NAMES[plugin]} cannot hold {_describe(index, band)} at "
                    f"{sample_rate:g} Hz: {why}")


def x42_section_bandwidth(freq_hz: float, q: float, sample_rate: float) -> float:
  """The x42-eq "Bandwidth" of a section that sounds as an RBJ peak of Q `q`.

  A section is a Regalia-Mitra peak (src/filters.h): an allpass of coefficient
  (1 - b) / (1 + b) with b = 7 f bw / sqrt(g), f = freq / rate, g the linear gain. The RBJ
  peak is that same filter with b = sin(2 pi f) / (2 Q sqrt(g)), hence
  bw = sin(2 pi f) / (14 f Q), exact at any gain (close to 0.449 / Q at low frequencies).
  """
  f = freq_hz / sample_rate
  return math.sin(2 * math.pi * f) / (14 * f * q)


def x42_shelf_bandwidth(q: float) -> float:
  """The x42-eq shelf "Bandwidth" whose RBJ shelf has Q `q`."""
  return (q - _X42_SHELF_Q_OFFSET) * _X42_SHELF_Q_SCALE


def _x42_sections(peaks: list[tuple[int, object]], sample_rate: float) -> list[int]:
  """Which section (0-3) holds each peak: ascending peaks into the first free section whose
  range holds them (optimal, as the ranges rise together); ValueError if one fits none."""
  order = sorted(range(len(peaks)), key=lambda i: peaks[i][1].freq_hz)
  free = list(range(len(_X42_SECTIONS)))
  chosen = [0] * len(peaks)
  for i in order:
    index, band = peaks[i]
    fits = [s for s in free if _within(band.freq_hz, _X42_SECTIONS[s])]
    if not fits:
      ranges = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in _X42_SECTIONS)
      raise _cannot("x42", index, band, sample_rate,
                    f"its 4 parametric sections ({ranges} Hz) hold no more peaks there")
    chosen[i] = fits[0]
    free.remove(fits[0])
  return chosen


def _x42_values(bands, sample_rate: float) -> dict[str, float]:
  values = {"enable": 1.0, "gain": 0.0, "HighPass": 0.0, "HPfreq": 20.0, "HPQ": 0.7,
            "LowPass": 0.0, "LPfreq": 20000.0, "LPQ": 1.0,
            "LSsec": 0.0, "LSfreq": 80.0, "LSq": 1.0, "LSgain": 0.0,
            "HSsec": 0.0, "HSfreq": 8000.0, "HSq": 1.0, "HSgain": 0.0}
  for s, freq in enumerate(_X42_SECTION_DEFAULT_HZ, start=1):
    values.update({f"sec{s}": 0.0, f"freq{s}": freq, f"q{s}": 0.6, f"gain{s}": 0.0})
  peaks, shelves = [], {"low_shelf": [], "high_shelf": []}
  for index, band in enumerate(bands, start=1):
    if band.kind in _GAINLESS:
      raise _cannot("x42", index, band, sample_rate,
                    f"its {band.kind.replace('_', ' ')} is its own design, not a cookbook biquad")
    if not _within(band.gain_db, _X42_GAIN_DB):
      raise _cannot("x42", index, band, sample_rate, "its gains go from -18 to +18 dB")
    (peaks if band.kind == "peak" else shelves[band.kind]).append((index, band))
  if len(peaks) > len(_X42_SECTIONS):
    raise ValueError(f"{PLUGIN_NAMES['x42']} cannot hold {len(peaks)} peaks: it has "
                     f"{len(_X42_SECTIONS)} parametric sections")
  for kind, prefix, port_hz in (("low_shelf", "LS", _X42_LOW_SHELF_HZ),
                                ("high_shelf", "HS", _X42_HIGH_SHELF_HZ)):
    if len(shelves[kind]) > 1:
      index, band = shelves[kind][1]
      raise _cannot("x42", index, band, sample_rate, f"it has one {kind.replace('_', ' ')}")
    for index, band in shelves[kind]:
      lo = max(port_hz[0], _X42_SHELF_RATE_FRACTIONS[0] * sample_rate)
      hi = min(port_hz[1], _X42_SHELF_RATE_FRACTIONS[1] * sample_rate)
      if not _within(band.freq_hz, (lo, hi)):
        raise _cannot("x42", index, band, sample_rate,
                      f"its {kind.replace('_', ' ')} goes from {lo:g} to {hi:g} Hz")
      if not _within(band.q, (_X42_SHELF_Q[0], _X42_SHELF_Q_OFFSET
                              + _X42_BANDWIDTH[1] / _X42_SHELF_Q_SCALE)):
        raise _cannot("x42", index, band, sample_rate, "its shelves take a Q from 0.25 to 1.99")
      values.update({f"{prefix}sec": 1.0, f"{prefix}freq": band.freq_hz,
                     f"{prefix}q": max(x42_shelf_bandwidth(band.q), _X42_BANDWIDTH[0]),
                     f"{prefix}gain": band.gain_db})
  for (index, band), s in zip(peaks, _x42_sections(peaks, sample_rate)):
    bandwidth = x42_section_bandwidth(band.freq_hz, band.q, sample_rate)
    if not _within(bandwidth, _X42_BANDWIDTH):
      raise _cannot("x42", index, band, sample_rate,
                    f"that Q needs a bandwidth of {bandwidth:.3g} there, outside its "
                    f"{_X42_BANDWIDTH[0]:g}-{_X42_BANDWIDTH[1]:g}")
    values.update({f"sec{s + 1}": 1.0, f"freq{s + 1}": band.freq_hz, f"q{s + 1}": bandwidth,
                   f"gain{s + 1}": band.gain_db})
  return values


def _lsp_values(bands, sample_rate: float) -> dict[str, float]:
  if len(bands) > _LSP_BANDS:
    raise ValueError(f"{PLUGIN_NAMES['lsp']} cannot hold {len(bands)} bands: it has "
                     f"{_LSP_BANDS}")
  values = {"enabled": 1.0, "g_in": 1.0, "g_out": 1.0, "mode": 0.0}  # mode 0: IIR
  for i in range(_LSP_BANDS):
    values.update({f"ft_{i}": 0.0, f"xs_{i}": 0.0, f"xm_{i}": 0.0})
  for i, band in enumerate(bands):
    gain = 1.0 if band.kind in _GAINLESS else 10 ** (band.gain_db / 20)
    if not _within(band.freq_hz, _LSP_FREQ_HZ):
      raise _cannot("lsp", i + 1, band, sample_rate, "its frequencies go from 10 to 24000 Hz")
    if not _within(gain, _LSP_GAIN):
      raise _cannot("lsp", i + 1, band, sample_rate, "its gains go from -36 to +36 dB")
    if not _within(band.q, _LSP_Q):
      raise _cannot("lsp", i + 1, band, sample_rate, "its Q goes up to 100")
    values.update({f"ft_{i}": float(_LSP_TYPES[band.kind]), f"fm_{i}": float(_LSP_MODE_APO),
                   f"s_{i}": 0.0, f"f_{i}": band.freq_hz, f"g_{i}": gain, f"q_{i}": band.q})
  return values


def _check_plugin(plugin: str) -> None:
  if plugin not in PLUGINS:
    raise ValueError(f"unknown LV2 plug-in {plugin!r}; expected one of {', '.join(PLUGINS)}")


def port_values(eq, plugin: str, sample_rate: float) -> dict[str, float]:
  """The plug-in's control port values (symbol → value) that sound as `eq` at `sample_rate`.

  The bands are taken as jaxeq designs them at that rate (no higher than 0.45 x the rate);
  ValueError (one line) if the plug-in cannot hold one of them.
  """
  _check_plugin(plugin)
  bands = eq._designed(sample_rate)  # checks the rate; warns of bands moved below Nyquist
  return (_x42_values if plugin == "x42" else _lsp_values)(bands, float(sample_rate))


def _turtle_number(value: float) -> str:
  # A Turtle decimal or double, never an integer literal (a host reads controls as floats).
  text = f"{value:.9g}"
  return text if any(c in text for c in ".e") else text + ".0"


def _turtle_string(text: str) -> str:
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


_PREFIXES = ("@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
             "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
             "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n")


def to_lv2(eq, plugin: str, sample_rate: float, label: str = "jaxeq") -> str:
  """The LV2 preset (Turtle) of `eq` for `plugin` ("x42" or "lsp") at `sample_rate`.

  The preset is the file itself (`<>`), as hosts save theirs; its label names the rate,
  since the settings are made for it. ValueError (one line) if the plug-in cannot hold a band.
  """
  values = port_values(eq, plugin, sample_rate)
  ports = " ,\n".join(f"    [ lv2:symbol {_turtle_string(symbol)} ; "
                      f"pset:value {_turtle_number(value)} ]" for symbol, value in values.items())
  return (f"{_PREFIXES}\n<>\n  a pset:Preset ;\n  lv2:appliesTo <{PLUGINS[plugin]}> ;\n"
          f"  rdfs:label {_turtle_string(f'{label} ({sample_rate / 1000:g} kHz)')} ;\n"
          f"  lv2:port\n{ports} .\n")


def manifest(plugin: str, preset_file: str) -> str:
  """A bundle's `manifest.ttl`: where a host learns that `preset_file` is a preset of
  `plugin` without reading it."""
  _check_plugin(plugin)
  return (f"{_PREFIXES}\n<{preset_file}>\n  a pset:Preset ;\n"
          f"  lv2:appliesTo <{PLUGINS[plugin]}> ;\n  rdfs:seeAlso <{preset_file}> .\n")


def bundle(eq, plugin: str, sample_rate: float, name: str) -> dict[str, str]:
  """The files of an LV2 bundle (`NAME.lv2/`) holding `eq` as the preset `name`: file name →
  text. Copied into `~/.lv2/`, a host lists the preset under the plug-in."""
  stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "preset"
  preset_file = f"{stem}.ttl"
  return {"manifest.ttl": manifest(plugin, preset_file),
          preset_file: to_lv2(eq, plugin, sample_rate, label=name)}


def write_bundle_atomically(path, files: dict[str, str]) -> None:
  """Writes a bundle folder `path` from `files` (name → text): a reader sees the old bundle or
  the whole new one (built beside it, then renamed into place), never a part."""
  path = Path(path)
  tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
  try:
    for name, text in files.items():
      (tmp / name).write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the bundle from other users
    if path.is_dir():
      # A folder cannot be renamed onto a full one: move the old one aside first.
      old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
      os.replace(path, old / path.name)
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
