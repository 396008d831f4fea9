"""Fetch the development-benchmark corpora from package registries.

Every corpus is real code we did not write, pinned in bench/corpora.json and
fetched at benchmark time (never committed):

- Python: the sdist from PyPI (`pip download --no-deps --no-binary :all:`),
  because sdists carry the tests, which are realistic distractors;
- JavaScript / TypeScript: the npm tarball (`npm pack name@version`);
- Go / Rust: Debian's `golang-*-dev` / `librust-*-dev` packages
  (`apt-get download` + `dpkg-deb -x`), which hold the upstream sources;
- every other language: Debian source packages (`apt-get source --download-only`,
  the upstream `.orig.tar.*`); needs `deb-src` on the `Types:` line of the apt
  sources, which this script adds itself when it is missing (as root).

Each corpus is unpacked into bench/.corpora/<name>/. A marker file
bench/.corpora/.<name>.json records what was prepared, so a second run skips
corpora already there (idempotent) and re-fetches one whose pin changed.

Usage:
    python bench/prepare_corpora.py                 # all corpora
    python bench/prepare_corpora.py --only click    # one corpus
    python bench/prepare_corpora.py --check         # also validate bench/queries/*.jsonl
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_CONFIG = BENCH / "corpora.json"
DEFAULT_DEST = BENCH / ".corpora"
SOURCES = ("pypi", "pypi-wheel", "npm", "debian", "debian-src")
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


class PrepareError(Exception):
    """A corpus could not be fetched or unpacked; the message says which and why."""


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    language: str
    source: str  # pypi | npm | debian | debian-src
    package: str
    version: str
    root: str  # folder inside the unpacked package that becomes the corpus root
    include: tuple[str, ...] = ()  # paths under root to keep; everything when empty

    @property
    def pin(self) -> str:
        return f"{self.source}:{self.package}=={self.version}"


def load_specs(config: Path) -> list[CorpusSpec]:
    """Parse corpora.json, failing with one clear line on a bad entry."""
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PrepareError(f"cannot read {config}: {exc}") from None
    specs: list[CorpusSpec] = []
    for i, entry in enumerate(data.get("corpora", [])):
        missing = [k for k in ("name", "language", "source", "package", "version", "root") if k not in entry]
        if missing:
            raise PrepareError(f"{config}: corpus #{i} lacks {', '.join(missing)}")
        if entry["source"] not in SOURCES:
            raise PrepareError(f"{config}: corpus {entry['name']!r} has unknown source {entry['source']!r}")
        specs.append(
            CorpusSpec(
                name=entry["name"], language=entry["language"], source=entry["source"],
                package=entry["package"], version=entry["version"], root=entry["root"],
                include=tuple(entry.get("include", ())),
            )
        )
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise PrepareError(f"{config}: duplicate corpus names")
    return specs


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _fail(spec: CorpusSpec, cmd: list[str], proc: subprocess.CompletedProcess[str]) -> PrepareError:
    last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
    return PrepareError(f"{spec.name}: `{' '.join(cmd)}` failed: {last[0]}")


def _single_file(folder: Path, spec: CorpusSpec) -> Path:
    files = [p for p in folder.iterdir() if p.is_file()]
    if len(files) != 1:
        raise PrepareError(f"{spec.name}: expected one downloaded file, found {len(files)}")
    return files[0]


def fetch_pypi(spec: CorpusSpec, work: Path, wheel: bool = False) -> Path:
    """The sdist (tests included); `wheel` for the rare package whose sources in another
    language ship only in its pure-Python wheel."""
    kind = ["--only-binary", ":all:"] if wheel else ["--no-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind,
           "--disable-pip-version-check", "-q", "-d", str(work / "dl"), f"{spec.package}=={spec.version}"]
    proc = _run(cmd, work)
    if proc.returncode != 0:
        raise _fail(spec, cmd, proc)
    return _single_file(work / "dl", spec)


def fetch_npm(spec: CorpusSpec, work: Path) -> Path:
    (work / "dl").mkdir()
    cmd = ["npm", "pack", "--silent", f"{spec.package}@{spec.version}"]
    proc = _run(cmd, work / "dl")
    if proc.returncode != 0:
        raise _fail(spec, cmd, proc)
    return _single_file(work / "dl", spec)


_apt_updated = False


def fetch_debian(spec: CorpusSpec, work: Path) -> Path:
    global _apt_updated
    (work / "dl").mkdir()
    cmd = ["apt-get", "download", f"{spec.package}={spec.version}"]
    proc = _run(cmd, work / "dl")
    if proc.returncode != 0 and not _apt_updated:
        # A fresh machine may have no package lists yet: refresh them once, then retry.
        _apt_updated = True
        _run(["apt-get", "update", "-qq"], work)
        proc = _run(cmd, work / "dl")
    if proc.returncode != 0:
        raise _fail(spec, cmd, proc)
    return _single_file(work / "dl", spec)


def _enable_deb_src() -> None:
    """Add deb-src to the Debian apt sources (deb822 `Types:` lines) and refresh the lists."""
    try:
        text = APT_SOURCES.read_text(encoding="utf-8")
    except OSError:
        return
    lines = [("Types: deb deb-src" if line.strip() == "Types: deb" else line) for line in text.splitlines()]
    new = "\n".join(lines) + "\n"
    if new != text:
        try:
            APT_SOURCES.write_text(new, encoding="utf-8")
        except OSError:
            return  # not root: apt-get source says what is missing
    _run(["apt-get", "update", "-qq"], Path("/"))


def _tarballs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".tar." in p.name and not p.name.endswith(".part"))


def fetch_debian_source(spec: CorpusSpec, work: Path) -> Path:
    """The upstream tarball of a Debian source package (the .orig one, or a native package's)."""
    (work / "dl").mkdir()
    cmd = ["apt-get", "source", "--download-only", "-qq", f"{spec.package}={spec.version}"]
    proc = _run(cmd, work / "dl")
    if proc.returncode != 0 and not _tarballs(work / "dl"):
        _enable_deb_src()
        proc = _run(cmd, work / "dl")
    # Only the upstream tarball is needed: a mirror missing the Debian patch tarball is fine.
    tarballs = _tarballs(work / "dl")
    if not tarballs:
        raise _fail(spec, cmd, proc)
    upstream = [p for p in tarballs if ".orig.tar." in p.name and "orig-" not in p.name]
    native = [p for p in tarballs if ".debian.tar." not in p.name]
    chosen = upstream or native
    if len(chosen) != 1:
        raise PrepareError(f"{spec.name}: expected one upstream tarball, found {[p.name for p in tarballs]}")
    return chosen[0]


def unpack(archive: Path, into: Path, spec: CorpusSpec) -> None:
    into.mkdir()
    name = archive.name
    if name.endswith(".deb"):
        cmd = ["dpkg-deb", "-x", str(archive), str(into)]
        proc = _run(cmd, into)
        if proc.returncode != 0:
            raise _fail(spec, cmd, proc)
    elif name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    elif name.endswith((".zip", ".whl")):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    else:
        raise PrepareError(f"{spec.name}: do not know how to unpack {name}")


def _marker(dest: Path, spec: CorpusSpec) -> Path:
    return dest / f".{spec.name}.json"


def is_prepared(dest: Path, spec: CorpusSpec) -> bool:
    marker = _marker(dest, spec)
    if not marker.is_file() or not (dest / spec.name).is_dir():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("pin") == spec.pin
    except (OSError, json.JSONDecodeError):
        return False


def prepare(spec: CorpusSpec, dest: Path) -> tuple[bool, Path]:
    """Fetch and unpack one corpus; returns (fetched_now, corpus_dir)."""
    target = dest / spec.name
    if is_prepared(dest, spec):
        return False, target
    fetchers = {"pypi": fetch_pypi, "pypi-wheel": functools.partial(fetch_pypi, wheel=True), "npm": fetch_npm, "debian": fetch_debian,
                "debian-src": fetch_debian_source}
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"corpus-{spec.name}-") as tmp:
        work = Path(tmp)
        archive = fetchers[spec.source](spec, work)
        unpack(archive, work / "x", spec)
        root = work / "x" / spec.root
        if not root.is_dir():
            raise PrepareError(f"{spec.name}: {spec.root!r} is not a folder in {archive.name}")
        staged = work / "staged"
        staged.mkdir()
        for rel in spec.include or tuple(p.name for p in root.iterdir()):
            src = root / rel
            if not src.exists():
                raise PrepareError(f"{spec.name}: {rel!r} is not in {archive.name}")
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, staged / rel, symlinks=True)
            else:
                shutil.copy2(src, staged / rel)
        # Replace atomically enough: a half-copied corpus never carries a marker.
        _marker(dest, spec).unlink(missing_ok=True)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(staged), str(target))
    _marker(dest, spec).write_text(
        json.dumps({"pin": spec.pin, "language": spec.language}, indent=1) + "\n", encoding="utf-8"
    )
    return True, target


def count_files(folder: Path) -> dict[str, int]:
    """Files per extension, for the summary line."""
    counts: dict[str, int] = {}
    for p in folder.rglob("*"):
        if p.is_file():
            ext = p.suffix or p.name
            counts[ext] = counts.get(ext, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def check_queries(dest: Path) -> int:
    """Validate every bench/queries/*.jsonl file against the prepared corpora; returns #errors."""
    sys.path.insert(0, str(BENCH.parent))
    from codesearch.eval.evaluate import EvalError, load_queries, validate_queries

    errors = 0
    for qfile in sorted((BENCH / "queries").glob("*.jsonl")):
        try:
            queries = load_queries(qfile)
        except EvalError as exc:
            print(f"error: {exc}")
            errors += 1
            continue
        problems = validate_queries(queries, dest)
        for problem in problems:
            print(f"error: {qfile.name}: {problem}")
        errors += len(problems)
        print(f"{qfile.name}: {len(queries)} queries, {len(problems)} problems")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--only", action="append", default=[], help="corpus name (repeatable)")
    parser.add_argument("--check", action="store_true", help="validate bench/queries against the corpora")
    args = parser.parse_args(argv)
    try:
        specs = load_specs(args.config)
        unknown = set(args.only) - {s.name for s in specs}
        if unknown:
            raise PrepareError(f"unknown corpus: {', '.join(sorted(unknown))}")
        for spec in specs:
            if args.only and spec.name not in args.only:
                continue
            fetched, folder = prepare(spec, args.dest)
            counts = count_files(folder)
            top = ", ".join(f"{n} {ext}" for ext, n in list(counts.items())[:4])
            print(f"{'fetched' if fetched else 'present'} {spec.name:<12} {spec.pin:<52} {top}")
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        return 1 if check_queries(args.dest) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
