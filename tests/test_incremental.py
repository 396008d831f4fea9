"""Re-indexing does exactly the work a change needs, counted on the texts sent to the model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codesearch.index.build import IndexOptions, build_index
from codesearch.search.searcher import Searcher, SearchOptions
from codesearch.store.tables import INDEX_DIRNAME


def _index(root: Path, embedder):
    return build_index(root, IndexOptions(record_texts=True), embedder=embedder)


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


@pytest.fixture()
def indexed(minirepo, default_embedder) -> Path:
    first = _index(minirepo, default_embedder)
    assert first.embedded == first.chunks_total > 0
    return minirepo


def test_unchanged_repo_embeds_nothing(indexed, default_embedder):
    again = _index(indexed, default_embedder)
    assert (again.embedded, again.chunks_written, again.files_changed) == (0, 0, 0)


def test_touched_but_identical_file_is_not_rechunked(indexed, default_embedder):
    _bump_mtime(indexed / "src/net/urls.py")
    again = _index(indexed, default_embedder)
    assert (again.embedded, again.chunks_written, again.files_changed) == (0, 0, 0)


def test_modified_function_is_the_only_text_re_embedded(indexed, default_embedder):
    path = indexed / "src/net/urls.py"
    path.write_text(path.read_text().replace('== "https"', 'in ("https", "wss")'))
    again = _index(indexed, default_embedder)
    assert again.files_changed == 1
    assert len(again.embedded_texts) == 1
    assert "is_secure" in again.embedded_texts[0] and "wss" in again.embedded_texts[0]


def test_added_file_embeds_only_its_chunks(indexed, default_embedder):
    (indexed / "src/net/ports.py").write_text(
        "def parse_port(value: str) -> int:\n    return int(value.split(':')[-1])\n"
    )
    again = _index(indexed, default_embedder)
    assert again.files_changed == 1 and again.embedded == 1
    assert "parse_port" in again.embedded_texts[0]


def test_deleted_file_leaves_no_rows(indexed, default_embedder):
    (indexed / "web/debounce.js").unlink()
    again = _index(indexed, default_embedder)
    assert again.files_deleted == 1 and again.embedded == 0
    result = Searcher(indexed / INDEX_DIRNAME, embedder=default_embedder).search(
        "debounce", SearchOptions(k=50, mode="text"))
    assert all(h.path != "web/debounce.js" for h in result.hits)


def test_renamed_file_is_moved_without_re_embedding(indexed, default_embedder):
    (indexed / "tools/wordfreq.rs").rename(indexed / "tools/words.rs")
    again = _index(indexed, default_embedder)
    assert again.files_deleted == 1 and again.files_changed == 1
    assert again.embedded == 0  # same chunk contents: served from the vector cache
    hits = Searcher(indexed / INDEX_DIRNAME, embedder=default_embedder).search(
        "count word occurrences", SearchOptions(k=3)).hits
    assert hits[0].path == "tools/words.rs"


def test_lexical_only_run_is_queryable_and_reports_pending(minirepo, default_embedder):
    report = build_index(minirepo, IndexOptions(embed=False))
    assert report.embedded == 0 and report.vectors_pending == report.chunks_total > 0
    searcher = Searcher(minirepo / INDEX_DIRNAME, embedder=default_embedder)
    result = searcher.search("ReverseString", SearchOptions(k=3))
    assert result.hits[0].symbol == "ReverseString"
    assert result.vectors_pending == result.chunks
    finished = _index(minirepo, default_embedder)
    assert finished.embedded > 0 and finished.vectors_pending == 0


def test_run_with_nothing_to_do_never_opens_lancedb(indexed):
    """A no-change run (the common hook and habit case) must not pay LanceDB's import."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path\n"
        "from codesearch.index.build import IndexOptions, build_index\n"
        f"r = build_index(Path({str(indexed)!r}), IndexOptions())\n"
        "print(r.files, r.chunks_total, r.files_changed, 'lancedb' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    files, chunks, changed, lance = out.stdout.split()
    assert int(files) >= 9 and int(chunks) > 0 and changed == "0" and lance == "False"
    # Any change takes the real path again.
    (indexed / "src/net/urls.py").write_text("def host_of(url):\n    return url.split('/')[2]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[2:] == ["1", "True"]


def test_index_from_another_chunker_version_is_rechunked_reusing_vectors(indexed, default_embedder):
    from codesearch.store.tables import read_manifest, write_manifest

    index_dir = indexed / INDEX_DIRNAME
    manifest = read_manifest(index_dir)
    assert manifest is not None and manifest.extra["chunker"] >= 1
    manifest.extra["chunker"] = -1  # as if written by an older codesearch
    write_manifest(index_dir, manifest)
    again = _index(indexed, default_embedder)
    assert again.files_changed == again.files >= 9  # every file chunked again
    assert again.embedded == 0  # same chunk contents: vectors come from the cache
    from codesearch.index.build import CHUNKER_VERSION

    assert read_manifest(index_dir).extra["chunker"] == CHUNKER_VERSION
    assert _index(indexed, default_embedder).files_changed == 0


def test_path_limited_run_reports_the_index_file_count(indexed, default_embedder):
    before = _index(indexed, default_embedder).files
    (indexed / "src/net/urls.py").write_text("def host(url):\n    return url\n")
    (indexed / "src/net/extra.py").write_text("def extra():\n    return 1\n")
    (indexed / "web/debounce.js").unlink()
    report = build_index(indexed, IndexOptions(paths=["src/net/urls.py", "src/net/extra.py", "web/debounce.js"]),
                         embedder=default_embedder)
    assert (report.files_changed, report.files_deleted) == (2, 1)
    assert report.files == before  # one added, one removed
