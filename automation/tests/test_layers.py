"""The layers, read from the source with `ast` (no Django): builder_ui → triggers → runs → workflows → connectors.

Rules (README "How it works" draws them):
* A domain module (models, services, engine, tasks, signals...) imports only its own app and the apps below it.
* Adapters — each app's api, admin and admin_*, views, urls, templatetags, management commands, and `automation`
  (settings, urls, celery, health, the shared API helpers) — sit on top: they may import any app's domain modules,
  and no domain module imports them.
* Foundation modules import no app and anyone may import them: `workflows.limits` (the one module of bounds,
  SPEC §11), `automation.env` and `automation.logging`. Nothing else in `automation` is imported by an app,
  except `automation.api` by adapters (and `automation.testing` by tests).
* No import cycle between apps, and no function-local import from another app (a cycle dodge is the usual
  reason for one: the code sits in the wrong layer).
Tests, migrations and `automation.testing` (test support) are not checked.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["builder_ui", "triggers", "runs", "workflows", "connectors"]  # top to bottom
APPS = {*LAYERS, "automation"}
FOUNDATION = {"workflows.limits", "automation.env", "automation.logging"}
ADAPTER_HELPERS = {"automation.api"}  # imported by the apps' adapters
ADAPTER_FILES = {"api.py", "admin.py", "views.py", "urls.py"}
ADAPTER_DIRS = {"templatetags", "commands"}
SKIPPED_DIRS = {"tests", "migrations", "frontend", "node_modules", "static", "templates", "__pycache__"}
SKIPPED_MODULES = {"automation.testing"}
# Genuine lazy imports between apps that are not cycle dodges, each with its reason. Keep it empty if you can.
LOCAL_IMPORT_ALLOWED: dict[tuple[str, str], str] = {}


def is_adapter(module: str) -> bool:
    parts = module.split(".")
    name = parts[-1] + ".py"
    return (parts[0] == "automation" or parts[0] == "builder_ui" or name in ADAPTER_FILES
            or name.startswith("admin_") or bool(ADAPTER_DIRS & set(parts)))


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for app in sorted(APPS):
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root)
            if SKIPPED_DIRS & set(relative.parts[:-1]):
                continue
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            if name not in SKIPPED_MODULES:
                found[name] = path
    return found


def imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of an app module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    in_function = {id(inner) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for inner in ast.walk(node) if inner is not node}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            prefix = ".".join([*base, *([node.module] if node.module else [])])
            # `from pkg import mod` names a module when pkg/mod.py exists; otherwise it imports a name from pkg.
            names = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
        else:
            continue
        for name in names:
            if name.split(".")[0] in APPS:
                found.append((name, node.lineno, id(node) in in_function))
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(root: Path = ROOT) -> tuple[dict[str, Path], dict[str, list[tuple[str, int, bool]]]]:
    known = modules(root)
    edges = {}
    for module, path in known.items():
        resolved = {(target, line, local) for name, line, local in imports(module, path)
                    if (target := resolve(name, known)) and target != module}
        edges[module] = sorted(resolved)
    return known, edges


def app(module: str) -> str:
    return module.split(".")[0]


def violations(root: Path = ROOT) -> list[str]:
    known, edges = graph(root)
    problems = []
    for module, targets in edges.items():
        for target, line, local in targets:
            where = f"{known[module].relative_to(root)}:{line} imports {target}"
            if app(target) == app(module):
                continue
            if local and (module, target) not in LOCAL_IMPORT_ALLOWED:
                problems.append(f"{where} inside a function (move the code to the layer it belongs to)")
            if target in FOUNDATION:
                continue
            if app(target) == "automation" and not (target in ADAPTER_HELPERS and is_adapter(module)):
                problems.append(f"{where}: apps import only automation.env/logging (and adapters automation.api)")
            elif is_adapter(module):
                continue
            elif is_adapter(target):
                problems.append(f"{where}: a domain module imports an adapter")
            elif app(target) != "automation" and LAYERS.index(app(target)) < LAYERS.index(app(module)):
                problems.append(f"{where}: {app(module)} sits below {app(target)} (upward import)")
    problems += [f"import cycle between apps: {' → '.join(cycle)}" for cycle in app_cycles(edges)]
    return problems


def app_cycles(edges: dict[str, list[tuple[str, int, bool]]]) -> list[list[str]]:
    """Module-level import cycles that cross an app boundary, each shown as the modules on it."""
    cycles, state = [], {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        stack.append(module)
        for target, _, _ in edges.get(module, []):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                if len({app(m) for m in cycle}) > 1:
                    cycles.append(cycle)
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
    return cycles


# --- the real tree ----------------------------------------------------------------------------------------------


def test_no_module_imports_upward_across_a_cycle_or_from_inside_a_function():
    assert violations() == []


def test_foundation_modules_import_no_app():
    known, edges = graph()
    assert {module: [t for t, _, _ in edges[module] if app(t) != app(module) or module == "workflows.limits"]
            for module in FOUNDATION} == {module: [] for module in FOUNDATION}


def test_every_app_in_the_layers_is_checked():
    known = modules()
    assert {app(module) for module in known} == APPS
    assert "triggers.webhooks" in known and "runs.services" in known and not any(".tests" in m for m in known)


# --- the checker itself, on small trees -------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name in APPS:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_check_refuses_an_upward_import(tmp_path):
    root = _tree(tmp_path, {"runs/services.py": "from triggers.schedules import x\n", "triggers/schedules.py": ""})
    assert violations(root) == ["runs/services.py:1 imports triggers.schedules: runs sits below triggers (upward import)"]


def test_the_check_refuses_a_function_local_import_from_another_app(tmp_path):
    root = _tree(tmp_path, {"triggers/schedules.py": "def f():\n    from runs.services import run_create\n",
                            "runs/services.py": ""})
    assert violations(root) == ["triggers/schedules.py:2 imports runs.services inside a function "
                                "(move the code to the layer it belongs to)"]


def test_the_check_refuses_a_cycle_between_apps_even_through_adapters(tmp_path):
    root = _tree(tmp_path, {"runs/api.py": "from workflows.api import x\n", "workflows/api.py": "from runs import api\n"})
    assert violations(root) == ["import cycle between apps: runs.api → workflows.api → runs.api"]


def test_the_check_lets_adapters_import_any_layer_but_not_the_reverse(tmp_path):
    root = _tree(tmp_path, {"workflows/api.py": "from runs.services import run_create\n", "runs/services.py": "",
                            "runs/models.py": "from workflows.admin import x\n", "workflows/admin.py": ""})
    assert violations(root) == ["runs/models.py:1 imports workflows.admin: a domain module imports an adapter"]
