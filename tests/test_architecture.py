"""The layering the code promises: SQL only in the workspace package; no stage imports another's orchestrator."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "doppel"
# Each stage's orchestrator: only the public API (and the stage itself) may import it.
ORCHESTRATORS = {"doppel.extract.run": "extract", "doppel.train.loop": "train", "doppel.merge.render": "merge",
                 "doppel.export.video": "export", "doppel.evaluate.metrics": "evaluate"}
# The studio's backend is a front end like the API: it re-renders single frames through merge's own render loop
# (render_plans) with a plan and reader it keeps open between edits, which the API has no call for yet.
ENTRY_POINTS = {"api.py", "studio/backend.py"}


def modules() -> list[tuple[Path, str]]:
    return [(p, p.relative_to(SRC).as_posix()) for p in sorted(SRC.rglob("*.py"))]


def test_sql_runs_only_in_the_workspace_package() -> None:
    offenders = [rel for path, rel in modules() if not rel.startswith("workspace/")
                 and re.search(r"\.execute(many)?\(|\bsqlite3\b", path.read_text())]
    assert offenders == []
    assert len([rel for _, rel in modules() if rel.startswith("workspace/")]) >= 8  # (the check sees the files)


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (type-only imports do not run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def test_no_stage_imports_another_stages_orchestrator() -> None:
    offenders = []
    for path, rel in modules():
        stage = rel.split("/")[0]
        for node in runtime_nodes(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                owner = ORCHESTRATORS.get(name)
                if owner is not None and owner != stage and rel not in ENTRY_POINTS:
                    offenders.append(f"{rel} imports {name}")
    assert offenders == []
    assert "doppel.train.loop" in (SRC / "api.py").read_text()  # (the check recognises an import)
