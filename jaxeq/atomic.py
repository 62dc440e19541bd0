"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
  """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

  `suffix` keeps an extension on the temporary name for writers that infer the format
  from it.
  """
  path = Path(path)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=suffix)
  os.close(fd)
  try:
    yield Path(tmp)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide outputs from other users and groups
    os.replace(tmp, path)
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)


def write_text_atomically(path, text: str) -> None:
  with atomic_path(path) as tmp:
    tmp.write_text(text, encoding="utf-8")
