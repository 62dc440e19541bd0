"""The command's batch runner: one piece of work on every track of a run, with a progress bar,
in this process or spread over worker processes, each failure one line.

A command gives `run_tracks` a `make_work`: called once per process (it loads the models),
it returns `work(track, outputs, say)`, which works on one track, says its lines through
`say` and may return a function that writes the track's outputs. Everything a worker needs
travels in `make_work` (a module-level function or a `functools.partial`, so that it pickles):
this module holds no state of its own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from jaxeq.audio_io import AudioError, find_audio_files

Say = Callable[..., None]  # say(line, error=False): one line for the user
Work = Callable[[Path, list[Path], Say], Callable[[], None] | None]
MakeWork = Callable[[], Work]
Job = tuple[Path, list[Path]]  # a track and its outputs

# Each worker computes on one thread: the workers already fill the cores, and OpenBLAS's and
# XLA's thread pools, each sized for the whole machine, fight over them (on the busy 2-core
# machine the classifier windows' band-matrix product took 20x as long with two threads).
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""),
                                     "--xla_cpu_multi_thread_eigen=false"]).strip()}
# How often (seconds) the main process looks whether its workers still run.
POLL_SECONDS = 1.0


def say(line: str, error: bool = False) -> None:
  """Prints one line above the progress bar: to stderr if `error`, else stdout."""
  tqdm.write(line, file=sys.stderr if error else sys.stdout)


def fail(message: str, say: Say = say) -> None:
  """Says `jaxeq: message` on stderr."""
  say(f"jaxeq: {message}", error=True)


def run_tracks(inputs, desc: str, make_work: MakeWork, out_dir: Path | None = None,
               suffixes=(), skip_existing: bool = False, workers: int = 1,
               done: list | None = None) -> int:
  """Runs `work(track, outputs, say)` on every audio file in `inputs` with a progress bar; 1
  if any failed, 2 if nothing could start. `outputs` are the track's output files under
  `out_dir` (its path below the folder given, with `suffixes`); `out_dir` is checked first
  (see `check_outputs`), and with `skip_existing` a track whose outputs all exist is skipped.
  Commands that write end with one line: how many tracks were written, skipped and failed.

  `make_work()` gives `work`; it is called once there are tracks to work on. The function
  `work` may return runs on a background thread while the next track is read and analysed.
  With more than one of `workers` (and tracks), the tracks are spread over that many
  processes, each calling `make_work` once. `done`, if given, gets `(track, outputs)` of every
  track written or skipped.
  """
  tracks = tracks_in(inputs)
  if not tracks:
    fail("no audio files found in " + ", ".join(map(str, inputs)))
    return 2
  if out_dir is not None:
    try:
      check_outputs(tracks, out_dir)
    except ValueError as e:
      fail(str(e))
      return 2
  todo, skipped, failures = [], 0, 0
  for track, relative in tracks:
    try:
      outputs = [] if out_dir is None else _outputs(track, out_dir / relative, suffixes)
    except (ValueError, OSError) as e:  # AudioError is a ValueError
      failures += 1
      fail(failure_line(track, e))
      continue
    if skip_existing and all(path.exists() for path in outputs):
      skipped += 1  # written whole by an earlier run: every output is written atomically
      if done is not None:
        done.append((track, outputs))
    else:
      todo.append((track, outputs))
  bar = tqdm(total=len(tracks), initial=len(tracks) - len(todo), desc=desc, unit="file",
             disable=len(tracks) < 2)
  with bar:
    if workers > 1 and len(todo) > 1:
      failed = _in_workers(todo, make_work, min(workers, len(todo)), bar)
    elif todo:
      try:
        work = make_work()
      except (ValueError, OSError) as e:
        fail(str(e))
        return 2
      failed = _in_this_process(todo, work, bar)
    else:
      failed = set()
  failures += len(failed)
  if done is not None:
    done += [job for index, job in enumerate(todo) if index not in failed]
  if out_dir is not None:
    written = len(tracks) - skipped - failures
    tqdm.write(f"{desc}: {written} of {len(tracks)} track{'s' * (len(tracks) != 1)} written to "
               f"{out_dir}"
               + (f", {skipped} skipped (their outputs exist)" if skipped else "")
               + (f", {failures} failed" if failures else ""))
  return 1 if failures else 0


def _in_this_process(todo: list[Job], work: Work, bar: tqdm) -> set[int]:
  """`run_tracks`'s work on `todo` here, each track's writing on a background thread while
  the next is worked on; the indices of the tracks that failed."""
  failed = set()

  def attempt(index: int, step: Callable):
    try:
      return step()
    except (ValueError, OSError) as e:  # AudioError is a ValueError
      failed.add(index)
      fail(failure_line(todo[index][0], e))

  with concurrent.futures.ThreadPoolExecutor(1) as writer:
    writes = []
    for index, (track, outputs) in enumerate(todo):
      finish = attempt(index, lambda: work(track, outputs, say))
      if finish is not None:
        writes.append((index, writer.submit(finish)))
      bar.update()
    for index, write in writes:
      attempt(index, write.result)
  return failed


def _in_workers(todo: list[Job], make_work: MakeWork, workers: int, bar: tqdm) -> set[int]:
  """`run_tracks`'s work on `todo` spread over `workers` processes (see `_serve`); the indices
  of the tracks that failed. Each track's lines are printed here, by the one process that owns
  the progress bar, so that no line is torn by another process's."""
  context = multiprocessing.get_context("spawn")  # JAX's threads make a forked child unsafe
  jobs, results = context.Queue(), context.Queue()
  for index, job in enumerate(todo):
    jobs.put((index, *job))
  for _ in range(workers):
    jobs.put(None)  # one stop for each
  processes = [context.Process(target=_serve, args=(make_work, jobs, results), daemon=True)
               for _ in range(workers)]
  failed, pending, ended = set(), set(range(len(todo))), False
  try:
    with _environment(ONE_THREAD):  # read by each process as it starts
      for process in processes:
        process.start()
    while pending:
      try:
        index, messages, track_failed = results.get(timeout=POLL_SECONDS)
      except queue.Empty:
        if ended:
          break  # no worker left: what is still pending, no one will do
        ended = not any(process.is_alive() for process in processes)  # then one more look
        continue
      for error, line in messages:
        say(line, error)
      if index is not None:  # None: a worker's start-up
        pending.discard(index)
        if track_failed:
          failed.add(index)
        bar.update()
    for index in sorted(pending):
      fail(f"{todo[index][0]}: its worker process stopped before finishing it")
      failed.add(index)
      bar.update()
  finally:
    jobs.cancel_join_thread()  # jobs left when interrupted are not for anyone
    for process in processes:
      if pending and process.is_alive():
        process.terminate()  # interrupted: the tracks left are for no one
      process.join()  # otherwise each ends at its stop
  return failed


def _serve(make_work: MakeWork, jobs, results) -> None:
  """A worker process: builds its work once (the models), then works on `(index, track,
  outputs)` from `jobs` until a None, putting `(index, messages, failed)` in `results`. A
  start-up that fails puts its message with the index None, and the worker ends."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
  messages = []
  try:
    with _warnings_said(messages.append):
      work = make_work()
  except (ValueError, OSError) as e:
    fail(str(e), lambda line, error=False: messages.append((error, line)))
    results.put((None, messages, True))
    return
  if messages:
    results.put((None, messages, False))
  for index, track, outputs in iter(jobs.get, None):
    results.put((index, *work_on(work, track, outputs)))


def work_on(work: Work, track: Path, outputs: list[Path]) -> tuple[list[tuple[bool, str]], bool]:
  """`track` worked on and written in one go: its lines `(error, line)` (its warnings among
  them), and whether it failed."""
  messages = []

  def collect(line: str, error: bool = False) -> None:
    messages.append((error, line))

  try:
    with _warnings_said(messages.append):
      finish = work(track, outputs, collect)
      if finish is not None:
        finish()
  except (ValueError, OSError) as e:
    fail(failure_line(track, e), collect)
    return messages, True
  return messages, False


@contextlib.contextmanager
def _warnings_said(append: Callable):
  """Inside, a warning is appended as the line `(True, "jaxeq: warning: ...")`."""
  with warnings.catch_warnings():
    warnings.showwarning = lambda message, *_, **__: append((True, f"jaxeq: warning: {message}"))
    yield


@contextlib.contextmanager
def _environment(values: dict[str, str]):
  """`os.environ` with `values` for the processes started inside (they read it at start-up,
  before any code of theirs could set anything), as it was afterwards."""
  before = {name: os.environ.get(name) for name in values}
  os.environ.update(values)
  try:
    yield
  finally:
    for name, value in before.items():
      if value is None:
        os.environ.pop(name, None)
      else:
        os.environ[name] = value


def check_writable(out: Path, folder: Path, create: bool = True) -> None:
  """Refuses, before any work, an `--out` whose `folder` cannot be written or, unless
  `create`, does not exist."""
  try:
    if create:
      folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
      raise ValueError(f"--out {out}: " + (f"{folder} is not a folder" if folder.exists()
                                           else f"the folder {folder} does not exist"))
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    raise ValueError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def check_outputs(tracks: list[tuple[Path, Path]], out_dir: Path) -> None:
  """Refuses, before any work, two inputs that would share outputs (`kick.wav` and
  `kick.flac` share `kick.eq.json`) and an `--out` that cannot be written."""
  owner: dict[Path, Path] = {}
  for track, relative in tracks:
    stem = relative.with_suffix("")
    if stem in owner:
      raise ValueError(f"{owner[stem]} and {track} would write the same outputs "
                       f"({out_dir / stem}.*): give them different --out folders or names")
    owner[stem] = track
  check_writable(out_dir, out_dir)


def tracks_in(inputs) -> list[tuple[Path, Path]]:
  """Every audio file in `inputs`, each with where its outputs go under `--out`: its path
  below the folder given (`drums/kitA/kick.wav` → `kitA/kick.wav`), or its name for a file."""
  tracks = []
  for given in map(Path, inputs):
    if given.is_dir():
      tracks += [(track, track.relative_to(given)) for track in find_audio_files([given])]
    else:
      tracks.append((given, Path(given.name)))
  return tracks


def _outputs(track: Path, out: Path, suffixes) -> list[Path]:
  """`out` (the track's output under `--out`, suffix "") and the files beside it with
  `suffixes` (`kick.wav` → `kick.eq.json`, ...); never the input itself."""
  paths = [out.with_name(out.stem + suffix) if suffix else out for suffix in suffixes]
  if any(path.resolve() == track.resolve() for path in paths):
    raise AudioError(f"{track}: refusing to overwrite the input; choose another --out")
  return paths


def failure_line(track: Path, error: Exception) -> str:
  """The line a track's failure prints."""
  if isinstance(error, OSError):
    return f"{track}: {error.strerror or error}"
  return about(track, error)


def about(subject, error: Exception) -> str:
  """`error`'s message naming `subject` (a file, say) once: prefixed unless it names it."""
  return str(error) if str(subject) in str(error) else f"{subject}: {error}"
