"""The layout's rules, read from the source with `ast`: no import cycles (lazy imports count), no private
name taken from another module, `jail/` reaching `interposer/` only from run.py and cli.py, and package
`__init__` files that import nothing (start-up time). Each checker is also run on a small made-up package
that breaks its rule, so a checker that finds nothing cannot pass unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jail", "interposer", "agent")
# The only jail/ modules that may import interposer/ (the run wires the decision service in; the CLI calls
# `check` and the hook; the trash reads rm's options with the interposer's one option reader, #23).
JAIL_TO_INTERPOSER = {"jail.run", "jail.cli", "jail.recovery.trash"}
JAIL_TO_AGENT = "jail.cli"  # `shelljail agent` runs the reference agent


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name (a package by its own name)."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _absolute(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(known: dict[str, Path]) -> dict[str, set[tuple[str, str, int]]]:
    """For each module: (imported module, name taken from it or "", line), lazy imports included."""
    graph: dict[str, set[tuple[str, str, int]]] = {}
    for name, path in known.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update((alias.name, "", node.lineno) for alias in node.names if alias.name in known)
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(name, node, path.name == "__init__.py")
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    if submodule in known:  # `from jail.policy import profile`: the module itself
                        edges.add((submodule, "", node.lineno))
                    elif source in known:
                        edges.add((source, alias.name, node.lineno))
    return graph


def cycles(graph: dict[str, set[tuple[str, str, int]]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself (Tarjan,
    with an explicit stack)."""
    adjacency = {name: sorted({target for target, _name, _line in edges if target in graph})
                 for name, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    for start in sorted(adjacency):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(adjacency[node]):
                work.append((node, child + 1))
                target = adjacency[node][child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in adjacency[node]:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def borrowed_private_names(known: dict[str, Path], graph: dict[str, set[tuple[str, str, int]]]) -> list[str]:
    """`from m import _x`, and `m._x` on a module bound by an import, where m is another module."""
    found = [f"{name}:{line} takes {source}.{taken}" for name, edges in graph.items()
             for source, taken, line in edges if _private(taken) and source != name]
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        bound: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known:
                        bound[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(name, node, path.name == "__init__.py")
                for alias in node.names:
                    if f"{source}.{alias.name}" in known:
                        bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr)
                    and bound.get(node.value.id, name) != name):
                found.append(f"{name}:{node.lineno} takes {bound[node.value.id]}.{node.attr}")
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def upward_imports(graph: dict[str, set[tuple[str, str, int]]]) -> list[str]:
    """jail/ importing interposer/ outside JAIL_TO_INTERPOSER, or agent/ outside the CLI (its `agent`
    command); interposer/ importing agent/."""
    found = []
    for name, edges in graph.items():
        for target, _taken, line in edges:
            top, target_top = name.split(".")[0], target.split(".")[0]
            if (top == "jail" and target_top == "interposer" and name not in JAIL_TO_INTERPOSER) or (
                    top == "jail" and target_top == "agent" and name != JAIL_TO_AGENT) or (
                    top == "interposer" and target_top == "agent"):
                found.append(f"{name}:{line} imports {target}")
    return sorted(found)


def busy_inits(known: dict[str, Path]) -> list[str]:
    """Package __init__ files holding more than a docstring and plain constants (an import costs every
    start that touches the package)."""
    found = []
    for name, path in known.items():
        if path.name != "__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            constant = isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            if not (docstring or constant):
                found.append(f"{name}:{node.lineno}")
    return found


def undocumented(known: dict[str, Path]) -> list[str]:
    """Modules that do not open with a docstring saying what they are."""
    return sorted(name for name, path in known.items()
                  if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text())) is None)


# ---------------------------------------------------------------------------------------- the project

KNOWN = modules(ROOT)
GRAPH = imports(KNOWN)


def test_the_graph_is_read() -> None:
    """The reader sees the project's real imports, lazy ones included (else every rule passes empty)."""
    assert len(KNOWN) > 60
    assert any(target == "interposer.service" for target, _name, _line in GRAPH["jail.run"])  # lazy, in a function
    assert any(target == "jail.errors" for target, _name, _line in GRAPH["jail.sandbox.mounts"])


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


def test_no_private_names_borrowed() -> None:
    assert borrowed_private_names(KNOWN, GRAPH) == []


def test_jail_imports_interposer_only_from_run_and_cli() -> None:
    assert upward_imports(GRAPH) == []


def test_package_inits_import_nothing() -> None:
    assert busy_inits(KNOWN) == []


def test_every_module_says_what_it_is() -> None:
    assert undocumented(KNOWN) == []


# ------------------------------------------------------------------ the checkers, on a broken package

def _package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return modules(root, ("jail", "interposer", "agent"))


def test_the_checkers_find_what_breaks_the_rules(tmp_path: Path) -> None:
    known = _package(tmp_path, {
        "jail/__init__.py": '"""Made up."""\nimport os\n',
        "jail/a.py": '"""A."""\nfrom jail import b\n',
        "jail/b.py": '"""B."""\ndef f():\n    from . import c\n',  # lazy and relative
        "jail/c.py": '"""C."""\nfrom jail.a import _hidden\n',
        "jail/d.py": '"""D."""\nfrom jail import a\nx = a._hidden\nimport interposer.e\nimport agent.f\n',
        "jail/run.py": '"""Run."""\nfrom interposer import e\n',
        "jail/self.py": '"""Self."""\ndef g():\n    import jail.self\n',
        "interposer/__init__.py": "",
        "interposer/e.py": "from agent import f\n",
        "agent/__init__.py": '"""Agent."""\n',
        "agent/f.py": '"""F."""\n',
    })
    graph = imports(known)
    assert cycles(graph) == [["jail.a", "jail.b", "jail.c"], ["jail.self"]]
    assert borrowed_private_names(known, graph) == ["jail.c:2 takes jail.a._hidden", "jail.d:3 takes jail.a._hidden"]
    assert upward_imports(graph) == ["interposer.e:1 imports agent.f", "jail.d:4 imports interposer.e",
                                     "jail.d:5 imports agent.f"]
    assert busy_inits(known) == ["jail:2"]
    assert undocumented(known) == ["interposer.e"]
