"""Registries: lookup by name with helpful errors."""
import pytest

from diffjax.registry import Registry, UnknownComponentError


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
