"""The package's architecture, held by its imports: four tiers, each importing only from its own
tier or below, the taught lesson apart from the plumbing, and no import circle.

The README's module map lists the same tiers; a test keeps the two the same."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lorakit"

# tier: (rank, modules). A module may import from tiers of its rank or lower.
TIERS = {
    "base": (0, {"checks", "ranges", "profiles", "precision", "run_files", "methods", "tasks"}),
    "lesson": (1, {"__init__", "lora", "variants", "maths", "peft_format"}),
    "run pipeline": (2, {"local_files", "data", "minilm", "models", "measure", "metrics",
                         "inference", "estimate", "plan", "train", "report", "cli",
                         "__main__"}),
    "notebook support": (3, {"analysis", "probe", "merging", "plots", "bench", "colab"}),
}
TIER_OF = {module: tier for tier, (_, modules) in TIERS.items() for module in modules}
RANK = {tier: rank for tier, (rank, _) in TIERS.items()}


def lorakit_imports(module: str) -> set[str]:
    """Every lorakit module ``module`` imports, at its top or inside a function."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "lorakit":  # a module of the package, or a name of its __init__
                found |= {alias.name if alias.name in TIER_OF else "__init__"
                          for alias in node.names}
            elif node.module.startswith("lorakit."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lorakit":
                    found.add("__init__")
                elif alias.name.startswith("lorakit."):
                    found.add(alias.name.split(".")[1])
    return found - {module}


def external_imports(module: str) -> set[str]:
    """The top-level names of everything but lorakit that ``module`` imports."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
    return names - {"lorakit", "__future__"}


def test_every_module_has_one_tier():
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == set(TIER_OF), (f"without a tier: {sorted(modules - set(TIER_OF))}; "
                                     f"listed but gone: {sorted(set(TIER_OF) - modules)}")


@pytest.mark.parametrize("module", sorted(TIER_OF))
def test_a_module_imports_only_from_its_tier_or_below(module):
    above = {imported for imported in lorakit_imports(module)
             if RANK[TIER_OF[imported]] > RANK[TIER_OF[module]]}
    assert not above, (f"{module} ({TIER_OF[module]}) imports from a higher tier: "
                       + ", ".join(f"{m} ({TIER_OF[m]})" for m in sorted(above)))


def test_the_lesson_imports_the_base_only_and_its_layer_torch_only():
    for module in TIERS["lesson"][1]:
        plumbing = {m for m in lorakit_imports(module) if TIER_OF[m] not in ("base", "lesson")}
        assert not plumbing, f"{module} imports {sorted(plumbing)}"
    assert external_imports("lora") <= {"math", "re", "dataclasses", "torch"}
    assert lorakit_imports("lora") <= {"checks"}


def test_no_import_circle():
    graph = {module: lorakit_imports(module) for module in TIER_OF}
    path: list[str] = []

    def visit(module: str, seen: set[str]) -> None:
        if module in path:
            cycle = path[path.index(module):] + [module]
            pytest.fail(f"import circle: {' → '.join(cycle)}")
        if module in seen:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported, seen)
        path.pop()
        seen.add(module)

    seen: set[str] = set()
    for module in sorted(graph):
        visit(module, seen)


def test_the_readme_module_map_has_the_same_tiers():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\*\*[^|]+\*\*|) *\| `lorakit/([a-z_]+)\.py`", readme, re.MULTILINE)
    assert rows, "the README's module map lists `lorakit/<module>.py` rows"
    tier, mapped = None, {}
    for label, module in rows:
        tier = label.strip("* ") or tier
        mapped[module] = tier
    expected = {module: tier for module, tier in TIER_OF.items() if not module.startswith("__")}
    assert mapped == expected


def test_no_function_in_the_package_is_longer_than_60_lines():
    long = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.stem}.{node.name} ({lines} lines)")
    assert not long, f"functions over 60 lines: {', '.join(long)}"
