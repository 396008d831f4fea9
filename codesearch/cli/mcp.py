"""`codesearch mcp`: serve the index to coding agents (Model Context Protocol over stdio),
and write that server into the agents' configuration files (docs/mcp.md).

Installing edits the one entry named `codesearch` and nothing else: JSON files are
read, changed and written back whole; Codex's TOML file is edited as text (its other
tables, comments and layout stay as they were) and parsed before it is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from codesearch.cli.ui import console, fail

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SERVER_NAME = "codesearch"
CLIENTS = ("claude-code", "codex", "cursor", "vscode")
SCOPES = ("project", "user")
BLOCK_START = "<!-- codesearch:start (managed by `codesearch mcp install --agents-md`) -->"
BLOCK_END = "<!-- codesearch:end -->"
AGENTS_BLOCK = """\
## Code search: the `codesearch` MCP server

This repository is indexed by codesearch. Its tools follow your edits on their own (no need to reindex).

- Finding where something is done, or code you cannot name: `search("what it does")`, before grep or
  opening files. Hits are whole definitions, best first; page on with `next_cursor`.
- Going to a definition you can name (`read_csv`, `Class.method`, `pkg.func`, `Type::method`):
  `find_symbol(name)`; it also lists lines that use the name.
- Reading more of a file, e.g. the rest of a hit that was cut: `read_span(path, start_line, end_line)`.
- Exact strings (an error message, a literal) and every occurrence of a name: grep is still the tool.
"""

mcp_app = typer.Typer(
    help="Serve the index to coding agents over MCP (stdio); install it into their configs.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def default_root(start: Path) -> Path:
    """The folder of the index that holds `start`, else `start` itself."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".codesearch" / "manifest.json").exists():
            return folder
    return start


@mcp_app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    roots: Annotated[list[Path] | None, typer.Option(
        "--root", help="Folder to serve (repeatable; default: the index holding the current "
                       "folder, else the current folder). Indexed on first use if needed.")] = None,
) -> None:
    """Start the MCP server over stdio (what an agent's config runs)."""
    if ctx.invoked_subcommand is not None:
        return
    paths = [Path(r).expanduser() for r in roots] if roots else [default_root(Path.cwd())]
    for path in paths:
        if not path.exists():
            fail(f"no such folder: {path}", 2)
        if not path.is_dir():
            fail(f"not a folder: {path}", 2)
    from codesearch.serve.mcp import serve

    raise typer.Exit(serve([p.resolve() for p in paths]))


# --- where each client keeps its servers ---------------------------------------------


@dataclass(frozen=True)
class Target:
    """One client's configuration file and the entry codesearch puts in it."""

    client: str
    scope: str
    path: Path
    key: str  # the table of servers: mcpServers, servers or mcp_servers (TOML)
    entry: dict[str, Any]

    @property
    def is_toml(self) -> bool:
        return self.path.suffix == ".toml"


def server_command() -> list[str]:
    """An absolute command: IDEs start servers with their own PATH, often without our venv."""
    script = Path(sys.executable).with_name("codesearch")
    if script.is_file():
        return [str(script)]
    found = shutil.which("codesearch")
    return [str(Path(found).absolute())] if found else [sys.executable, "-m", "codesearch"]


def vscode_user_dir(home: Path) -> Path:
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Code" / "User"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "Code" / "User"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "Code" / "User"


def codex_home(home: Path) -> Path:
    return Path(os.environ["CODEX_HOME"]) if os.environ.get("CODEX_HOME") else home / ".codex"


def target_for(client: str, scope: str, project: Path, home: Path) -> Target:
    """The file `client` reads at `scope`, and our entry for it.

    Project scope names the project folder as the root. At user scope the root is the
    folder the client works in: Claude Code and Codex start servers there; Cursor and
    VS Code may not, so they get `${workspaceFolder}`, which they expand themselves.
    """
    command, *prefix = server_command()
    workspace_root = ["--root", str(project)] if scope == "project" else []
    ide_root = ["--root", str(project) if scope == "project" else "${workspaceFolder}"]
    if client == "claude-code":
        path = project / ".mcp.json" if scope == "project" else home / ".claude.json"
        entry = {"type": "stdio", "command": command, "args": [*prefix, "mcp", *workspace_root]}
        return Target(client, scope, path, "mcpServers", entry)
    if client == "cursor":
        path = (project if scope == "project" else home) / ".cursor" / "mcp.json"
        return Target(client, scope, path, "mcpServers",
                      {"command": command, "args": [*prefix, "mcp", *ide_root]})
    if client == "vscode":
        path = project / ".vscode" / "mcp.json" if scope == "project" else vscode_user_dir(home) / "mcp.json"
        return Target(client, scope, path, "servers",
                      {"type": "stdio", "command": command, "args": [*prefix, "mcp", *ide_root]})
    if client == "codex":
        path = (project / ".codex" if scope == "project" else codex_home(home)) / "config.toml"
        return Target(client, scope, path, "mcp_servers",
                      {"command": command, "args": [*prefix, "mcp", *workspace_root]})
    raise ValueError(f"unknown client '{client}': choose from {', '.join(CLIENTS)}")


def agents_file(client: str, scope: str, project: Path, home: Path) -> Path:
    """Where the client reads standing instructions: CLAUDE.md for Claude Code, AGENTS.md
    for the others (at user scope, the client's own folder where it has one)."""
    if client == "claude-code":
        return home / ".claude" / "CLAUDE.md" if scope == "user" else project / "CLAUDE.md"
    if client == "codex" and scope == "user":
        return codex_home(home) / "AGENTS.md"
    return project / "AGENTS.md"


# --- JSON configs ---------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ValueError(f"cannot parse {path} as JSON ({err.msg}, line {err.lineno}; comments "  # type: ignore[attr-defined]
                         "are not supported): add the entry by hand, see `--print`") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object: add the entry by hand, see `--print`")
    return data


def _servers(data: dict[str, Any], target: Target) -> dict[str, Any]:
    servers = data.get(target.key)
    if servers is None:
        servers = data[target.key] = {}
    if not isinstance(servers, dict):
        raise ValueError(f"{target.path}: '{target.key}' is not an object: fix it first")
    return servers


def _write(path: Path, text: str) -> None:
    """Atomic: a client reading the file sees the old or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.codesearch-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)  # ~/.claude.json is private
    os.replace(tmp, path)


def _drop(path: Path) -> None:
    """Remove a file left holding nothing, and the client folder it is in (`.cursor/`,
    `.vscode/`, `.codex/`) if that is now empty; never any other folder."""
    path.unlink()
    if path.parent.name in (".cursor", ".vscode", ".codex"):
        with contextlib.suppress(OSError):  # not empty: other files live there
            path.parent.rmdir()


def install_json(target: Target) -> str:
    data = _read_json(target.path)
    servers = _servers(data, target)
    if servers.get(SERVER_NAME) == target.entry:
        return "unchanged"
    action = "updated" if SERVER_NAME in servers else "added"
    servers[SERVER_NAME] = target.entry
    _write(target.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return action


def uninstall_json(target: Target) -> str:
    if not target.path.exists():
        return "absent"
    data = _read_json(target.path)
    servers = data.get(target.key)
    if not isinstance(servers, dict) or SERVER_NAME not in servers:
        return "absent"
    del servers[SERVER_NAME]
    if data == {target.key: {}}:
        _drop(target.path)
    else:
        _write(target.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return "removed"


# --- Codex's TOML -----------------------------------------------------------------------

_TABLE = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*(?:\.|$)')


def _table_path(line: str) -> tuple[str, ...] | None:
    """The dotted name of a `[table]` header line, quotes removed; None for other lines."""
    match = _TABLE.match(line)
    if match is None:
        return None
    parts = [m.group(1).strip("\"'") for m in _KEY_PART.finditer(match.group(1))]
    return tuple(parts)


def toml_block(entry: dict[str, Any]) -> str:
    # TOML basic strings take JSON's escapes.
    lines = [f"[mcp_servers.{SERVER_NAME}]"]
    lines += [f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


def _without_our_tables(text: str) -> tuple[str, bool]:
    kept: list[str] = []
    ours = removed = False
    for line in text.splitlines(keepends=True):
        name = _table_path(line)
        if name is not None:
            ours = name[:2] == ("mcp_servers", SERVER_NAME)
            removed |= ours
        if not ours:
            kept.append(line)
    return "".join(kept), removed


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"cannot parse {path} as TOML ({err}): fix it first") from None


def install_toml(target: Target) -> str:
    text = target.path.read_text(encoding="utf-8") if target.path.exists() else ""
    current = _parse_toml(target.path, text).get("mcp_servers", {}).get(SERVER_NAME)
    if current == target.entry:
        return "unchanged"
    rest, _ = _without_our_tables(text)
    rest = rest.rstrip("\n")
    new_text = (rest + "\n\n" if rest else "") + toml_block(target.entry)
    if _parse_toml(target.path, new_text).get("mcp_servers", {}).get(SERVER_NAME) != target.entry:
        raise ValueError(f"{target.path} defines mcp_servers.{SERVER_NAME} in a form this installer "
                         "does not edit: change it by hand, see `--print`")
    _write(target.path, new_text)
    return "updated" if current is not None else "added"


def uninstall_toml(target: Target) -> str:
    if not target.path.exists():
        return "absent"
    text = target.path.read_text(encoding="utf-8")
    if SERVER_NAME not in _parse_toml(target.path, text).get("mcp_servers", {}):
        return "absent"
    rest, removed = _without_our_tables(text)
    if not removed or SERVER_NAME in _parse_toml(target.path, rest).get("mcp_servers", {}):
        raise ValueError(f"{target.path} defines mcp_servers.{SERVER_NAME} in a form this installer "
                         "does not edit: remove it by hand")
    if rest.strip():
        _write(target.path, rest.rstrip("\n") + "\n")
    else:
        _drop(target.path)
    return "removed"


def snippet(target: Target) -> str:
    """What `--print` shows: the entry in the file's own format."""
    if target.is_toml:
        return toml_block(target.entry)
    return json.dumps({target.key: {SERVER_NAME: target.entry}}, indent=2)


# --- AGENTS.md / CLAUDE.md ------------------------------------------------------------------


def _block_span(text: str) -> tuple[int, int] | None:
    start = text.find(BLOCK_START)
    if start < 0:
        return None
    end = text.find(BLOCK_END, start)
    return None if end < 0 else (start, end + len(BLOCK_END))


def write_agents_block(path: Path) -> str:
    block = f"{BLOCK_START}\n{AGENTS_BLOCK}{BLOCK_END}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    span = _block_span(text)
    if span is not None:
        new_text = text[: span[0]] + block + text[span[1] :]
    else:
        new_text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    if new_text == text:
        return "unchanged"
    _write(path, new_text)
    return "updated" if span is not None else "added"


def remove_agents_block(path: Path) -> str:
    if not path.exists():
        return "absent"
    text = path.read_text(encoding="utf-8")
    span = _block_span(text)
    if span is None:
        return "absent"
    before, after = text[: span[0]].rstrip("\n"), text[span[1] :].lstrip("\n")
    if before or after.strip():
        _write(path, before + ("\n\n" if before and after else "\n" if before else "") + after)
    else:
        path.unlink()
    return "removed"


# --- commands -----------------------------------------------------------------------------

ClientOption = Annotated[list[str] | None, typer.Option(
    "--client", "-c", help=f"Client (repeatable): {', '.join(CLIENTS)}.")]
ScopeOption = Annotated[str, typer.Option(
    "--scope", help="project: files in the project folder (naming it as the root); user: the "
                    "client's per-user file, for every project.")]
ProjectOption = Annotated[Path, typer.Option(
    "--project", help="The project folder (default: the current folder).")]


def _targets(clients: list[str] | None, scope: str, project: Path, default_all: bool) -> list[Target]:
    wanted = clients or (list(CLIENTS) if default_all else [])
    if not wanted:
        fail(f"name the client: --client {' | '.join(CLIENTS)}", 2)
    unknown = [c for c in wanted if c not in CLIENTS]
    if unknown:
        fail(f"unknown client '{unknown[0]}': choose from {', '.join(CLIENTS)}", 2)
    if scope not in SCOPES:
        fail(f"unknown scope '{scope}': choose project or user", 2)
    if not project.is_dir():
        fail(f"no such folder: {project}", 2)
    return [target_for(c, scope, project.resolve(), Path.home()) for c in dict.fromkeys(wanted)]


@mcp_app.command()
def install(
    clients: ClientOption = None,
    scope: ScopeOption = "project",
    project: ProjectOption = Path("."),
    print_only: Annotated[bool, typer.Option("--print", help="Show what would be written; write nothing.")] = False,
    agents_md: Annotated[bool, typer.Option("--agents-md", help="Also add (or refresh) a short block telling the agent when to use which tool, in AGENTS.md (CLAUDE.md for Claude Code).")] = False,
) -> None:
    """Add the codesearch server to a client's MCP configuration (idempotent; other entries stay)."""
    targets = _targets(clients, scope, project, default_all=False)
    home, folder = Path.home(), project.resolve()
    notes = sorted({agents_file(t.client, scope, folder, home) for t in targets}) if agents_md else []
    if print_only:
        for target in targets:
            print(f"# {target.client} ({target.scope}): {target.path}")
            print(snippet(target))
        for path in notes:
            print(f"# {path}\n{BLOCK_START}\n{AGENTS_BLOCK}{BLOCK_END}")
        return
    for target in targets:
        try:
            action = install_toml(target) if target.is_toml else install_json(target)
        except (ValueError, OSError) as err:
            fail(f"{target.client}: {err}")
        console.print(f"{target.client}: {action} '{SERVER_NAME}' in {target.path}", highlight=False)
    for path in notes:
        try:
            action = write_agents_block(path)
        except OSError as err:
            fail(f"cannot write {path}: {err.strerror or err}")
        console.print(f"instructions: {action} in {path}", highlight=False)


@mcp_app.command()
def uninstall(
    clients: Annotated[list[str] | None, typer.Option(
        "--client", "-c", help=f"Client (repeatable; default: all of {', '.join(CLIENTS)}).")] = None,
    scope: ScopeOption = "project",
    project: ProjectOption = Path("."),
) -> None:
    """Remove the codesearch entry (and its AGENTS.md/CLAUDE.md block); nothing else changes."""
    targets = _targets(clients, scope, project, default_all=True)
    home, folder = Path.home(), project.resolve()
    for target in targets:
        try:
            action = uninstall_toml(target) if target.is_toml else uninstall_json(target)
        except (ValueError, OSError) as err:
            fail(f"{target.client}: {err}")
        if action != "absent":
            console.print(f"{target.client}: removed '{SERVER_NAME}' from {target.path}", highlight=False)
    for path in sorted({agents_file(t.client, scope, folder, home) for t in targets}):
        if remove_agents_block(path) == "removed":
            console.print(f"instructions: removed from {path}", highlight=False)
