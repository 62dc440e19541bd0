"""How long the recordings are that the unseen bank plays for each class, beside its accuracy.

    python -m benchmarks.bank_sample_lengths

A SoundFont plays a note from a recording and loops part of it while the note is held. TimGM6mb,
the unseen test bank, fits 128 instruments into 6 MB: many of its recordings last a few tens of
milliseconds, a few cycles of the waveform repeated for as long as the note lasts, without the
bow noise, vibrato or decay of a real instrument. Prints, per melodic class, the median length
of the recordings its GM programs play in TimGM6mb and in FluidR3_GM (uncompressed, so the
lengths can be read), with the shipped classifier's unseen-bank accuracy from its model card,
then the accuracy over the classes whose TimGM6mb recordings are short and over the others.
"""

from __future__ import annotations

import argparse
import re
import struct
from importlib import resources
from pathlib import Path

import numpy as np

from benchmarks.bank_overlap import soundfont_records
from data_prep.synth import find_bank
from jaxeq.classes import CLASS_INFO

_INSTRUMENT, _SAMPLE_ID = 41, 53  # SoundFont 2 generator numbers


def program_sample_seconds(path: Path) -> dict[int, list[float]]:
  """GM program (bank 0) → the lengths in seconds of the recordings its preset plays."""
  pdta = soundfont_records(path.read_bytes())

  def generators(bags, gens, first, last, operator):
    values = []
    for bag in range(first, last):
      start, = struct.unpack("<H", bags[bag][:2])
      stop, = struct.unpack("<H", bags[bag + 1][:2])
      for g in range(start, stop):
        op, amount = struct.unpack("<HH", gens[g])
        if op == operator:
          values.append(amount)
    return values

  samples = [struct.unpack("<IIIII", record[20:40]) for record in pdta["shdr"][:-1]]
  seconds = [(end - start) / rate if rate else 0.0 for start, end, _, _, rate in samples]
  lengths = {}
  for k, record in enumerate(pdta["phdr"][:-1]):  # the last record of each list is a terminal
    program, bank, bag = struct.unpack("<HHH", record[20:26])
    next_bag, = struct.unpack("<H", pdta["phdr"][k + 1][24:26])
    if bank != 0:
      continue
    for instrument in generators(pdta["pbag"], pdta["pgen"], bag, next_bag, _INSTRUMENT):
      first, = struct.unpack("<H", pdta["inst"][instrument][20:22])
      last, = struct.unpack("<H", pdta["inst"][instrument + 1][20:22])
      lengths.setdefault(program, []).extend(
          seconds[s] for s in generators(pdta["ibag"], pdta["igen"], first, last, _SAMPLE_ID))
  return lengths


def card_accuracies() -> dict[str, float]:
  """Class → unseen-bank accuracy (%) from the shipped classifier's model card."""
  card = resources.files("jaxeq").joinpath("assets/classifier/MODEL_CARD.md").read_text("utf-8")
  return {m[1]: float(m[2]) for m in re.finditer(r"^\| (\w+) \| [\d.]+% \| ([\d.]+)% \|$", card,
                                                   re.MULTILINE)}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--short", type=float, default=0.1,
                      help="recordings shorter than this (seconds) count as short loops")
  args = parser.parse_args()
  banks = {bank: program_sample_seconds(find_bank(bank)) for bank in ("TimGM6mb", "FluidR3_GM")}
  accuracy = card_accuracies()
  print(f"{'class':26} {'TimGM6mb':>9} {'FluidR3_GM':>10} {'unseen-bank accuracy':>21}")
  groups = {True: [], False: []}
  for info in CLASS_INFO.values():
    if info.is_drum:
      continue
    medians = [np.median([s for p in info.gm_programs for s in banks[bank].get(p, [])])
               for bank in banks]
    groups[bool(medians[0] < args.short)].append(accuracy[info.name])
    print(f"{info.name:26} {medians[0]:8.3f}s {medians[1]:9.3f}s {accuracy[info.name]:20.0f}%")
  for short, values in groups.items():
    kind = f"shorter than {args.short} s" if short else f"{args.short} s or longer"
    print(f"TimGM6mb recordings {kind}: {len(values)} classes, mean accuracy "
          f"{np.mean(values):.1f}%")


if __name__ == "__main__":
  main()
