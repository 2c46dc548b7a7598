"""The package's layers: ``tara.core`` is the engine and imports nothing from the web side or the tools.

Read from the source (no imports run), so a cycle is caught before it makes start-up order matter.
"""

import ast
from pathlib import Path

import tara

PACKAGE = Path(tara.__file__).parent
# what each layer may not import: the engine stands alone, the server is not built from the tools
FORBIDDEN = {"core": ("tara.server", "tara.tools", "tara.cli"), "server": ("tara.tools", "tara.cli")}


def imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_each_layer_imports_only_the_layers_below_it():
    crossings = [
        f"{source.relative_to(PACKAGE.parent)} imports {name}"
        for layer, forbidden in FORBIDDEN.items()
        for source in sorted((PACKAGE / layer).rglob("*.py"))
        for name in imported_modules(source)
        if name.startswith(forbidden)
    ]
    assert crossings == []
