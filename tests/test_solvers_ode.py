"""Fixed-step probability-flow ODE samplers: convergence orders against a tight reference,
the target distribution from exact fields, time grids and error messages."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields
from diffjax.data import GaussianMixture, isotropic_mixture, mixture_oracle
from diffjax.paths import build_path
from diffjax.registry import UnknownComponentError
from diffjax.solvers import (ODE_SOLVERS, SAMPLERS, integrate, runge_kutta, runge_kutta_step,
                             sample, time_grid)

# A smooth target (overlapping components) for orders, a bimodal one for distributions.
SMOOTH = GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([[-1.0, 0.0], [1.0, 0.5]]),
                         jnp.array([[[1.0, 0.3], [0.3, 0.8]], [[0.7, 0.0], [0.0, 1.2]]]))
BIMODAL = isotropic_mixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], 0.5)


def run(name, fields, path, x0, num_steps, key=None, **options):
  fn = jax.jit(lambda x, k: sample(name, fields, path, x, k, num_steps=num_steps,
                                   **options).x)
  return fn(x0, jax.random.PRNGKey(0) if key is None else key)


def assert_matches_mixture(x, law, slack=0.05):
  """Mean, covariance and the weight of the right-hand mode (x_0 > 0) agree with the exact
  law within 4 standard errors (estimated from the samples) plus `slack`."""
  x = np.asarray(x, np.float64)
  n = x.shape[0]
  w, mu, cov = (np.asarray(a, np.float64) for a in (law.weights, law.means, law.covariances))
  mean = w @ mu
  second = np.einsum("k,kij->ij", w, cov + np.einsum("ki,kj->kij", mu, mu))
  covariance = second - np.outer(mean, mean)
  assert np.all(np.isfinite(x))
  se_mean = x.std(0) / np.sqrt(n)
  assert np.all(np.abs(x.mean(0) - mean) < 4 * se_mean + slack), (x.mean(0), mean)
  centred = x - x.mean(0)
  products = np.einsum("ni,nj->nij", centred, centred)
  se_cov = products.std(0) / np.sqrt(n)
  assert np.all(np.abs(products.mean(0) - covariance) < 4 * se_cov + slack * 
                np.maximum(1, np.abs(covariance))), (products.mean(0), covariance)
  # Weight of the components with positive first mean coordinate (modes are separated).
  p = float(w[mu[:, 0] > 0].sum())
  frac = float(np.mean(x[:, 0] > 0))
  assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / n) + slack, (frac, p)


def _start(path, law, n, seed=1):
  return mixture_oracle(path, law).marginal(0.0).sample(jax.random.PRNGKey(seed), n)


@pytest.mark.parametrize("method,steps,order", [
    ("euler", (32, 64), 1), ("heun", (16, 32), 2), ("midpoint", (16, 32), 2),
    ("rk4", (8, 16), 4)])
def test_convergence_order(method, steps, order):
  """Observed order log2(err(N) / err(2N)) against RK4 with 1024 steps, within 0.3."""
  path = build_path("vp")
  fields = mixture_oracle(path, SMOOTH).fields()
  x0 = _start(path, SMOOTH, 16)
  reference = run("rk4", fields, path, x0, 1024)
  errors = [float(jnp.sqrt(jnp.mean((run(method, fields, path, x0, n) - reference) ** 2)))
            for n in steps]
  observed = np.log2(errors[0] / errors[1])
  assert abs(observed - order) < 0.3, (errors, observed)


# Butcher's order conditions (Hairer, Nørsett & Wanner I, Table II.2.2) up to order 5,
# each as (order, (b, c, A) -> value, exact value).
ORDER_CONDITIONS = [
    (1, lambda b, c, a: b.sum(), 1), (2, lambda b, c, a: b @ c, 1 / 2),
    (3, lambda b, c, a: b @ c ** 2, 1 / 3), (3, lambda b, c, a: b @ a @ c, 1 / 6),
    (4, lambda b, c, a: b @ c ** 3, 1 / 4), (4, lambda b, c, a: b @ (c * (a @ c)), 1 / 8),
    (4, lambda b, c, a: b @ a @ c ** 2, 1 / 12), (4, lambda b, c, a: b @ a @ a @ c, 1 / 24),
    (5, lambda b, c, a: b @ c ** 4, 1 / 5)]


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint", "rk4"])
def test_tableau_has_its_order(method):
  """Each tableau meets every condition of its order, c_i = sum_j a_ij, and fails some
  condition of the next order."""
  solver = ODE_SOLVERS.get(method)
  b, c = np.array(solver.weights), np.array(solver.nodes)
  a = np.diag(np.array(solver.subdiagonal), -1) if len(b) > 1 else np.zeros((1, 1))
  np.testing.assert_allclose(a.sum(1), c, atol=1e-15)
  for order, condition, exact in ORDER_CONDITIONS:
    if order <= solver.order:
      assert condition(b, c, a) == pytest.approx(exact, abs=1e-12), (order, exact)
  assert any(abs(condition(b, c, a) - exact) > 1e-3
             for order, condition, exact in ORDER_CONDITIONS if order == solver.order + 1)


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint", "rk4"])
def test_solver_loop_matches_single_steps_and_traces_the_field_once(method):
  """A Runge–Kutta step runs its stages in a loop: the same result as the step kernel
  applied along the grid, with the field traced once under jit (the shape check included),
  not once per stage."""
  path = build_path("vp")
  velocity = mixture_oracle(path, SMOOTH).fields().velocity
  traces = []
  def field(x, t):
    traces.append(t)
    return velocity(x, t)

  x0, ts = _start(path, SMOOTH, 8), jnp.array([0.0, 0.1, 0.35, 0.7, 1.0])
  looped = jax.jit(
      lambda x: integrate(runge_kutta(method), Fields.of(velocity=field), x, ts).x)(x0)
  assert len(traces) == 1
  x = x0
  for t, t_next in zip(ts[:-1], ts[1:]):
    x = runge_kutta_step(velocity, ODE_SOLVERS.get(method), x, t, t_next)
  np.testing.assert_allclose(looped, x, atol=1e-5)


@pytest.mark.parametrize("method,steps,grid", [
    ("euler", 100, "uniform"), ("heun", 30, "edm"), ("midpoint", 30, "uniform"),
    ("rk4", 15, "log_snr")])
def test_sampler_reaches_target_distribution(method, steps, grid):
  path = build_path("vp")
  law = mixture_oracle(path, BIMODAL).marginal(1.0)
  x = run(method, mixture_oracle(path, BIMODAL).fields(), path,
          _start(path, BIMODAL, 2000), steps, grid=grid)
  assert_matches_mixture(x, law)


def test_time_grids():
  path = build_path("vp")
  ts = time_grid("edm", 10, path, rho=7.0)
  levels = np.exp(-np.asarray(path.gaussian.log_snr(ts), np.float64))
  hi, lo = levels[0] ** (1 / 7), levels[-1] ** (1 / 7)
  expected = (hi + np.arange(11) / 10 * (lo - hi)) ** 7      # Karras et al., eq. 5
  np.testing.assert_allclose(levels[1:-1], expected[1:-1], rtol=1e-3)
  lam = np.asarray(path.gaussian.log_snr(time_grid("log_snr", 8, path)))
  np.testing.assert_allclose(np.diff(lam), np.full(8, (lam[-1] - lam[0]) / 8), rtol=1e-3)
  for grid in ("uniform", "edm", "log_snr"):
    ts = np.asarray(time_grid(grid, 12, build_path("rectified_flow")))
    assert ts[0] == 0 and ts[-1] == 1 and np.all(np.diff(ts) > 0), grid
  with pytest.raises(ValueError, match="needs a Gaussian path"):
    time_grid("log_snr", 4, build_path("linear"))


def test_errors():
  path = build_path("vp")
  fields = mixture_oracle(path, BIMODAL).fields()
  x0 = jnp.zeros((4, 2))
  key = jax.random.PRNGKey(0)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    sample("heun", fields, path, x0, key, num_steps=2, grid=[0.0, 0.5, 1.2])
  with pytest.raises(ValueError, match="monotone"):
    sample("rk4", fields, path, x0, key, num_steps=3, grid=[0.0, 0.6, 0.4, 1.0])
  bad = Fields.of(velocity=lambda x, t: x[:, :1])
  with pytest.raises(ValueError, match=r"\(4, 1\).*\(4, 2\)"):
    sample("euler", bad, path, x0, key, num_steps=2)
  with pytest.raises(UnknownComponentError, match="dpm_solver_pp_2m.*heun"):
    SAMPLERS.get("dpm_solver")
  with pytest.raises(UnknownComponentError, match="edm.*log_snr.*uniform"):
    sample("heun", fields, path, x0, key, num_steps=2, grid="karras")
