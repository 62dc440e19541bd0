"""How closely the exported LV2 presets sound as jaxeq's EQ, in the real plug-ins.

    python -m benchmarks.presets [--count 5]

For each plug-in (x42-eq, LSP Parametric Equalizer x16 Mono), each shipped layout and each
rate (44.1, 48, 96 kHz): 64 random settings are drawn as jaxeq makes them (the paper's
sampler; Nercessian's for nercessian12); the first `--count` the plug-in can hold are
rendered as an impulse through the plug-in, headless (x42-eq from its preset bundle by
lv2file, LSP by lv2apply), and the largest |plug-in - jaxeq| in dB over 20 Hz-20 kHz (to
Nyquist) where the response is within 30 dB of its maximum is reported, with the share of the
64 the plug-in holds. Prints a Markdown table for benchmarks/RESULTS.md.
"""

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import soundfile as sf

from jaxeq import presets
from jaxeq.layouts import BUILTIN, get_layout
from jaxeq.training.synthetic import sample_settings

RATES = (44100, 48000, 96000)
DRAWN = 64
PRE_ROLL_S = 1.5  # x42-eq glides to new settings over about 0.75 s
IMPULSE = 0.1


def render_db(eq, plugin: str, rate: int, workdir: Path):
  """`(freqs, dB)`: the plug-in's magnitude response with `eq`'s preset, from an impulse."""
  pre, length = int(PRE_ROLL_S * rate), 1 << int(np.ceil(np.log2(rate)))
  x = np.zeros(pre + length, np.float32)
  x[pre] = IMPULSE
  sf.write(workdir / "in.wav", x, rate, subtype="FLOAT")
  files = presets.bundle(eq, plugin, rate, "bench")
  (workdir / ".lv2").mkdir(exist_ok=True)
  presets.write_bundle_atomically(workdir / ".lv2" / "bench.lv2", files)
  env = {**os.environ, "HOME": str(workdir)}  # lilv finds HOME/.lv2/bench.lv2
  env.pop("LV2_PATH", None)
  uri, out = presets.PLUGINS[plugin], workdir / "out.wav"
  if plugin == "x42":
    command = ["lv2file", "--ignore-clipping", "-b", "4096", "-P", f"bench ({rate / 1000:g} kHz)",
               "-i", workdir / "in.wav", "-o", out, uri]
  else:  # lv2apply takes no preset: the preset's values, as jaxeq.presets made them
    command = ["lv2apply", "-i", workdir / "in.wav", "-o", out]
    for symbol, value in presets.port_values(eq, plugin, rate).items():
      command += ["-c", symbol, repr(value)]
    command.append(uri)
  subprocess.run(list(map(str, command)), env=env, capture_output=True, check=True, timeout=120)
  y, _ = sf.read(out, dtype="float64")
  h = y[pre:] / IMPULSE
  return np.fft.rfftfreq(len(h), 1 / rate), 20 * np.log10(np.abs(np.fft.rfft(h)) + 1e-30)


def deviation_db(eq, freqs, measured, rate) -> float:
  keep = (freqs >= 20) & (freqs <= min(20000, rate / 2))
  expected = eq.response_db(freqs[keep], rate)
  loud = expected >= expected.max() - 30.0
  return float(np.max(np.abs(measured[keep] - expected)[loud]))


def holds(eq, plugin, rate) -> bool:
  try:
    presets.port_values(eq, plugin, rate)
    return True
  except ValueError:
    return False


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--count", type=int, default=5, help="EQs rendered per cell")
  args = parser.parse_args()
  rows = ["| plug-in | layout | rate | held of 64 | rendered | max deviation (dB) |",
          "|---|---|---|---|---|---|"]
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    for plugin in presets.PLUGINS:
      for name in sorted(BUILTIN):
        for rate in RATES:
          layout = get_layout(name).for_sample_rate(rate)
          scheme = "nercessian" if name == "nercessian12" else "paper"
          eqs = layout.to_eqs(sample_settings(layout, jax.random.PRNGKey(rate), (DRAWN,),
                                              scheme=scheme))
          held = [eq for eq in eqs if holds(eq, plugin, rate)]
          worst = [deviation_db(eq, *render_db(eq, plugin, rate, Path(tmp)), rate)
                   for eq in held[:args.count]]
          cell = f"{max(worst):.4f}" if worst else "–"
          rows.append(f"| {presets.PLUGIN_NAMES[plugin]} | {name} | {rate / 1000:g} kHz | "
                      f"{len(held)} | {len(worst)} | {cell} |")
          print(rows[-1], flush=True)
  print("\n".join(rows))
  print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
  main()
