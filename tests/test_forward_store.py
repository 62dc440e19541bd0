"""The store of exported forward functions: read back, they give the jitted Flax models'
outputs bit for bit and their parameters' shapes, and a cold process traces none of the networks."""

import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxeq
from jaxeq import forward_store
from jaxeq.backbones import musicnn
from jaxeq.classes import CLASSES
from jaxeq.classifier import Classifier, InstrumentCNN, init_params
from jaxeq.matcher import load_matcher
from jaxeq.spectrum import zero_centre


SMALL = {"stem_features": 8, "features": (8, 8)}


@pytest.fixture
def store(tmp_path, monkeypatch):
  monkeypatch.setattr(forward_store, "store_folder", lambda: tmp_path / "store")
  return tmp_path / "store"


def _not_traced():
  raise AssertionError("traced, though the store holds the network")


def _same(ours, theirs):
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_stored_network_is_read_back_with_its_parameter_shapes_and_the_same_outputs(store):
  params = init_params(InstrumentCNN(len(CLASSES), **SMALL), jax.random.key(0))
  first = Classifier(CLASSES, params, SMALL)
  windows = np.random.default_rng(0).normal(-40, 20, (3, 256, 256)).astype(np.float32)
  traced = first.network(embedding=True)
  assert len(list(store.iterdir())) == 1
  config = {"classes": len(CLASSES), "model_kwargs": SMALL, "embedding": True}
  stored = forward_store.forward("classifier_cnn", config, _not_traced, (256, 256))
  assert jax.tree.map(lambda s: (s.shape, s.dtype), stored.params_like) == jax.tree.map(
      lambda s: (s.shape, s.dtype), traced.params_like)
  flax_model = jax.jit(lambda p, w: first.model.apply({"params": p}, w, embedding=True))
  for batch in (3, 1):  # any number of windows
    _same(stored.fn(params, windows[:batch]), flax_model(params, windows[:batch]))
  # Another configuration is another entry.
  assert Classifier(CLASSES, params, SMALL).network().fn is not stored.fn
  assert len(list(store.iterdir())) == 2


def test_the_shipped_networks_from_the_store_give_the_flax_models_outputs(store):
  """The classifier's CNN, musicnn and the matcher, stored by one load and read by the next,
  against the Flax models' own `apply`."""
  musicnn.network.cache_clear()  # musicnn's may be in memory already, from another test
  try:
    jaxeq.load_classifier(), load_matcher("cnn_finetuned")
    musicnn.network.cache_clear()
    classifier, matcher = jaxeq.load_classifier(), load_matcher("cnn_finetuned")
    tagger = classifier.backbones.taggers["msd"]
    rng = np.random.default_rng(1)
    windows = rng.normal(-40, 20, (2, 256, 256)).astype(np.float32)
    mels = rng.uniform(0, 3, (2, musicnn.PATCH_FRAMES, musicnn.N_MELS)).astype(np.float32)
    curves = rng.normal(0, 4, (2, 256)).astype(np.float32)
    cnn = classifier.cnn
    _same(cnn.network(embedding=True).fn(cnn.params, windows),
          jax.jit(lambda p, w: cnn.model.apply({"params": p}, w, embedding=True))(cnn.params,
                                                                                  windows))
    _same(tagger.network.fn(tagger.variables, mels),
          jax.jit(musicnn.Musicnn().apply)(tagger.variables, mels))
    _same(matcher.network.fn(matcher.params, curves),
          jax.jit(lambda p, x: matcher.model.apply({"params": p}, zero_centre(x)))(matcher.params,
                                                                                  curves))
  finally:
    musicnn.network.cache_clear()
  assert len(list(store.iterdir())) == 3


def test_an_unreadable_entry_is_traced_again_and_no_store_keeps_nothing(store, monkeypatch):
  config = {"classes": len(CLASSES), "model_kwargs": SMALL, "embedding": False}
  params = init_params(InstrumentCNN(len(CLASSES), **SMALL), jax.random.key(0))
  Classifier(CLASSES, params, SMALL).network()
  entry, = store.iterdir()
  entry.write_bytes(b"not an exported function")
  network = Classifier(CLASSES, params, SMALL).network()
  assert network.params_like["Dense_0"]["kernel"].shape == (2 * 8, len(CLASSES))
  assert forward_store.forward("classifier_cnn", config, _not_traced, (256, 256))  # rewritten
  monkeypatch.setattr(forward_store, "store_folder", lambda: None)
  entry.unlink()
  Classifier(CLASSES, params, SMALL).network()
  assert not list(store.iterdir())


def test_a_cold_command_with_its_cache_filled_traces_no_network_nor_imports_flax(tmp_path):
  """The second `jaxeq analyze` reads the CNN, musicnn and the matcher from the store (in
  the command's compilation cache folder): their Flax code is never traced, nor Flax
  imported."""
  import soundfile as sf
  sf.write(tmp_path / "track.wav", 0.1 * np.random.default_rng(0).standard_normal(44100 * 4),
           44100)
  env = {"JAXEQ_JAX_CACHE": str(tmp_path / "cache"), "JAX_LOG_COMPILES": "1"}
  script = ("import sys; from jaxeq import cli; cli.main(['analyze', 'track.wav']); "
            "print(sorted(m for m in sys.modules if m.startswith('flax')))")
  runs = [subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_environment(env),
                         capture_output=True, text=True, timeout=300) for _ in range(2)]
  for run in runs:
    assert run.returncode == 0, run.stderr
  assert runs[0].stdout.splitlines()[:-1] == runs[1].stdout.splitlines()[:-1]
  assert runs[0].stdout.splitlines()[-1] != "[]"
  assert runs[1].stdout.splitlines()[-1] == "[]"
  assert len(list((tmp_path / "cache" / forward_store.FOLDER).iterdir())) == 3
  for network in ("<lambda>", "apply"):  # the CNN's, the matcher's, musicnn's
    assert f"Finished tracing {network} " in runs[0].stderr
    assert f"Finished tracing {network} " not in runs[1].stderr


def _environment(extra: dict) -> dict:
  import os
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
  return {**env, **extra}
