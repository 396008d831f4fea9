"""`codesearch mcp install / uninstall`: each client's real file, in a temporary HOME and
project, keeping everything else that file holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

from codesearch.cli.main import app
from codesearch.cli.mcp import AGENTS_BLOCK, BLOCK_END, BLOCK_START

CLIENTS = ("claude-code", "codex", "cursor", "vscode")
OTHER = {"command": "other-server", "args": ["--flag", "x y"], "env": {"TOKEN_VAR": "1"}}
TOML_BEFORE = """\
# my codex settings
model = "o3"

[mcp_servers.other]
command = "other-server"  # keep this comment
args = ["--flag", "x y"]

[mcp_servers.other.env]
TOKEN_VAR = "1"

[profiles.fast]
model = "mini"
"""


@pytest.fixture()
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("CODEX_HOME", raising=False)
    assert Path.home() == home
    return home, project


def config_path(client: str, scope: str, home: Path, project: Path) -> Path:
    return {
        ("claude-code", "project"): project / ".mcp.json",
        ("claude-code", "user"): home / ".claude.json",
        ("cursor", "project"): project / ".cursor" / "mcp.json",
        ("cursor", "user"): home / ".cursor" / "mcp.json",
        ("vscode", "project"): project / ".vscode" / "mcp.json",
        ("vscode", "user"): home / ".config" / "Code" / "User" / "mcp.json",
        ("codex", "project"): project / ".codex" / "config.toml",
        ("codex", "user"): home / ".codex" / "config.toml",
    }[(client, scope)]


def servers_key(client: str) -> str:
    return "servers" if client == "vscode" else "mcpServers"


def read_entries(path: Path) -> dict:
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text())["mcp_servers"]
    return json.loads(path.read_text())[servers_key_for(path)]


def servers_key_for(path: Path) -> str:
    return "servers" if path.parent.name in (".vscode", "User") else "mcpServers"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("scope", ["project", "user"])
@pytest.mark.parametrize("client", CLIENTS)
def test_install_is_idempotent_and_uninstall_restores(places: tuple[Path, Path], client: str,
                                                      scope: str) -> None:
    home, project = places
    path = config_path(client, scope, home, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".toml":
        path.write_text(TOML_BEFORE)
    else:
        path.write_text(json.dumps({"unrelated": {"keep": [1, 2]}, servers_key(client): {"other": OTHER}},
                                   indent=4))
    before = path.read_text()

    code, out = invoke("mcp", "install", "--client", client, "--scope", scope, "--project", str(project))
    assert code == 0, out
    assert f"added 'codesearch' in {path}" in out.replace("\n", "")
    entries = read_entries(path)
    assert entries["other"] == OTHER
    ours = entries["codesearch"]
    assert Path(ours["command"]).is_absolute() and Path(ours["command"]).exists()
    expected_root = {"project": ["--root", str(project.resolve())],
                     "user": ["--root", "${workspaceFolder}"] if client in ("cursor", "vscode") else []}
    assert ours["args"][-1 - len(expected_root[scope]):] == ["mcp", *expected_root[scope]]
    if path.suffix == ".toml":
        assert path.read_text().startswith(TOML_BEFORE.rstrip("\n"))  # comments and layout kept
    else:
        assert json.loads(path.read_text())["unrelated"] == {"keep": [1, 2]}

    written = path.read_bytes()
    code, out = invoke("mcp", "install", "--client", client, "--scope", scope, "--project", str(project))
    assert code == 0 and "unchanged" in out
    assert path.read_bytes() == written

    code, out = invoke("mcp", "uninstall", "--client", client, "--scope", scope, "--project", str(project))
    assert code == 0 and "removed 'codesearch'" in out
    assert "codesearch" not in read_entries(path) and read_entries(path)["other"] == OTHER
    if path.suffix == ".toml":
        assert path.read_text() == before
    else:
        assert json.loads(path.read_text()) == json.loads(before)
    code, out = invoke("mcp", "uninstall", "--client", client, "--scope", scope, "--project", str(project))
    assert code == 0 and "removed" not in out


def test_install_into_missing_files_and_update_a_stale_entry(places: tuple[Path, Path]) -> None:
    home, project = places
    code, out = invoke("mcp", "install", "-c", "claude-code", "-c", "codex", "--project", str(project))
    assert code == 0, out
    mcp_json = project / ".mcp.json"
    assert json.loads(mcp_json.read_text())["mcpServers"]["codesearch"]["type"] == "stdio"
    toml = project / ".codex" / "config.toml"
    assert tomllib.loads(toml.read_text())["mcp_servers"]["codesearch"]["args"][-3:] == [
        "mcp", "--root", str(project.resolve())]
    data = json.loads(mcp_json.read_text())
    data["mcpServers"]["codesearch"]["args"] = ["old"]
    mcp_json.write_text(json.dumps(data))
    toml.write_text(toml.read_text().replace('"mcp"', '"old"'))
    code, out = invoke("mcp", "install", "-c", "claude-code", "-c", "codex", "--project", str(project))
    assert code == 0 and out.count("updated") == 2
    assert json.loads(mcp_json.read_text())["mcpServers"]["codesearch"]["args"][-3] == "mcp"
    assert toml.read_text().count("[mcp_servers.codesearch]") == 1


def test_uninstall_removes_what_install_created(places: tuple[Path, Path]) -> None:
    home, project = places
    args = [a for c in CLIENTS for a in ("-c", c)]
    assert invoke("mcp", "install", *args, "--agents-md", "--project", str(project))[0] == 0
    assert invoke("mcp", "install", *args, "--scope", "user")[0] == 0
    assert len([p for p in project.rglob("*") if p.is_file()]) == 6
    assert invoke("mcp", "uninstall", "--project", str(project))[0] == 0
    assert invoke("mcp", "uninstall", "--scope", "user")[0] == 0
    assert list(project.iterdir()) == []  # the project folder itself stays
    assert project.is_dir() and home.is_dir()
    assert [p for p in home.rglob("*") if p.is_file()] == []


def test_print_shows_the_entries_and_writes_nothing(places: tuple[Path, Path]) -> None:
    home, project = places
    code, out = invoke("mcp", "install", *[a for c in CLIENTS for a in ("-c", c)], "--print",
                       "--agents-md", "--project", str(project))
    assert code == 0, out
    assert not any(project.iterdir()) and not any(home.iterdir())
    blocks = [b for b in out.split("\n# ") if b.strip()]
    parsed = {}
    for block in blocks:
        header, _, body = block.lstrip("# ").partition("\n")
        if header.endswith(".toml"):
            parsed[header] = tomllib.loads(body)["mcp_servers"]["codesearch"]
        elif header.endswith(".json"):
            parsed[header] = json.loads(body)
    assert len(parsed) == 4
    assert BLOCK_START in out and "find_symbol" in out


def test_agents_md_block_is_added_refreshed_and_removed(places: tuple[Path, Path]) -> None:
    home, project = places
    agents = project / "AGENTS.md"
    agents.write_text("# Team rules\n\nRun the tests before pushing.\n")
    original = agents.read_text()
    args = ("mcp", "install", "-c", "codex", "-c", "cursor", "--agents-md", "--project", str(project))
    code, out = invoke(*args)
    assert code == 0 and "instructions: added" in out
    text = agents.read_text()
    assert text.startswith(original.rstrip("\n")) and text.count(BLOCK_START) == 1
    assert AGENTS_BLOCK in text and text.rstrip().endswith(BLOCK_END)
    code, out = invoke(*args)
    assert code == 0 and "instructions: unchanged" in out and agents.read_text() == text
    agents.write_text(text.replace("find_symbol(name)", "an old sentence") + "\nMore rules.\n")
    code, out = invoke(*args)
    assert code == 0 and "instructions: updated" in out
    refreshed = agents.read_text()
    assert AGENTS_BLOCK in refreshed and refreshed.endswith("More rules.\n")
    code, out = invoke("mcp", "install", "-c", "claude-code", "--agents-md", "--project", str(project))
    assert code == 0 and (project / "CLAUDE.md").read_text().count(BLOCK_START) == 1
    code, out = invoke("mcp", "uninstall", "--project", str(project))
    assert code == 0, out
    assert agents.read_text() == original.rstrip("\n") + "\n\nMore rules.\n"
    assert not (project / "CLAUDE.md").exists()  # it held nothing else


def test_files_it_cannot_edit_safely_are_left_alone(places: tuple[Path, Path]) -> None:
    home, project = places
    vscode = project / ".vscode" / "mcp.json"
    vscode.parent.mkdir()
    vscode.write_text('{\n  // my servers\n  "servers": {}\n}\n')
    code, out = invoke("mcp", "install", "-c", "vscode", "--project", str(project))
    assert code == 1 and "cannot parse" in out and "--print" in out
    assert vscode.read_text() == '{\n  // my servers\n  "servers": {}\n}\n'
    toml = home / ".codex" / "config.toml"
    toml.parent.mkdir()
    toml.write_text("[mcp_servers\nbroken")
    code, out = invoke("mcp", "install", "-c", "codex", "--scope", "user")
    assert code == 1 and "cannot parse" in out and toml.read_text() == "[mcp_servers\nbroken"
    assert "Traceback" not in out


def test_bad_arguments_are_one_line_errors(places: tuple[Path, Path], tmp_path: Path) -> None:
    home, project = places
    for args, message in [
        (("mcp", "install", "-c", "emacs"), "unknown client 'emacs'"),
        (("mcp", "install", "-c", "codex", "--scope", "global"), "unknown scope 'global'"),
        (("mcp", "install"), "name the client"),
        (("mcp", "install", "-c", "codex", "--project", str(tmp_path / "nope")), "no such folder"),
        (("mcp", "--root", str(tmp_path / "nope")), "no such folder"),
    ]:
        code, out = invoke(*args)
        assert code == 2 and message in out, (args, out)
        assert "Traceback" not in out


@pytest.mark.slow
def test_the_written_entry_starts_a_server_for_the_project(places: tuple[Path, Path]) -> None:
    """IDEs start servers in a useless working directory: the entry names the root itself."""
    from tests.test_mcp import git_repo, open_client

    home, project = places
    repo = git_repo(project / "repo")
    code, out = invoke("mcp", "install", "-c", "claude-code", "--project", str(repo))
    assert code == 0, out
    entry = json.loads((repo / ".mcp.json").read_text())["mcpServers"]["codesearch"]
    assert entry["command"] != sys.executable or entry["args"][:2] == ["-m", "codesearch"]
    for client in open_client(entry["args"], project / "stderr.log", cwd=Path("/"),
                              command=entry["command"]):
        status = client.ok("index_status")
        assert [r["path"] for r in status["roots"]] == [str(repo.resolve())]
        assert client.ok("search", query="ReverseString", k=1)["hits"][0]["path"] == "cmd/server/main.go"
