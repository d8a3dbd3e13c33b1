"""Linear-path flow matching against the Gaussian closed form.

Source N(0, I), target N(m, s^2 I) in D dimensions, x_t = (1 - t) x0 + t x1:
  x_t ~ N(t m, var_t I), var_t = (1 - t)^2 + t^2 s^2,
  v(x, t) = E[x1 - x0 | x_t = x] = m + (t s^2 - (1 - t)) / var_t * (x - t m),
and the flow map is x_t = t m + sqrt(var_t) x0, so x1 = m + s x0 exactly.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.core import Fields
from diffjax.solvers import integrate, runge_kutta, sample, uniform_grid

D, S = 3, 0.5
M = jnp.array([2.0, -1.0, 0.5])


def exact_velocity(x, t):
  t = jnp.asarray(t, jnp.float32).reshape(-1, 1) if jnp.ndim(t) else t
  var = (1 - t) ** 2 + t ** 2 * S ** 2
  return M[None] + (t * S ** 2 - (1 - t)) / var * (x - t * M[None])


def as_network(scale=1.0, shift=0.0):
  """A fake 'network' apply(params, x, t, cond) giving a perturbed exact velocity."""
  return lambda params, x, t, cond=None: scale * exact_velocity(x, t) + shift + 0 * params


def draw(key, n):
  k0, k1 = jax.random.split(key)
  return (jax.random.normal(k0, (n, D)),
          M[None] + S * jax.random.normal(k1, (n, D)))


def test_linear_path_boundaries_and_velocity():
  path = build_path("linear")
  x0, x1 = draw(jax.random.PRNGKey(0), 8)
  np.testing.assert_allclose(path.interpolate(0.0, x0, x1), x0)
  np.testing.assert_allclose(path.interpolate(1.0, x0, x1), x1)
  t = jnp.linspace(0, 1, 8)
  np.testing.assert_allclose(path.conditional_velocity(t, x0, x1), x1 - x0, atol=1e-6)


def test_loss_is_minimised_by_the_exact_velocity():
  objective = build_objective("flow_matching", build_path("linear"))
  x0, x1 = draw(jax.random.PRNGKey(1), 200_000)
  key = jax.random.PRNGKey(2)  # Common random numbers for every candidate field.
  loss = lambda scale, shift: objective.loss(as_network(scale, shift), 0.0, key, x0, x1)[0]
  best = loss(1.0, 0.0)
  for scale, shift in [(1.1, 0.0), (0.9, 0.0), (1.0, 0.1), (1.0, -0.1)]:
    assert loss(scale, shift) > best + 1e-3
  # At the minimiser the loss is stationary: d loss / d (scale, shift) ~ 0.
  grads = jax.grad(lambda p: loss(1.0 + p[0], p[1]))(jnp.zeros(2))
  assert np.all(np.abs(np.asarray(grads)) < 0.02), grads


@pytest.mark.parametrize("method, steps, tol", [("euler", 200, 0.02), ("heun", 20, 5e-3)])
def test_ode_samplers_transport_source_to_target(method, steps, tol):
  x0, _ = draw(jax.random.PRNGKey(3), 20_000)
  result = sample(method, Fields.of(velocity=exact_velocity), build_path("linear"), x0,
                  jax.random.PRNGKey(4), num_steps=steps)
  # The flow map is known exactly: x1 = m + s x0.
  np.testing.assert_allclose(result.x, M[None] + S * x0, atol=tol)
  assert result.nfe == {"euler": 1, "heun": 2}[method] * steps


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2)])
def test_fixed_step_convergence_order(method, order):
  x0, _ = draw(jax.random.PRNGKey(5), 64)
  exact = M[None] + S * x0
  solve = lambda n: integrate(runge_kutta(method), Fields.of(velocity=exact_velocity), x0,
                             uniform_grid(n)).x
  errors = [float(jnp.max(jnp.abs(solve(n) - exact))) for n in (16, 32, 64)]
  rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
  np.testing.assert_allclose(rates, order, atol=0.15)


def test_solver_refuses_a_field_of_the_wrong_shape():
  with pytest.raises(ValueError, match=r"returned shape \(4, 2\) for a state of shape "
                     r"\(4, 3\)"):
    integrate(runge_kutta("euler"), Fields.of(velocity=lambda x, t: x[:, :2]),
              jnp.zeros((4, 3)), uniform_grid(4))


@pytest.mark.parametrize("grid, message", [
    (np.array([0.0, 0.5, 1.5]), "must lie in"), (np.array([0.0, 0.7, 0.5, 1.0]), "monotone")])
def test_solver_refuses_bad_time_grids(grid, message):
  with pytest.raises(ValueError, match=message):
    integrate(runge_kutta("euler"), Fields.of(velocity=exact_velocity), jnp.zeros((4, D)),
              grid)
