"""Each rule's library inputs are derived from its script's imports (workflow/library_inputs.py):
the derived files must be exactly the library modules that running the script loads."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from snakemake_helpers import REPO

sys.path.insert(0, str(REPO / "workflow"))
from library_inputs import library_closure  # noqa: E402

SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))
PROBE = """
import json, sys
for statement in json.loads(sys.argv[1]):
    exec(statement)
print(json.dumps(sorted(m.__file__ for name, m in list(sys.modules.items())
                        if name == "roboscape" or name.startswith("roboscape."))))
"""


def import_statements(script: Path) -> list[str]:
    tree = ast.parse(script.read_text())
    return [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def loaded_library(script: Path) -> set[str]:
    """The library files that running the script's imports in a fresh interpreter loads."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(import_statements(script))],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return {str(Path(f).resolve()) for f in json.loads(proc.stdout.splitlines()[-1])}


@pytest.fixture(scope="module")
def loaded() -> dict[str, Future]:
    """Every script's probe, as many at a time as there are CPUs (each is one interpreter's imports)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return {script.stem: pool.submit(loaded_library, script) for script in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_derived_library_inputs_are_what_the_script_loads(loaded, script):
    derived = set(library_closure(script, REPO))
    assert derived == loaded[script.stem].result()
    assert str(REPO / "roboscape" / "__init__.py") in derived


def test_an_import_inside_a_function_counts(tmp_path):
    package = tmp_path / "roboscape"
    (package / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/late.py", "early.py"):
        (package / name).write_text("")
    (package / "early.py").write_text("def f():\n    from roboscape.sub import late\n")
    script = tmp_path / "script.py"
    script.write_text("import json\nfrom roboscape.early import f\n")
    assert [Path(p).relative_to(package).as_posix() for p in library_closure(script, tmp_path)] == [
        "__init__.py",
        "early.py",
        "sub/__init__.py",
        "sub/late.py",
    ]


def test_no_library_module_imports_roboscape_inside_a_function():
    """What keeps the derivation exact: an import that only runs when a function is called would
    be declared but not loaded by an import of the script."""
    late = []
    for path in sorted((REPO / "roboscape").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("roboscape"):
                        late.append(f"{path.relative_to(REPO)}:{node.lineno}")
                    if isinstance(node, ast.Import) and any(a.name.startswith("roboscape") for a in node.names):
                        late.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert late == []


# rules that read data or records only: their jobs start, and their library inputs are, without the simulator
# (reward_validity is not one: its held-arm episodes run in ManiSkill too)
NO_SIMULATOR = ["figure_rollouts", "policy_results", "rl_world_model", "sft", "trajectory_summary"]
SIMULATOR = {"mani_skill", "sapien", "mplib"}


def imported_packages(path: str) -> set[str]:
    """The top-level packages a source file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("name", NO_SIMULATOR)
def test_rules_that_read_records_start_without_the_simulator(name):
    script = REPO / "workflow" / "scripts" / f"{name}.py"
    for path in [script, *library_closure(script, REPO)]:
        assert not imported_packages(path) & SIMULATOR, path


def test_the_simulator_check_sees_the_simulator():
    assert imported_packages(REPO / "roboscape" / "sim" / "tasks.py") & SIMULATOR == {"mani_skill", "sapien"}
