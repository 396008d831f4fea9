"""The package layout holds: layers point one way, no import cycles, a light query path."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("codesearch")


def test_layers_contract_holds() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    class Fake:
        modules = {"a", "b", "c"}
        edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}}

        def find_modules_directly_imported_by(self, name: str) -> set[str]:
            return self.edges[name]

    assert _cycles(Fake()) == [["a", "b"]]  # type: ignore[arg-type]


def test_core_imports_nothing_of_ours_but_core(graph: grimp.ImportGraph) -> None:
    for module in graph.find_children("codesearch.core"):
        imported = graph.find_modules_directly_imported_by(module)
        ours = {m for m in imported if m.startswith("codesearch.") and not m.startswith("codesearch.core")}
        assert not ours, f"{module} imports {sorted(ours)}"


def test_a_query_imports_no_torch(minirepo: Path) -> None:
    """The query path runs on ONNX: torch (and transformers) never load for a search."""
    subprocess.run([sys.executable, "-m", "codesearch", "index", "-q", str(minirepo)],
                   check=True, timeout=300, capture_output=True)
    code = (
        "import sys\n"
        "from codesearch import Index\n"
        "hits = Index('.').search('reverse a string', k=3)\n"
        "print(hits[0].symbol)\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=minirepo, text=True,
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout and "ReverseString" in out.stdout, out.stdout
