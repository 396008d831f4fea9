"""`codesearch mcp`: the real server over stdio, driven by the MCP SDK's own client.

One server (two roots: a git fixture repository and a second copy) serves the whole
module; it indexes both on first use, embeds in the background and answers every
test. Another test talks raw JSON-RPC to a fresh server and checks that stdout
carries nothing else.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import CallToolResult

from codesearch.serve.mcp import CHARS_PER_TOKEN
from tests.conftest import FIXTURES

pytestmark = pytest.mark.slow
TOOLS = {"search", "find_symbol", "read_span", "index_status", "reindex"}


def server_env() -> dict[str, str]:
    # The SDK passes a minimal environment to the server by default: keep ours (offline).
    return {**os.environ, "HF_HUB_OFFLINE": "1", "CODESEARCH_EMBED_CACHE": "0",
            "TOKENIZERS_PARALLELISM": "false"}


def git_repo(target: Path) -> Path:
    shutil.copytree(FIXTURES / "minirepo", target)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init"]):
        subprocess.run(["git", *args], cwd=target, check=True, capture_output=True)
    return target


class Client:
    """A synchronous face on an MCP ClientSession living in a portal's event loop."""

    def __init__(self, portal: BlockingPortal, session: ClientSession, errlog: Path):
        self.portal, self.session, self.errlog = portal, session, errlog

    def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return self.portal.call(self.session.call_tool, tool, arguments)

    def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.call(tool, **arguments)
        assert not result.is_error, result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content is not None
        # The text block a model reads is the same answer, compact.
        assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
        return result.structured_content

    def error(self, tool: str, **arguments: Any) -> str:
        result = self.call(tool, **arguments)
        assert result.is_error, result.structured_content
        text = result.content[0].text  # type: ignore[union-attr]
        assert "\n" not in text and "Traceback" not in text
        return text


def open_client(args: list[str], errlog: Path, cwd: Path | None = None,
                command: str = sys.executable) -> Iterator[Client]:
    params = StdioServerParameters(command=command, args=args, env=server_env(),
                                   cwd=str(cwd) if cwd else None)
    with (
        start_blocking_portal() as portal,
        errlog.open("w") as log,
        portal.wrap_async_context_manager(stdio_client(params, errlog=log)) as (read, write),
        portal.wrap_async_context_manager(ClientSession(read, write)) as session,
    ):
        portal.call(session.initialize)
        yield Client(portal, session, errlog)


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("mcp")
    main = git_repo(base / "minirepo")
    second = git_repo(base / "second")
    (base / "secret.txt").write_text("not for agents\n")
    (main / "outside_link.txt").symlink_to(base / "secret.txt")
    return main, second


@pytest.fixture(scope="module")
def client(repos: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    main, second = repos
    errlog = tmp_path_factory.mktemp("mcp-log") / "stderr.log"
    yield from open_client(["-m", "codesearch", "mcp", "--root", str(main), "--root", str(second)],
                           errlog)


def wait_embedded(client: Client, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.ok("index_status")
        if all(r["indexed"] and r["vectors_pending"] == 0 and not r["embedding"] for r in status["roots"]):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_tools_and_their_schemas(client: Client) -> None:
    tools = {t.name: t for t in client.portal.call(client.session.list_tools).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object"
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    props = search["properties"]
    assert set(props) >= {"query", "k", "mode", "lang", "path", "content", "max_tokens", "cursor", "root",
                          "per_file"}
    assert props["mode"]["enum"] == ["hybrid", "text", "vector"]
    assert props["content"]["enum"] == ["code", "docs", "all"]
    assert (props["k"]["default"], props["k"]["minimum"], props["k"]["maximum"]) == (10, 1, 100)
    assert props["max_tokens"]["default"] == 4000
    assert all(p.get("description") for p in props.values())
    hit = tools["search"].output_schema["$defs"]["SearchHit"]["properties"]
    assert set(hit) >= {"root", "path", "start_line", "end_line", "symbol", "kind", "language",
                        "score", "snippet"}
    assert tools["find_symbol"].input_schema["required"] == ["name"]
    assert tools["read_span"].input_schema["required"] == ["path"]


def test_first_use_indexes_both_roots_and_embeds_behind(client: Client, repos: tuple[Path, Path]) -> None:
    status = wait_embedded(client)
    by_name = {r["root"]: r for r in status["roots"]}
    assert set(by_name) == {"minirepo", "second"}
    for root, path in zip(("minirepo", "second"), repos, strict=True):
        info = by_name[root]
        assert info["path"] == str(path) and info["model"] == "minilm"
        assert info["files"] == 10 and info["chunks"] > 20 and info["changed_since"] == 0
        assert info["last_indexed"] and info["error"] is None
    log = client.errlog.read_text()
    assert "no index yet" in log and "embedded" in log  # progress went to stderr


def test_a_natural_language_query_finds_the_definition(client: Client) -> None:
    wait_embedded(client)
    answer = client.ok("search", query="reverse the characters of a string", k=3, root="minirepo")
    top = answer["hits"][0]
    assert (top["path"], top["symbol"], top["kind"], top["language"]) == (
        "cmd/server/main.go", "ReverseString", "function", "go")
    assert (top["start_line"], top["end_line"]) == (15, 22)
    assert "func ReverseString(s string) string {" in top["snippet"] and not top["cut"]
    assert answer["vectors_pending"] == 0 and answer["mode"] == "hybrid"
    retry = client.ok("search", query="call a function again after it fails, waiting longer each time",
                      k=3, lang="python", root="minirepo")
    assert retry["hits"][0]["symbol"] in {"call_with_retries", "backoff_delays"}
    assert all(h["language"] == "python" for h in retry["hits"])


def test_symbol_queries_return_the_definitions(client: Client) -> None:
    assert client.ok("search", query="ReverseString", k=1, root="minirepo")["hits"][0]["symbol"] == "ReverseString"
    cases = {
        "ColumnStats.push": ("src/dataio/tables.py", "ColumnStats.push", "method", 32, 36),
        "Matrix::transpose": ("tools/wordfreq.rs", "Matrix::transpose", "method", 19, 27),
        "tables.read_csv_rows": ("src/dataio/tables.py", "read_csv_rows", "function", 7, 11),
        "server.ReverseString": ("cmd/server/main.go", "ReverseString", "function", 15, 22),
        "LruCache.removeEldestEntry": ("java/com/example/LruCache.java", "LruCache.removeEldestEntry",
                                       "method", 15, 18),
    }
    for name, (path, symbol, kind, start, end) in cases.items():
        answer = client.ok("find_symbol", name=name, root="minirepo")
        first = answer["definitions"][0]
        assert (first["path"], first["symbol"], first["kind"], first["start_line"], first["end_line"]) \
            == (path, symbol, kind, start, end), name
        assert first["match"] == "exact" and first["snippet"].strip()
    push = client.ok("find_symbol", name="ColumnStats.push", root="minirepo")
    assert "def push(self, value: float) -> None:" in push["definitions"][0]["snippet"]
    assert all(r["language"] == "python" for r in push["references"])
    # Both roots define it: one definition each, each saying where it is.
    both = client.ok("find_symbol", name="count_missing_values", kind="function")
    assert sorted(d["root"] for d in both["definitions"]) == ["minirepo", "second"]
    refs = {(r["path"], r["symbol"]) for r in both["references"]}
    assert ("tests/test_tables.py", "test_count_missing_values") in refs
    none = client.ok("find_symbol", name="ColumnStats", kind="function")
    assert none["definitions"] == [] and "no definition" in none["note"]
    other_class = client.ok("find_symbol", name="Vector.push", root="minirepo")
    assert [d["match"] for d in other_class["definitions"]] == ["name"]


@pytest.mark.parametrize("max_tokens", [200, 1000, 4000])
def test_answers_stay_within_max_tokens(client: Client, max_tokens: int) -> None:
    result = client.call("search", query="parse values from a table of text", k=10, content="all",
                         max_tokens=max_tokens, root="minirepo")
    assert not result.is_error
    answer = result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert len(text) / CHARS_PER_TOKEN <= max_tokens
    assert answer["tokens"] == -(-len(text) // CHARS_PER_TOKEN) <= max_tokens
    assert answer["hits"], "at least one hit fits even 200 tokens"
    shown = len(answer["hits"])
    if max_tokens == 200:
        assert answer["omitted"] > 0 and shown + answer["omitted"] == 10
        assert answer["next_cursor"] and "next_cursor" in answer["note"]
    if max_tokens == 1000:
        assert answer["cut"] > 0 and shown == 10
        cut = next(h for h in answer["hits"] if h["cut"])
        assert "not shown ...]" in cut["snippet"]
    if max_tokens == 4000:
        assert answer["omitted"] == answer["cut"] == 0 and shown == 10


def test_cursor_pages_through_the_same_ranking(client: Client) -> None:
    query = {"query": "parse values from a table of text", "content": "all", "root": "minirepo"}
    whole = client.ok("search", k=12, max_tokens=20000, **query)["hits"]
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(20):
        page = client.ok("search", k=4, max_tokens=300, cursor=cursor, **query)
        seen += [(h["path"], h["start_line"]) for h in page["hits"]]
        cursor = page["next_cursor"]
        if len(seen) >= 12:
            break
    assert seen[:12] == [(h["path"], h["start_line"]) for h in whole]
    wrong = client.error("search", query="something else", cursor=cursor)
    assert "cursor" in wrong
    # per_file: at most that many hits of one file, the others in the order they had.
    one = client.ok("search", k=12, max_tokens=20000, per_file=1, **query)["hits"]
    paths = [h["path"] for h in one]
    assert len(paths) == len(set(paths)) and len(paths) > 1
    first_seen = list(dict.fromkeys(h["path"] for h in whole))
    assert paths[: len(first_seen)] == first_seen
    assert "cursor" in client.error("search", k=4, per_file=1, cursor=page["next_cursor"], **query)


def test_an_edit_is_found_without_reindex(client: Client, repos: tuple[Path, Path]) -> None:
    main = repos[0]
    target = main / "src" / "net" / "urls.py"
    target.write_text(target.read_text() + "\n\ndef frobnicate_widget_registry(registry):\n"
                      "    return sorted(registry)\n")
    answer = client.ok("search", query="frobnicate widget registry", k=5, root="minirepo")
    assert answer["reindexed_files"] == 1
    found = [(h["path"], h["symbol"]) for h in answer["hits"]]
    assert ("src/net/urls.py", "frobnicate_widget_registry") in found
    words = client.ok("search", query="frobnicate widget registry", k=1, mode="text", root="minirepo")
    assert words["reindexed_files"] == 0
    assert words["hits"][0]["symbol"] == "frobnicate_widget_registry"
    assert "return sorted(registry)" in words["hits"][0]["snippet"]
    # A new file in a new folder, then its removal.
    (main / "src" / "extra").mkdir()
    (main / "src" / "extra" / "quux.py").write_text("def zanzibar_quux_total(items):\n    return len(items)\n")
    found = client.ok("find_symbol", name="zanzibar_quux_total")
    assert [d["path"] for d in found["definitions"]] == ["src/extra/quux.py"]
    (main / "src" / "extra" / "quux.py").unlink()
    gone = client.ok("search", query="zanzibar quux total", k=3, mode="text", root="minirepo")
    assert all(h["path"] != "src/extra/quux.py" for h in gone["hits"])
    # The vectors follow in the background; then meaning ranks the new function first too.
    status = wait_embedded(client)
    assert {r["root"]: r["changed_since"] for r in status["roots"]} == {"minirepo": 0, "second": 0}
    meaning = client.ok("search", query="frobnicate widget registry", k=1, mode="vector", root="minirepo")
    assert meaning["hits"][0]["symbol"] == "frobnicate_widget_registry"


def test_read_span_reads_inside_the_root_only(client: Client, repos: tuple[Path, Path]) -> None:
    main = repos[0]
    span = client.ok("read_span", path="cmd/server/main.go", start_line=15, end_line=16, root="minirepo")
    assert span["text"] == "// ReverseString returns s with its runes in reverse order.\nfunc ReverseString(s string) string {"
    assert (span["start_line"], span["end_line"], span["truncated"]) == (15, 16, False)
    whole = client.ok("read_span", path=str(main / "src/net/retry.py"))
    assert whole["root"] == "minirepo" and whole["end_line"] == whole["total_lines"]
    short = client.ok("read_span", path="src/dataio/tables.py", root="minirepo", max_tokens=100)
    assert short["truncated"] and short["next_start_line"] == short["end_line"] + 1
    for bad in ("../secret.txt", str(main.parent / "secret.txt"), "outside_link.txt",
                "src/../../secret.txt", "/etc/passwd", "~/.ssh/id_rsa"):
        message = client.error("read_span", path=bad, root="minirepo")
        assert "outside the indexed root" in message, (bad, message)
    assert "holds no source" in client.error("read_span", path=".git/config", root="minirepo")
    assert "no such file" in client.error("read_span", path="nope.py", root="minirepo")
    assert "before start_line" in client.error("read_span", path="src/net/retry.py", start_line=5,
                                               end_line=2, root="minirepo")
    assert client.ok("index_status")["roots"]  # still serving


def test_bad_input_is_a_one_line_tool_error(client: Client) -> None:
    cases = [
        ("search", {"query": "x", "mode": "fuzzy"}, "mode"),
        ("search", {"query": "x", "k": 0}, "k"),
        ("search", {"query": "x", "k": 100000}, "k"),
        ("search", {"query": "   "}, "empty query"),
        ("search", {"query": "x", "max_tokens": 5}, "max_tokens"),
        ("search", {"query": "x", "root": "no-such-root"}, "no root"),
        ("search", {"query": "x", "cursor": "garbage"}, "cursor"),
        ("search", {"query": "x", "content": "pictures"}, "content"),
        ("search", {"query": "x", "per_file": -1}, "per_file"),
        ("find_symbol", {"name": ""}, "empty name"),
        ("read_span", {"path": ""}, "empty path"),
        ("reindex", {"paths": ["../outside.py"]}, "outside the indexed root"),
    ]
    for tool, arguments, expected in cases:
        assert expected in client.error(tool, **arguments), (tool, arguments)
    assert client.ok("search", query="ReverseString", k=1, mode="text")["hits"]


def test_several_roots_and_a_corrupt_one(client: Client, repos: tuple[Path, Path]) -> None:
    wait_embedded(client)
    both = client.ok("search", query="LruCache", k=4, mode="text")
    assert {h["root"] for h in both["hits"][:2]} == {"minirepo", "second"}
    only = client.ok("search", query="LruCache", k=4, mode="text", root=str(repos[1]))
    assert {h["root"] for h in only["hits"]} == {"second"}
    manifest = repos[1] / ".codesearch" / "manifest.json"
    saved = manifest.read_bytes()
    try:
        manifest.write_text("{ not json")
        message = client.error("search", query="LruCache", root="second")
        assert "manifest.json" in message
        rest = client.ok("search", query="LruCache", k=2, mode="text")
        assert {h["root"] for h in rest["hits"]} == {"minirepo"} and "second" in rest["note"]
    finally:
        manifest.write_bytes(saved)
    assert client.ok("search", query="LruCache", k=1, root="second")["hits"]


def test_reindex_returns_at_once_and_words_are_searchable(client: Client, repos: tuple[Path, Path]) -> None:
    path = repos[1] / "src" / "net" / "retry.py"
    path.write_text(path.read_text() + "\n\ndef quokka_jitter_window():\n    return 3\n")
    started = time.monotonic()
    answer = client.ok("reindex", paths=["src/net/retry.py"], root="second")
    assert time.monotonic() - started < 10
    (done,) = answer["roots"]
    assert (done["root"], done["files_changed"]) == ("second", 1)
    hits = client.ok("search", query="quokka jitter window", mode="text", k=1, root="second")
    # (A two-line function joins its neighbour's chunk: the hit is that chunk.)
    assert "def quokka_jitter_window():" in hits["hits"][0]["snippet"] and hits["reindexed_files"] == 0


def test_200_sequential_calls(client: Client) -> None:
    calls = [("search", {"query": "read rows from a csv file", "k": 5, "mode": "text"}),
             ("find_symbol", {"name": "backoff_delays"}),
             ("read_span", {"path": "src/net/urls.py", "root": "minirepo", "end_line": 4}),
             ("index_status", {})]
    answered = 0
    for n in range(200):
        tool, arguments = calls[n % len(calls)]
        client.ok(tool, **arguments)
        answered += 1
    assert answered == 200


def test_8_concurrent_calls(client: Client) -> None:
    queries = ["reverse a string", "retry with backoff", "query parameters of a url", "debounce",
               "lru cache eviction", "word frequencies", "validate signup", "column variance"]

    async def all_at_once() -> list[CallToolResult]:
        results: list[CallToolResult | None] = [None] * len(queries)

        async def one(n: int) -> None:
            results[n] = await client.session.call_tool("search", {"query": queries[n], "k": 2})

        async with anyio.create_task_group() as group:
            for n in range(len(queries)):
                group.start_soon(one, n)
        return [r for r in results if r is not None]

    results = client.portal.call(all_at_once)
    assert len(results) == 8
    for query, result in zip(queries, results, strict=True):
        assert not result.is_error and result.structured_content["query"] == query
        assert result.structured_content["hits"]


def test_no_warm_query_server_is_started(client: Client, repos: tuple[Path, Path]) -> None:
    from codesearch.serve.daemon import socket_path

    client.ok("search", query="debounce", k=1)
    for repo in repos:
        assert not socket_path(repo / ".codesearch").exists()


def test_a_long_definition_is_cut_to_signature_and_matching_lines() -> None:
    from codesearch.serve.mcp import cut_snippet, json_chars, query_terms, signature_lines

    body = [f"    step_{n} = compute({n})" for n in range(40)]
    body[25] = "    checksum = crc32_of_payload(buffer)"
    lines = ["# helper", "@cached", "def frame(", "    buffer: bytes,", ") -> int:", *body, "    return step_39"]
    text = "\n".join(lines)
    assert signature_lines(lines) == [1, 2, 3, 4]
    snippet = cut_snippet(text, 100, query_terms("crc32 checksum of the payload"), (100, 146), 260)
    assert json_chars(snippet) <= 260
    shown = snippet.split("\n")
    assert shown[0] == "[... line 100 not shown ...]" and shown[1:5] == lines[1:5]
    assert "    checksum = crc32_of_payload(buffer)" in shown
    assert "[... lines 105-129 not shown ...]" in shown and shown[-1].startswith("[... lines ")
    tiny = cut_snippet(text, 100, frozenset(), (100, 146), 12)
    assert json_chars(tiny) <= 12 and tiny.endswith("…")
    rng = random.Random(0)  # any text, any cap: never a character over
    words = ["alpha", "crc32", '"quoted"', "tab\there", "x" * 300, "", "ünïcode"]
    for _ in range(300):
        lines = ["def f(a,", "   b):"] + [" ".join(rng.choices(words, k=rng.randint(0, 6)))
                                           for _ in range(rng.randint(1, 60))]
        cap = rng.randint(5, 900)
        out = cut_snippet("\n".join(lines), 10, query_terms("crc32 quoted"), (10, 70), cap)
        assert json_chars(out) <= cap


def test_water_filling_and_qualified_names() -> None:
    from codesearch.serve.mcp import symbol_tier, water_level

    assert water_level([10, 20, 300, 400], 330) == 150  # short ones whole, long ones share
    assert water_level([10, 20], 1000) == 20
    assert symbol_tier("Session.send", "src/sessions.py", "Session.send") == 0
    assert symbol_tier("sessions.Session.send", "src/sessions.py", "Session.send") == 0
    assert symbol_tier("send", "src/sessions.py", "Session.send") == 0
    assert symbol_tier("session.SEND", "src/sessions.py", "Session.send") == 1
    assert symbol_tier("Adapter.send", "src/sessions.py", "Session.send") == 2
    assert symbol_tier("mux.NewRouter", "mux/mux.go", "NewRouter") == 0
    assert symbol_tier("pkg.helper", "pkg/__init__.py", "helper") == 0
    assert symbol_tier("Vec::push", "src/vec.rs", "Vec::push") == 0
    assert symbol_tier("recv", "src/sessions.py", "Session.send") is None


def _read_messages(proc: subprocess.Popen[bytes], wanted: set[int], timeout: float) -> list[bytes]:
    lines: list[bytes] = []
    seen: set[int] = set()
    buffer = b""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    while seen < wanted:
        assert time.monotonic() < deadline, (seen, lines)
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        assert chunk, f"server exited early: {lines}"
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            lines.append(line)
            message = json.loads(line)
            if "id" in message:
                seen.add(message["id"])
    assert buffer == b""
    return lines


def test_stdout_carries_only_json_rpc(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "fresh")
    proc = subprocess.Popen([sys.executable, "-m", "codesearch", "mcp"], cwd=repo, env=server_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        # Indexes the folder (chunking workers, LanceDB) and loads the model in the
        # foreground (vector mode): whatever they print must land on stderr.
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "search", "arguments": {"query": "reverse a string", "mode": "vector"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "search", "arguments": {"query": "reverse a string"}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
         "params": {"name": "search", "arguments": {"query": "x", "k": -1}}},
        {"jsonrpc": "2.0", "id": 6, "method": "tools/call",
         "params": {"name": "no_such_tool", "arguments": {}}},
    ]
    try:
        proc.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests[:2]))
        proc.stdin.flush()
        lines = _read_messages(proc, {1}, 60)
        proc.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests[2:]))
        proc.stdin.flush()
        lines += _read_messages(proc, {2, 3, 4, 5, 6}, 120)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        rest = proc.stdout.read()  # type: ignore[union-attr]
        stderr = proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    lines += [line for line in rest.split(b"\n") if line]
    messages = [json.loads(line) for line in lines]
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert set(by_id) == {1, 2, 3, 4, 5, 6}
    assert by_id[1]["result"]["serverInfo"]["name"] == "codesearch"
    assert {t["name"] for t in by_id[2]["result"]["tools"]} == TOOLS
    assert not by_id[3]["result"]["isError"], by_id[3]
    found = by_id[4]["result"]
    assert not found["isError"] and found["structuredContent"]["hits"][0]["symbol"] == "ReverseString"
    assert by_id[5]["result"]["isError"] and by_id[6]["result"]["isError"]
    assert "serving fresh" in stderr and "no index yet" in stderr
