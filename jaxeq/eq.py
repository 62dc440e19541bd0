"""The user-facing EQ: a list of bands a producer can read, tweak, save and load."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from typing import Iterable, Sequence

import numpy as np

from jaxeq import biquad
from jaxeq.atomic import write_text_atomically

JSON_FORMAT = "jaxeq.eq/1"
BUTTERWORTH_Q = 1 / math.sqrt(2)
# Filters are designed no higher than this fraction of the sample rate (0.9 x Nyquist), as
# hardware and plug-in EQs limit their frequency knobs: a layout's ranges are clipped to it
# (`Layout.for_sample_rate`), so an automatic EQ never has a band above it.
MAX_FREQ_FRACTION = 0.45
# EqualizerAPO's filter type codes (its configuration reference, "Filter" command).
_APO_CODES = {"peak": "PK", "low_shelf": "LSC", "high_shelf": "HSC", "low_pass": "LPQ",
              "high_pass": "HPQ", "notch": "NO"}


@dataclasses.dataclass(frozen=True)
class Band:
  """One filter: `kind` is one of `jaxeq.biquad.KINDS`."""
  kind: str
  freq_hz: float
  gain_db: float = 0.0
  q: float = BUTTERWORTH_Q

  def __post_init__(self):
    if self.kind not in biquad.KINDS:
      raise ValueError(f"band kind {self.kind!r} is not one of {', '.join(biquad.KINDS)}")
    for name in ("freq_hz", "gain_db", "q"):
      value = getattr(self, name)
      if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise ValueError(f"band {name}={value!r} must be a finite number")
      object.__setattr__(self, name, float(value))
    if self.freq_hz <= 0:
      raise ValueError(f"band freq_hz={self.freq_hz} must be > 0 Hz")
    if self.q <= 0:
      raise ValueError(f"band q={self.q} must be > 0")

  def design_freq_hz(self, sample_rate: float) -> float:
    return min(self.freq_hz, MAX_FREQ_FRACTION * sample_rate)


@dataclasses.dataclass(frozen=True)
class EQ:
  """A parametric EQ: bands applied in series."""
  bands: tuple[Band, ...]

  def __init__(self, bands: Iterable[Band]):
    object.__setattr__(self, "bands", tuple(bands))
    for band in self.bands:
      if not isinstance(band, Band):
        raise TypeError(f"EQ bands must be jaxeq.Band, got {type(band).__name__}")

  def scaled(self, factor: float) -> "EQ":
    """This EQ with every band's gain multiplied by `factor` (0: flat; 0.5: half strength)."""
    # + 0.0: a cut scaled to flat reads 0 dB, not -0 dB.
    return EQ(dataclasses.replace(band, gain_db=band.gain_db * factor + 0.0)
              for band in self.bands)

  def response_db(self, freqs_hz, sample_rate: float) -> np.ndarray:
    """The magnitude response in dB at `freqs_hz`, as the EQ runs at `sample_rate`."""
    freqs = np.asarray(freqs_hz, dtype=np.float64)
    total = np.zeros(freqs.shape)
    for band in self._designed(sample_rate):
      total += biquad.magnitude_db(band.kind, band.freq_hz, band.gain_db, band.q, sample_rate,
                                   freqs, xp=np)
    return total

  def to_sos(self, sample_rate: float) -> np.ndarray:
    """scipy second-order sections, shape `(len(bands), 6)`, float64."""
    if not self.bands:
      return np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])
    return np.stack([biquad.sos_section(b.kind, b.freq_hz, b.gain_db, b.q, sample_rate)
                     for b in self._designed(sample_rate)])

  def _designed(self, sample_rate: float) -> list[Band]:
    """The bands as designed at `sample_rate`: frequencies limited below Nyquist."""
    if not sample_rate > 0:
      raise ValueError(f"sample rate {sample_rate!r} must be > 0 Hz")
    designed = [dataclasses.replace(b, freq_hz=b.design_freq_hz(sample_rate)) for b in self.bands]
    moved = [b.freq_hz for b, d in zip(self.bands, designed) if d.freq_hz != b.freq_hz]
    if moved:
      warnings.warn(f"EQ bands at {', '.join(f'{f:g}' for f in moved)} Hz lie above "
                    f"{MAX_FREQ_FRACTION:g} x {sample_rate:g} Hz and are designed there instead",
                    stacklevel=3)
    return designed

  # --- serialisation -------------------------------------------------------------------

  def to_dict(self) -> dict:
    return {"format": JSON_FORMAT, "bands": [dataclasses.asdict(b) for b in self.bands]}

  @classmethod
  def from_dict(cls, data: dict) -> "EQ":
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
      raise ValueError(f"not a jaxeq EQ: expected \"format\": \"{JSON_FORMAT}\"")
    try:
      return cls(Band(**band) for band in data["bands"])
    except (KeyError, TypeError) as e:
      raise ValueError(f"not a jaxeq EQ: malformed bands ({e})") from None

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2)

  @classmethod
  def from_json(cls, text: str) -> "EQ":
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"not a jaxeq EQ: invalid JSON ({e})") from None
    return cls.from_dict(data)

  def save(self, path) -> None:
    write_text_atomically(path, self.to_json() + "\n")

  @classmethod
  def load(cls, path) -> "EQ":
    try:
      with open(path, encoding="utf-8") as f:
        return cls.from_json(f.read())
    except OSError as e:
      raise ValueError(f"{path}: cannot read EQ ({e.strerror})") from None
    except ValueError as e:
      raise ValueError(f"{path}: {e}") from None

  def to_equalizer_apo(self, sample_rate: float = 48000.0) -> str:
    """EqualizerAPO `ParametricEQ.txt`: a preamp that prevents clipping, then one filter a line.

    The preamp is minus the largest boost of the whole response between 20 Hz and 20 kHz.
    """
    grid = np.geomspace(20.0, 20000.0, 2048)
    peak = float(np.max(self.response_db(grid, sample_rate))) if self.bands else 0.0
    lines = [f"Preamp: {-max(peak, 0.0):.1f} dB"]
    # The bands as designed at `sample_rate` (none above 0.45 x it), with enough digits that
    # EqualizerAPO sounds as jaxeq applied them: 12 gains rounded to 0.1 dB could add up to
    # 0.6 dB (tests/test_presets.py reads the text back).
    for i, b in enumerate(self._designed(sample_rate) if self.bands else [], start=1):
      line = f"Filter {i}: ON {_APO_CODES[b.kind]} Fc {_decimals(b.freq_hz, 1, 2)} Hz"
      if b.kind not in biquad.GAINLESS_KINDS:
        line += f" Gain {_decimals(b.gain_db, 1, 2)} dB"
      lines.append(line + f" Q {b.q:.3f}")
    return "\n".join(lines) + "\n"

  def to_lv2(self, plugin: str, sample_rate: float = 48000.0, label: str = "jaxeq") -> str:
    """An LV2 preset (Turtle) that makes `plugin` ("x42": x42-eq; "lsp": LSP Parametric
    Equalizer x16 Mono) sound as this EQ at `sample_rate`; see `jaxeq.presets`.

    ValueError (one line) if the plug-in cannot hold a band there.
    """
    from jaxeq import presets  # only the callers who export pay for it
    return presets.to_lv2(self, plugin, sample_rate, label)

  def __str__(self) -> str:
    rows = [f"{'#':>2}  {'kind':<10} {'freq (Hz)':>10} {'gain (dB)':>10} {'Q':>6}"]
    for i, b in enumerate(self.bands, start=1):
      gain = "" if b.kind in biquad.GAINLESS_KINDS else f"{b.gain_db:+.1f}"
      rows.append(f"{i:>2}  {b.kind:<10} {b.freq_hz:>10.1f} {gain:>10} {b.q:>6.2f}")
    return "\n".join(rows)

  def __repr__(self) -> str:
    count = f"{len(self.bands)} band{'s' * (len(self.bands) != 1)}"
    return f"EQ({count}: {self.summary() or 'all at 0 dB'})"

  def summary(self) -> str:
    """The bands on one line: `low_shelf 120 Hz +2.1 dB Q 0.71, peak 800 Hz -3.0 dB Q 1.40`;
    bands left at 0 dB are left out."""
    parts = []
    for b in self.bands:
      if b.kind in biquad.GAINLESS_KINDS:
        parts.append(f"{b.kind} {b.freq_hz:.0f} Hz Q {b.q:.2f}")
      elif abs(b.gain_db) >= 0.05:
        parts.append(f"{b.kind} {b.freq_hz:.0f} Hz {b.gain_db:+.1f} dB Q {b.q:.2f}")
    return ", ".join(parts)


def _decimals(value: float, least: int, most: int) -> str:
  """`value` with `most` decimals, trailing zeros dropped down to `least` (`4.5`, `4.54`)."""
  text = f"{value:.{most}f}"
  while most > least and text.endswith("0"):
    text, most = text[:-1], most - 1
  return text


def eq_from_arrays(kinds: Sequence[str], freq_hz, gain_db, q) -> EQ:
  """One EQ from per-band arrays (as a layout's settings hold them)."""
  return EQ(Band(k, float(f), float(g), float(qq))
            for k, f, g, qq in zip(kinds, np.asarray(freq_hz), np.asarray(gain_db), np.asarray(q)))
