"""The import direction of webqq's layers (see webqq/__init__.py): a layer may import
the layers below it and never one above or beside it; the simulator imports nothing of
the client side. Read from the source with ast, so an import inside a function counts."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "webqq"

#: Each layer and its rank; an import must go to a strictly lower rank or stay inside
#: its own layer.
RANKS = {
    "http": 0, "statedir": 0, "tasks": 0,
    "qq": 1,
    "client": 2,
    "plugins": 3, "onebot": 3,
    "examples": 4,
    "daemon": 5, "__main__": 6,
}


def layer_of(module: str) -> str:
    """'webqq.client.send_queue' -> 'client'; 'webqq' itself -> ''."""
    parts = module.split(".")
    layer = parts[1] if len(parts) > 1 else ""
    if layer == "testing":          # the bot test kit stands with the simulator: it runs
        return "simulator"          # webqq as a program and never imports it
    return "http" if layer == "http_stream" else layer  # the engine's public alias


def imports_of(path: Path):
    """Yield (line, absolute module name) for every import of a webqq module in path."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if path.name == "__init__.py":
        module = package
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name
            if name == "webqq":  # from webqq import client
                for alias in node.names:
                    yield node.lineno, "webqq." + alias.name


def violations():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = layer_of(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for line, name in imports_of(path):
            if not (name == "webqq" or name.startswith("webqq.")):
                continue
            there = layer_of(name)
            if not there or there == here:
                continue
            where = "%s:%d imports %s" % (path.relative_to(PACKAGE.parent), line, name)
            if here == "simulator" or there == "simulator":
                if here not in ("daemon", "examples"):  # they embed the simulator
                    found.append(where + " (the simulator stands apart)")
            elif here in RANKS and there in RANKS and RANKS[there] >= RANKS[here]:
                found.append(where + " (a layer imports only those below it)")
            elif here not in RANKS or there not in RANKS:
                found.append(where + " (a module outside the layer map)")
    return found


def test_every_module_belongs_to_a_layer():
    layers = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
              if p.name != "__pycache__" and p.name != "__init__.py"
              and (p.is_dir() or p.suffix == ".py")}
    assert {layer_of("webqq." + name) for name in layers} <= set(RANKS) | {"simulator"}


def test_imports_go_down_the_layers():
    assert violations() == []


@pytest.mark.parametrize("source, expected", [
    ("from webqq.daemon.config import load\n", "webqq.daemon.config"),
    ("from ..client import send_queue\n", "webqq.client"),
    ("from webqq import onebot\n", "webqq.onebot"),
])
def test_the_checker_sees_each_form_of_import(tmp_path, monkeypatch, source, expected):
    """The guard itself: an upward import written any of three ways is reported."""
    fake = tmp_path / "webqq"
    (fake / "http").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "http" / "__init__.py").write_text("")
    (fake / "http" / "bad.py").write_text(source)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert any(expected in v for v in violations()), violations()
