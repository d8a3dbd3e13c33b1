"""The one driver `integrate`: both time directions, token logits, custom steppers, and the
structure of the package (contracts at the bottom, no import circles, one scan)."""
import ast
import math
import pathlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields, Stepper
from diffjax.data import isotropic_mixture, mixture_oracle
from diffjax.guidance import GUIDANCE_METHODS
from diffjax.paths import build_path
from diffjax.solvers import SAMPLERS, euler_maruyama, integrate, runge_kutta, sample

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "diffjax"
# Imports inside functions that are allowed: optional peers, each named.
OPTIONAL_PEERS = {("inception.py", "torch"), ("data/timeseries.py", "statsmodels"),
                  ("train/storage.py", "google"),  # google-cloud-storage, for gs:// only.
                  ("models/base.py", "diffjax"),    # The diffusers reader imports models.
                  ("data/pendulum.py", "gymnasium")}  # The optional Pendulum-v1 backend.
# Heavy packages imported where used so that `import diffjax` stays fast (POT imports
# torch; ott-jax, matplotlib, scikit-learn, tfds, orbax and tensorboardX take up to
# seconds each; scipy.optimize about half a second).
DEFERRED = {"ot", "ott", "matplotlib", "sklearn", "tensorflow_datasets", "orbax",
            "tensorboardX", "scipy"}
GAUSSIAN = isotropic_mixture([1.0], [[1.5, -0.5]], 0.6)


def test_euler_maruyama_backward_matches_the_ornstein_uhlenbeck_marginals():
  """Run from the data (t = 1) back to t = 0 with eps = g^2 / 2, the reverse of the reverse
  SDE is the VP forward (Ornstein–Uhlenbeck) process: mean alpha m and variance
  alpha^2 s^2 + sigma^2 at every t (checked at t = 0.5 on the trajectory and at t = 0),
  within 4 standard errors plus 2% discretisation slack; also for a constant eps = 1."""
  path = build_path("vp")
  view = path.gaussian
  fields = mixture_oracle(path, GAUSSIAN).fields()
  n = 4000
  x1 = GAUSSIAN.sample(jax.random.PRNGKey(0), n)
  ts = jnp.linspace(1.0, 0.0, 201)
  for eps in ("reverse_sde", 1.0):
    stepper = euler_maruyama(path, eps=eps)
    out = jax.jit(lambda x: integrate(stepper, fields, x, ts, jax.random.PRNGKey(1),
                                      return_trajectory=True))(x1)
    assert int(out.nfe) == 200
    for index, t in ((100, 0.5), (200, 0.0)):
      x = np.asarray(out.trajectory[index], np.float64)
      alpha, sigma = float(view.alpha(t)), float(view.sigma(t))
      mean = alpha * np.asarray(GAUSSIAN.means[0])
      var = alpha ** 2 * 0.36 + sigma ** 2
      se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2 / n)
      np.testing.assert_allclose(x.mean(0), mean, atol=4 * se_mean + 0.02)
      np.testing.assert_allclose(x.var(0), var, atol=4 * se_var + 0.02 * var)


def test_heun_forward_then_backward_returns_the_start():
  """100 Heun steps from t = 0 to 1 and back on the reversed grid: the start within 2e-3
  (the second-order error of both passes on the exact mixture flow)."""
  path = build_path("vp")
  fields = mixture_oracle(path, isotropic_mixture([0.4, 0.6], [[-1.0, 0.0], [1.0, 1.0]],
                                                  0.3)).fields()
  x0 = path.source_sample(jax.random.PRNGKey(2), (256, 2))
  ts = jnp.linspace(0.0, 1.0, 101)
  forward = integrate(runge_kutta("heun"), fields, x0, ts).x
  back = integrate(runge_kutta("heun"), fields, forward, ts[::-1]).x
  assert float(jnp.max(jnp.abs(forward - x0))) > 0.5       # It went somewhere.
  np.testing.assert_allclose(back, x0, atol=2e-3)


class Counter(NamedTuple):
  calls: jax.Array


def test_token_logits_pass_the_shape_check_and_records_are_stacked():
  """Fields of token logits (B, L, V) drive a stepper over integer states (B, L)."""
  vocabulary = 5
  logits = lambda x, t: jax.nn.one_hot((x + 1) % vocabulary, vocabulary) * 10.0

  def step(fields, x, state, t, t_next, key):
    del t_next, key
    x_next = jnp.argmax(fields.evaluate(x, t).logits, -1).astype(x.dtype)
    return x_next, Counter(state.calls + 1), 1

  stepper = Stepper(lambda x0, ts: Counter(jnp.zeros((), jnp.int32)), step, ("logits",))
  x0 = jnp.zeros((3, 4), jnp.int32)
  out = integrate(stepper, Fields.of(logits=logits), x0, jnp.linspace(0.0, 1.0, 4),
                  record=lambda x, state: state.calls)
  np.testing.assert_array_equal(out.x, jnp.full((3, 4), 3))
  np.testing.assert_array_equal(out.records, [1, 2, 3])
  assert int(out.nfe) == 3
  bad = Fields.of(logits=lambda x, t: jnp.zeros((3, 5)))
  with pytest.raises(ValueError, match=r"logits field returned shape \(3, 5\)"):
    integrate(stepper, bad, x0, jnp.linspace(0.0, 1.0, 4))
  with pytest.raises(ValueError, match=r"needs the prediction\(s\) \['logits'\]"):
    integrate(stepper, Fields.of(velocity=lambda x, t: x), x0, jnp.linspace(0.0, 1.0, 4))


def test_the_readme_custom_stepper():
  """The README's ten-line custom stepper: Euler on the data prediction's velocity of a
  Gaussian path (an explicit midpoint-free Euler), equal to the built-in Euler."""
  path = build_path("rectified_flow")
  fields = mixture_oracle(path, GAUSSIAN).fields()
  view = path.gaussian

  def step(fields, x, state, t, t_next, key):
    x1_hat = fields.evaluate(x, t).data
    eps_hat = (x - view.alpha(t) * x1_hat) / view.sigma(t)
    velocity = view.dalpha(t) * x1_hat + view.dsigma(t) * eps_hat
    return x + (t_next - t) * velocity, state, 1

  mine = Stepper(lambda x0, ts: (), step, needs=("data",))
  x0 = path.source_sample(jax.random.PRNGKey(3), (64, 2))
  ts = jnp.linspace(0.0, 0.95, 11)
  np.testing.assert_allclose(integrate(mine, fields, x0, ts).x,
                             sample("euler", fields, path, x0, num_steps=10, grid=ts).x,
                             rtol=1e-4, atol=1e-4)


# ----- the structure of the package -----


def _modules():
  for file in sorted(PACKAGE.rglob("*.py")):
    parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    yield name, file, ast.parse(file.read_text())


def test_no_import_inside_a_function():
  found = []
  for _, file, tree in _modules():
    for node in ast.walk(tree):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for sub in ast.walk(node):
          if isinstance(sub, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in sub.names] if isinstance(sub, ast.Import) else [
                sub.module]
            relative = str(file.relative_to(PACKAGE))
            if not all((relative, n.split(".")[0]) in OPTIONAL_PEERS
                       or n.split(".")[0] in DEFERRED for n in names):
              found.append(f"{relative}:{sub.lineno} {ast.unparse(sub)}")
  assert not found, "imports inside functions:\n" + "\n".join(found)


def _import_graph():
  modules = {name: tree for name, _, tree in _modules()}
  graph = {}
  for name, tree in modules.items():
    edges = set()
    for node in tree.body:     # Module-level imports only (the rest are refused above).
      targets = []
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                   else node.module for a in node.names]
      for target in targets:
        if target.startswith("diffjax"):
          while target not in modules:
            target = target.rsplit(".", 1)[0]
          if target != name:
            edges.add(target)
    graph[name] = edges
  return graph


def test_no_import_circle_and_the_contracts_at_the_bottom():
  graph = _import_graph()
  assert not graph["diffjax.core"], graph["diffjax.core"]
  # A package's __init__ re-exports its modules; a circle through an __init__ (a module
  # importing from its own package) counts as a circle too.
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == "open":
        cycle = stack[stack.index(nxt):] + [nxt]
        raise AssertionError("import circle: " + " -> ".join(cycle))
      if nxt not in state:
        visit(nxt)
    stack.pop()
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node)


def test_only_the_driver_scans_over_time_in_the_sampling_layer():
  scans = []
  for name, file, tree in _modules():
    if not name.startswith("diffjax.solvers"):
      continue
    for node in ast.walk(tree):
      if isinstance(node, ast.Attribute) and node.attr == "scan":
        scans.append(name)
  assert set(scans) == {"diffjax.solvers.integrate"}, scans


# Variables that hold a component's name: comparing one with a registered name dispatches
# on the name instead of reading the component's declaration.
_NAME_VARIABLES = ("method", "sampler", "solver", "name")


def _string_constants(node):
  elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
  return {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def test_samplers_and_guidance_methods_are_read_from_their_declarations():
  """No module of the library keeps a list of sampler or guidance-method names (a tuple,
  list or set of two or more at module level), and the sampling and guidance layers
  never compare a method's or sampler's name with a registered one (`method == "cfg"`,
  `sampler in ("ddim", ...)`): they read the registered declarations."""
  components = set(SAMPLERS) | set(GUIDANCE_METHODS)
  found = []
  for name, file, tree in _modules():
    relative = str(file.relative_to(PACKAGE))
    for node in tree.body:
      if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        listed = _string_constants(node.value) & components
        if len(listed) >= 2:
          found.append(f"{relative}:{node.lineno} lists {sorted(listed)}")
    if not name.startswith(("diffjax.solvers", "diffjax.guidance")):
      continue
    for node in ast.walk(tree):
      if isinstance(node, ast.Compare):
        sides = [node.left] + node.comparators
        variables = {getattr(side, "id", getattr(side, "attr", None)) for side in sides}
        named = set().union(*(_string_constants(side) for side in sides)) & components
        if named and variables & set(_NAME_VARIABLES):
          found.append(f"{relative}:{node.lineno} {ast.unparse(node)}")
  assert not found, "dispatch on component names:\n" + "\n".join(found)
