"""The networks' forward functions, kept exported (`jax.export`) beside JAX's compilation cache.

JAX's persistent compilation cache spares a cold process XLA's compilation, not the tracing
of the networks' Flax code that comes before it (nor that of their initialisers, traced for
the shapes of the parameters a model directory must hold): about 1 s of a cold
`jaxeq process`. Where that cache is on (`jax_compilation_cache_dir`, which the command
sets), the first process exports each forward function, with a symbolic batch, to
`jaxeq-exported/` inside it; later ones read it back, with the parameters' shapes, and trace
nothing. The outputs are the same bit for bit (`tests/test_forward_store.py`).

An entry's name is a digest of all that decides its program: the network and its
configuration, the source of the jaxeq package, the versions of JAX, jaxlib and Flax, the
backend. An entry that cannot be read is traced again; one that cannot be written (no
`flatbuffers`, which serialisation needs; a read-only folder) is not kept. Entries are
serialised StableHLO and JSON-like metadata (flatbuffers), never pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any, Callable

import jax

from jaxeq.atomic import atomic_path

FOLDER = "jaxeq-exported"
PACKAGE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Forward:
  """A network's jitted forward function `fn(params, inputs)` on inputs with any leading
  (batch) size, and the shapes and dtypes of the parameters it takes (a pytree of
  `jax.ShapeDtypeStruct`, as `jax.eval_shape` of the initialiser gives them)."""
  fn: Callable
  params_like: Any


def forward(name: str, config: dict, trace: Callable[[], Forward], input_shape: tuple[int, ...],
            input_dtype=jax.numpy.float32) -> Forward:
  """Network `name`'s forward function for inputs `(batch, *input_shape)`: read from the
  store when it holds it, else `trace()` (which builds it from the Flax model), kept in the
  store when there is one. `config` (JSON-able) holds what, beside the source, decides the
  program: a model's width, its number of classes."""
  path = _entry(name, config, input_shape, input_dtype)
  if path is not None and path.is_file():
    stored = _read(path)
    if stored is not None:
      return stored
  traced = trace()
  exported = None if path is None else _export(traced, input_shape, input_dtype)
  if exported is None:
    return traced
  _write(path, exported)
  # The program a later process will read, not a second trace of the Flax code.
  return Forward(jax.jit(exported.call), traced.params_like)


def store_folder() -> Path | None:
  """Where the exported functions are kept: `jaxeq-exported/` in JAX's compilation cache
  folder when that cache is on and local; None (nothing kept) otherwise."""
  cache = jax.config.jax_compilation_cache_dir
  if not cache or not jax.config.jax_enable_compilation_cache or "://" in cache:
    return None
  return Path(cache).expanduser() / FOLDER


def _entry(name: str, config: dict, input_shape, input_dtype) -> Path | None:
  folder = store_folder()
  if folder is None:
    return None
  key = json.dumps({"name": name, "config": config, "input": [list(input_shape),
                                                               jax.numpy.dtype(input_dtype).name],
                    "versions": _versions(), "backend": jax.default_backend(),
                    "source": _source_digest()}, sort_keys=True, default=str)
  return folder / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.jaxexport"


@functools.lru_cache(maxsize=None)
def _versions() -> dict[str, str]:
  return {package: importlib.metadata.version(package) for package in ("jax", "jaxlib", "flax")}


@functools.lru_cache(maxsize=None)
def _source_digest() -> str:
  """A digest of every module of the jaxeq package: an edit anywhere retraces (a network's
  code reaches into other modules, `spectrum.zero_centre` in the matchers')."""
  digest = hashlib.sha256()
  for path in sorted(PACKAGE.rglob("*.py")):
    digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
  return digest.hexdigest()


def _read(path: Path) -> Forward | None:
  # Any failure (a truncated or foreign file, a JAX that no longer reads it) means "not
  # stored": the network is traced, as without a store.
  try:
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    (params, _inputs), _ = jax.tree.unflatten(exported.in_tree, exported.in_avals)
    like = jax.tree.map(lambda aval: jax.ShapeDtypeStruct(aval.shape, aval.dtype), params)
  except Exception:  # noqa: BLE001
    return None
  return Forward(jax.jit(exported.call), like)


def _export(traced: Forward, input_shape, input_dtype) -> jax.export.Exported | None:
  batch, = jax.export.symbolic_shape("batch")
  inputs = jax.ShapeDtypeStruct((batch, *input_shape), input_dtype)
  # Keeping the entry is an optimisation: a network that cannot be exported, or a store that
  # cannot be written, leaves the run as it would be without a store.
  try:
    return jax.export.export(traced.fn)(traced.params_like, inputs)
  except Exception:  # noqa: BLE001
    return None


def _write(path: Path, exported: jax.export.Exported) -> None:
  try:
    blob = exported.serialize()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
      tmp.write_bytes(blob)
  except Exception:  # noqa: BLE001  (no flatbuffers, a read-only folder, a full disk)
    pass
