"""The house's layering, as tests: the library never imports experiments/ or configs/,
configs never import experiments/, and callers read what methods declare instead of
testing their names."""
import ast
import os
import re

import pytest

from tests.helpers import REPO


def python_files(*folders):
  for folder in folders:
    for directory, _, files in os.walk(os.path.join(REPO, folder)):
      for name in files:
        if name.endswith(".py"):
          yield os.path.join(directory, name)


def imported_modules(path):
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      yield node.module


def offenders(folder, forbidden):
  found = []
  for path in python_files(folder):
    for module in imported_modules(path):
      if module.split(".")[0] in forbidden:
        found.append(f"{os.path.relpath(path, REPO)} imports {module}")
  return found


def test_the_library_imports_neither_experiments_nor_configs():
  assert offenders("diffjax", ("experiments", "configs")) == []


def test_configs_do_not_import_experiments():
  assert offenders("configs", ("experiments",)) == []


def code_lines(path):
  """(line number, code) of `path` without comments and docstrings."""
  with open(path, encoding="utf-8") as f:
    source = f.read()
  docstrings = set()
  for node in ast.walk(ast.parse(source)):
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
        getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value,
                                                                        str):
      docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
  for number, line in enumerate(source.splitlines(), 1):
    if number not in docstrings:
      yield number, line.split("#", 1)[0]


# A test of a method's or a sampler's name: `method == "cfg"`, `solver in ("ddim", ...)`.
NAME_TEST = re.compile(r"\b(method|sampler|solver|sampler_name)\b\s*(==|!=|\bin\b|\bnot in\b)"
                       r"\s*[\"'(\[]")
LOOP = re.compile(r"\bfor\s+(method|sampler|solver)\s+in\b")   # Iterating, not testing.


@pytest.mark.parametrize("folder", ["diffjax", "experiments"])
def test_no_dispatch_on_method_or_sampler_names(folder):
  """Callers read a registered method's declaration (its calls per step, stochasticity,
  needs, cost), never a list of names."""
  found = [f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}"
           for path in python_files(folder) for number, line in code_lines(path)
           if NAME_TEST.search(line) and not LOOP.search(line)]
  assert found == []
