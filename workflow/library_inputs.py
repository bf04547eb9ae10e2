"""The library files a rule's script depends on, derived from the code.

A rule declares them as inputs, so that editing one reruns the rule: they are the transitive
closure of the script's ``roboscape`` imports (every ``import`` statement, at module level or
inside a function, of the script and of each module it reaches, plus the ``__init__.py`` of every
package on the way), found by parsing the source with :mod:`ast` -- nothing is imported. The
library imports ``roboscape`` modules at module level only, so this is exactly what importing the
script loads (``tests/workflow/test_library_inputs.py`` checks it against ``sys.modules``).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "roboscape"


def module_file(root: Path, module: str) -> Path | None:
    """The source of ``module`` (dotted, starting with the package) under the package's parent
    ``root``: its ``__init__.py`` if it is a package; None if it is not a module of the package."""
    base = root.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _prefixes(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def imported_modules(path: Path, root: Path) -> frozenset[str]:
    """The package's modules that the source file ``path`` imports, with their parent packages."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from a.b import c``: c may be a submodule or a name defined in a.b
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == PACKAGE and module_file(root, name) is not None:
                found.update(_prefixes(name))
    return frozenset(found)


def library_closure(script: str | Path, root: str | Path) -> list[str]:
    """Every library file that running ``script`` loads, sorted: the package lives in ``root``/roboscape."""
    root = Path(root).resolve()
    seen: set[str] = set()
    todo = set(imported_modules(Path(script).resolve(), root))
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo |= imported_modules(module_file(root, module), root) - seen
    return sorted(str(module_file(root, m)) for m in seen)
