"""The pictures jaxeq draws, as PNG files (matplotlib, no display needed).

Figures are made with `matplotlib.figure.Figure` and drawn by Agg when saved, not through
`pyplot` (slower to import, and a registry of open figures a PNG writer does not need).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from jaxeq.atomic import atomic_path
from jaxeq.spectrum import FLOOR_DB, FREQS, SAMPLE_RATE, zero_centre
from jaxeq.targets import REAL_RECORDINGS, REFERENCE_TRACKS, RENDERS, SHIPPED_FALLBACK


def _subplots(*grid, figsize, **kwargs):
  """`(figure, axes)`, as `pyplot.subplots` makes them."""
  fig = Figure(figsize=figsize)
  return fig, fig.subplots(*grid, **kwargs)


def _save(fig, path) -> None:
  with atomic_path(path, suffix=".png") as tmp:
    fig.savefig(tmp, dpi=110)


# Frequencies labelled as an EQ labels them ("200", "2k"), not as powers of ten: plainer to a
# producer, and no mathtext to parse (a quarter of a second when a process draws its first).
_FREQ_TICKS_HZ = (20, 100, 1000, 10000)


def _freq_axis(ax) -> None:
  ax.set_xscale("log")
  ax.set_xlim(FREQS[0], FREQS[-1])
  ax.set_xticks(_FREQ_TICKS_HZ, [f"{f // 1000}k" if f >= 1000 else str(f) for f in _FREQ_TICKS_HZ])
  ax.xaxis.set_minor_formatter(NullFormatter())
  ax.grid(True, which="both", alpha=0.3)


# A target's colour, by where it came from (`TargetBank.origin`), and the colour's name.
_ORIGIN_COLOURS = {REAL_RECORDINGS: ("C0", "blue"), RENDERS: ("C1", "orange"),
                   REFERENCE_TRACKS: ("C2", "green"), SHIPPED_FALLBACK: ("0.55", "grey")}


def plot_targets(bank, path, columns: int = 5) -> None:
  """All targets as a grid of small plots, in a PNG, coloured by where each came from: each
  class's mean, and where it keeps references with pitches, its targets at the low and high
  end of their register (dashed, dotted), with the register and the references' count."""
  rows = -(-len(bank.classes) // columns)
  fig, axes = _subplots(rows, columns, figsize=(3.2 * columns, 2.3 * rows), sharex=True,
                        sharey=True, squeeze=False)
  for ax in axes.flat[len(bank.classes):]:
    ax.axis("off")
  origins = [bank.origin(name) for name in bank.classes]
  for ax, name, origin, curve, count in zip(axes.flat, bank.classes, origins, bank.curves,
                                            bank.counts):
    colour = _ORIGIN_COLOURS.get(origin, ("C1", ""))[0]
    ax.plot(FREQS, curve, lw=1.2, color=colour)
    register = bank.register_hz(name)
    title = f"{name} ({origin + ', ' if origin else ''}n={count}"
    if len(register):
      for pitch, style in zip(register, ("--", ":")):
        ax.plot(FREQS, bank.target(name, pitch), lw=0.8, ls=style, color=colour)
      title += f"; {register[0]:.0f}–{register[-1]:.0f} Hz"
    _freq_axis(ax)
    ax.set_title(title + ")", fontsize=7)
  for ax in axes[-1]:
    ax.set_xlabel("Hz")
  for ax in axes[:, 0]:
    ax.set_ylabel("dB")
  legend = [f"{words}: {origin}" for origin, (_, words) in _ORIGIN_COLOURS.items()
            if origin in origins]
  fig.suptitle("jaxeq target spectra (zero-mean dB" + "".join(f"; {line}" for line in legend)
               + "; dashed and dotted: the target at its references' 10th and 90th percentile "
               "pitch)")
  fig.tight_layout(rect=(0, 0, 1, 0.98))
  _save(fig, path)


def plot_analysis(analysis, path, title: str = "") -> None:
  """Like the paper's Figure 3: input and target spectra, their difference, the EQ, the result;
  the frequencies outside the audible band (not corrected) shaded, the instrument in the title."""
  eq_curve = analysis.eq.response_db(FREQS, SAMPLE_RATE)
  spectrum = np.asarray(zero_centre(analysis.spectrum))
  fig, (top, bottom) = _subplots(2, 1, figsize=(9, 6.5), sharex=True)
  if analysis.instrument is None:
    label = "reference"
  else:
    label = "target: " + " + ".join(f"{share:.0%} {name}"
                                    for name, share in (analysis.target_mix or {}).items())
  top.plot(FREQS, spectrum, color="0.45", lw=1.2, label="input")
  floor = analysis.noise_floor
  if floor is not None and np.any(floor > FLOOR_DB):
    top.plot(FREQS, floor - np.mean(analysis.spectrum), color="0.45", lw=0.9, ls=":",
             label="input's noise floor")
  top.plot(FREQS, analysis.target, color="C0", lw=1.6, label=label)
  top.plot(FREQS, np.asarray(zero_centre(spectrum + eq_curve)), color="C3", lw=1.2,
           label="input + EQ")
  top.set_ylabel("level (dB, zero-mean)")
  bottom.plot(FREQS, analysis.difference, color="C2", lw=1.6, label="difference (target − input)")
  bottom.plot(FREQS, np.asarray(zero_centre(eq_curve)), color="C3", lw=1.6, ls="--",
              label="predicted EQ")
  bottom.axhline(0, color="0.6", lw=0.8)
  bottom.set_ylabel("dB")
  bottom.set_xlabel("frequency (Hz)")
  bottom.legend(loc="lower left", fontsize=8)
  outside = np.asarray(analysis.weight) < 0.5
  for ax in (top, bottom):
    _freq_axis(ax)
    ax.fill_between(FREQS, 0, 1, where=outside, transform=ax.get_xaxis_transform(),
                    color="0.85", alpha=0.6, lw=0, label="not corrected" if ax is top else None)
  top.legend(loc="lower left", fontsize=8)
  fig.suptitle((title + ": " if title else "") + analysis.heard())
  fig.tight_layout()
  _save(fig, path)


def plot_summary(entries, path, title: str = "", columns: int = 4) -> None:
  """What a batch did, on one page: a small plot per track of its EQ's response, titled with
  the track and the instrument heard (`entries`: `(name, heard, eq)`, in the order shown).
  The panels share their axes, so the tracks' corrections compare at a glance."""
  columns = max(1, min(columns, len(entries)))
  rows = -(-len(entries) // columns)
  fig, axes = _subplots(rows, columns, figsize=(3.4 * columns, 2.3 * rows + 0.6), sharex=True,
                        sharey=True, squeeze=False)
  for ax in axes.flat[len(entries):]:
    ax.axis("off")
  curves = [np.asarray(eq.response_db(FREQS, SAMPLE_RATE)) for _, _, eq in entries]
  reach = max([6.0] + [float(np.max(np.abs(curve))) + 1 for curve in curves])
  for ax, (name, heard, _), curve in zip(axes.flat, entries, curves):
    ax.axhline(0, color="0.6", lw=0.8)
    ax.plot(FREQS, curve, color="C3", lw=1.6)
    _freq_axis(ax)
    ax.set_ylim(-reach, reach)
    ax.set_title(f"{name}\n{heard}", fontsize=8)
  for ax in axes[-1]:
    ax.set_xlabel("Hz")
  for ax in axes[:, 0]:
    ax.set_ylabel("EQ (dB)")
  fig.suptitle(title or "jaxeq: the EQ of every track")
  fig.tight_layout()
  _save(fig, path)


def plot_confusion(confusion: np.ndarray, classes, path, title: str = "") -> None:
  """A confusion matrix (rows: true class, columns: predicted), normalised per row."""
  counts = np.asarray(confusion, np.float64)
  rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  fig, ax = _subplots(figsize=(11, 10))
  image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
  ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
  ax.set_yticks(range(len(classes)), classes, fontsize=7)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  for i, j in zip(*np.nonzero(counts)):
    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=5,
            color="white" if rates[i, j] > 0.5 else "black")
  fig.colorbar(image, ax=ax, fraction=0.04, label="share of the true class")
  ax.set_title(title or "confusion matrix")
  fig.tight_layout()
  _save(fig, path)


def plot_mae_bars(mae_db: dict, path, title: str = "") -> None:
  """Mean response MAE (dB) per method, as horizontal bars."""
  names, values = list(mae_db), [mae_db[n] for n in mae_db]
  fig, ax = _subplots(figsize=(8, 0.5 * len(names) + 1.5))
  bars = ax.barh(range(len(names)), values, color=[f"C{i}" for i in range(len(names))])
  ax.set_yticks(range(len(names)), names)
  ax.invert_yaxis()
  ax.bar_label(bars, [f"{v:.2f} dB" for v in values], padding=3)
  ax.set_xlabel("mean absolute error of the EQ response (dB)")
  ax.set_xlim(0, max(values) * 1.25)
  ax.set_title(title)
  fig.tight_layout()
  _save(fig, path)


def plot_gain_histogram(abs_gains_db, limit_db: float, path, title: str = "") -> None:
  """How large the EQs' band gains are: a histogram of |gain|, the median and the limit marked."""
  gains = np.asarray(abs_gains_db)
  fig, ax = _subplots(figsize=(7, 3.5))
  ax.hist(gains, bins=np.linspace(0, limit_db, 25), color="C0")
  median = float(np.median(gains))
  ax.axvline(median, color="C3", lw=1.5, label=f"median {median:.1f} dB")
  ax.axvline(limit_db, color="0.3", lw=1.5, ls="--",
             label=f"limit ({np.mean(gains >= limit_db - 0.1):.0%} of bands)")
  ax.set_xlabel("|gain| of a band (dB)")
  ax.set_ylabel("bands")
  ax.legend()
  ax.set_title(title)
  fig.tight_layout()
  _save(fig, path)


def plot_curve_matches(curves, responses: dict, titles, path, columns: int = 3) -> None:
  """Target curves (solid) and each method's EQ response (dashed), one panel per curve."""
  curves = np.asarray(curves)
  rows = -(-len(curves) // columns)
  fig, axes = _subplots(rows, columns, figsize=(4.2 * columns, 3 * rows), sharex=True,
                        sharey=True, squeeze=False)
  for ax in axes.flat[len(curves):]:
    ax.axis("off")
  for k, (ax, curve, title) in enumerate(zip(axes.flat, curves, titles)):
    ax.plot(FREQS, curve, color="k", lw=1.6, label="target curve")
    for i, (name, response) in enumerate(responses.items()):
      response = np.asarray(zero_centre(np.asarray(response)[k]))
      error = np.mean(np.abs(curve - response))
      ax.plot(FREQS, response, color=f"C{i}", lw=1.2, ls="--", label=f"{name} ({error:.2f} dB)")
    _freq_axis(ax)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="lower left")
  for ax in axes[-1]:
    ax.set_xlabel("Hz")
  for ax in axes[:, 0]:
    ax.set_ylabel("dB")
  fig.tight_layout()
  _save(fig, path)
