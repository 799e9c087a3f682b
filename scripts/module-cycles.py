#!/usr/bin/env python3
"""Lists the dependencies between the crate's top-level modules (src/<module>.rs or
src/<module>/), and between the files of each such directory, and fails if any of them form a
cycle.

A module depends on another when any of its files names `crate::<other>` (in a `use` or a
path); inside a directory, a file depends on a sibling it names as `crate::<dir>::<sibling>`
or `super::<sibling>`. Run from the project root:

    python3 scripts/module-cycles.py          # prints the graph, exits 1 on a cycle
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
# The binary's entry point and the crate root wire everything together by design.
ROOTS = {"lib", "main"}


def top_module(path: pathlib.Path) -> str:
    relative = path.relative_to(SRC)
    return relative.parts[0].removesuffix(".rs")


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def graph() -> dict[str, set[str]]:
    modules = {top_module(path) for path in SRC.rglob("*.rs")} - ROOTS
    edges: dict[str, set[str]] = {module: set() for module in modules}
    for path in SRC.rglob("*.rs"):
        source = top_module(path)
        if source in ROOTS:
            continue
        text = strip_comments(path.read_text())
        named = set(re.findall(r"crate::(\w+)", text))
        # `use crate::{a, b::c}` groups
        for group in re.findall(r"crate::\{([^}]*)\}", text):
            named |= set(re.findall(r"(?:^|,)\s*(\w+)", group))
        edges[source] |= {name for name in named if name in modules and name != source}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for successor in sorted(edges[node]):
            if state.get(successor) == "open":
                found.append(stack[stack.index(successor):] + [successor])
            elif successor not in state:
                visit(successor)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def sibling_graph(directory: pathlib.Path) -> dict[str, set[str]]:
    files = {path.stem: path for path in directory.glob("*.rs") if path.stem != "mod"}
    files |= {path.name: path / "mod.rs" for path in directory.iterdir() if (path / "mod.rs").exists()}
    edges: dict[str, set[str]] = {name: set() for name in files}
    prefix = f"crate::{directory.name}::"
    for name, path in files.items():
        text = strip_comments(path.read_text())
        named = set(re.findall(re.escape(prefix) + r"(\w+)", text))
        named |= set(re.findall(r"super::(\w+)", text))
        for group in re.findall("(?:" + re.escape(prefix) + r"|super::)\{([^}]*)\}", text):
            named |= set(re.findall(r"(?:^|,)\s*(\w+)", group))
        edges[name] |= {other for other in named if other in files and other != name}
    return edges


def main() -> int:
    edges = graph()
    for module in sorted(edges):
        print(f"{module:12} -> {', '.join(sorted(edges[module])) or '-'}")
    found = cycles(edges)
    for directory in sorted(path for path in SRC.iterdir() if path.is_dir()):
        inner = sibling_graph(directory)
        found += [[f"{directory.name}::{name}" for name in cycle] for cycle in cycles(inner)]
    for cycle in found:
        print("cycle: " + " -> ".join(cycle), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
