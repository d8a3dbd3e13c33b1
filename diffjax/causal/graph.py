"""A causal graph over named factors: a DAG given by edges "parent->child".

CausalDiffAE ("Causal Diffusion Autoencoders: Toward Counterfactual Generation via
Diffusion Probabilistic Models", Komanduri et al. 2024, Sec. 3) assumes a known DAG over
the latent causal factors; counterfactuals propagate an intervention to the intervened
factor's descendants in topological order. A cycle is a usage error (ConfigError, one
line naming it).
"""
import dataclasses
from typing import Dict, Sequence, Tuple

from diffjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class CausalGraph:
  """names: the factors, in the order of the latent vector; parents[i]: indices of the
  parents of factor i; order: a topological order (parents before children)."""
  names: Tuple[str, ...]
  parents: Tuple[Tuple[int, ...], ...]
  order: Tuple[int, ...]

  def index(self, name: str) -> int:
    if name not in self.names:
      raise ConfigError(f"Unknown causal factor {name!r}; the graph has "
                        f"{', '.join(self.names)}.")
    return self.names.index(name)

  def descendants(self, i: int) -> Tuple[int, ...]:
    """Indices of the proper descendants of factor i, in topological order."""
    found = {i}
    for j in self.order:
      if any(p in found for p in self.parents[j]):
        found.add(j)
    return tuple(j for j in self.order if j in found and j != i)


def _find_cycle(children: Dict[str, list], names) -> list:
  state, stack = {n: 0 for n in names}, []

  def visit(n):
    state[n] = 1
    stack.append(n)
    for c in children[n]:
      if state[c] == 1:
        return stack[stack.index(c):] + [c]
      if state[c] == 0:
        cycle = visit(c)
        if cycle:
          return cycle
    state[n] = 2
    stack.pop()
    return []

  for n in names:
    if state[n] == 0:
      cycle = visit(n)
      if cycle:
        return cycle
  return []


def causal_graph(names: Sequence[str], edges: Sequence[str]) -> CausalGraph:
  """The DAG over `names` with edges "parent->child"; ConfigError for an unknown factor,
  a malformed edge or a cycle."""
  names = tuple(names)
  children = {n: [] for n in names}
  parents = {n: [] for n in names}
  for edge in edges:
    parent, arrow, child = edge.partition("->")
    parent, child = parent.strip(), child.strip()
    if not arrow or parent not in names or child not in names:
      raise ConfigError(f"causal edge {edge!r} must read 'parent->child' with factors "
                        f"among {', '.join(names)}.")
    children[parent].append(child)
    parents[child].append(parent)
  cycle = _find_cycle(children, names)
  if cycle:
    raise ConfigError(f"The causal graph has a cycle {' -> '.join(cycle)}; give a DAG.")
  order, placed = [], set()
  while len(order) < len(names):
    for n in names:
      if n not in placed and all(p in placed for p in parents[n]):
        order.append(n)
        placed.add(n)
  return CausalGraph(names, tuple(tuple(names.index(p) for p in parents[n]) for n in names),
                     tuple(names.index(n) for n in order))
