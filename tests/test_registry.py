"""Registries: lookup by name with helpful errors, each complete after `import diffjax`;
and that import stays cheap (no heavy optional back end loaded)."""
import json
import os
import subprocess
import sys

import pytest

from diffjax.registry import Registry, UnknownComponentError
from tests.helpers import REPO


def test_register_get_and_errors():
  solvers = Registry("solver")
  solvers.register("euler", 1)

  @solvers.register("heun")
  def heun():
    return 2

  assert solvers.get("heun") is heun and solvers.get("euler") == 1
  assert "euler" in solvers and len(solvers) == 2 and list(solvers) == ["euler", "heun"]
  with pytest.raises(UnknownComponentError) as info:
    solvers.get("rk4")
  assert str(info.value) == "Unknown solver 'rk4'; valid names are: euler, heun."
  with pytest.raises(ValueError, match="already registered"):
    solvers.register("euler", 3)


# Run in a fresh interpreter, so that what other tests imported cannot complete a registry.
# It lists each registry's names after `import diffjax` alone, and the optional back ends
# then loaded; then imports every diffjax module and lists them again.
_SNAPSHOT = """
import importlib, json, pkgutil, sys

def registries():
  from diffjax.registry import Registry
  found = {}
  for name, module in list(sys.modules.items()):
    if name.split(".")[0] == "diffjax" and module is not None:
      for value in vars(module).values():
        if isinstance(value, Registry):
          found[id(value)] = value
  kinds = [r.kind for r in found.values()]
  assert len(kinds) == len(set(kinds)), sorted(kinds)
  return {r.kind: r.names() for r in found.values()}

def back_ends():
  return sorted(m for m in HEAVY if m in sys.modules)

HEAVY = %r
import diffjax
after_import = (registries(), back_ends())
for info in pkgutil.walk_packages(diffjax.__path__, "diffjax."):
  importlib.import_module(info.name)
print(json.dumps({"after_import": after_import, "after_all": (registries(), back_ends())}))
"""
# Optional back ends that take seconds to import (torch through POT and tensorboardX).
HEAVY_BACK_ENDS = ("torch", "ot", "ott", "matplotlib", "tensorflow_datasets", "tensorflow",
                   "sklearn", "tensorboardX", "orbax")


@pytest.fixture(scope="module")
def fresh_import():
  result = subprocess.run([sys.executable, "-c", _SNAPSHOT % (HEAVY_BACK_ENDS,)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.splitlines()[-1])


def test_every_registry_is_complete_after_import_diffjax(fresh_import):
  """Importing every diffjax module adds no registry and no name to one."""
  registries, _ = fresh_import["after_import"]
  assert registries == fresh_import["after_all"][0]
  # The names that were missing until their module was imported.
  assert {"masked_diffusion", "autoregressive"} <= set(registries["objective"])
  assert "time_affine" in registries["model"]
  assert len(registries) >= 29


def test_import_diffjax_leaves_heavy_back_ends_unloaded(fresh_import):
  """`import diffjax` loads none of them, and no diffjax module does at its import: they
  are imported where first used."""
  assert fresh_import["after_import"][1] == []
  assert fresh_import["after_all"][1] == []
