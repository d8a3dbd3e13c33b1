"""Name -> component registries, so configs choose components by name.

Every kind of component (paths, objectives, couplings, models, solvers, datasets,
metrics, ...) has one `Registry`. Looking up an unknown name raises a `KeyError`
whose message lists the valid names, so a typo in a config fails loudly and helpfully.
"""
import contextlib
from typing import Dict, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownComponentError(KeyError):
  """Raised when a config names a component that is not registered."""

  def __str__(self):  # KeyError quotes its message; show it plainly.
    return str(self.args[0])


class Registry(Generic[T]):
  """A mapping from names to components of one kind.

  Example:
    SOLVERS = Registry("ODE solver")
    @SOLVERS.register("euler")
    def euler_step(...): ...
    SOLVERS.get("euler")
  """

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: Dict[str, T] = {}

  def register(self, name: str, component: T = None):
    """Registers `component` under `name`; usable as a decorator."""
    def add(obj):
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} is already registered.")
      self._entries[name] = obj
      return obj
    return add if component is None else add(component)

  def unregister(self, name: str) -> T:
    """Removes `name` and returns its component (an unknown name raises as `get` does)."""
    component = self.get(name)
    del self._entries[name]
    return component

  @contextlib.contextmanager
  def registered(self, name: str, component: T):
    """`component` under `name` inside a `with` block only (a test's or a notebook's
    temporary entry); removed on exit, also after an error."""
    self.register(name, component)
    try:
      yield component
    finally:
      self.unregister(name)

  def get(self, name: str) -> T:
    try:
      return self._entries[name]
    except KeyError:
      raise UnknownComponentError(
          f"Unknown {self.kind} {name!r}; valid names are: "
          f"{', '.join(sorted(self._entries))}.") from None

  def names(self):
    return sorted(self._entries)

  def __contains__(self, name) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())

  def __len__(self) -> int:
    return len(self._entries)
