"""Every interpolant loss is minimised by the exact oracle field: its gradient there is
zero in expectation, perturbed fields score higher, and the fields recovered from the
heads are the oracle's velocity and score."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import MixtureOracle, isotropic_mixture
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path

RHO0 = isotropic_mixture([0.4, 0.6], [[-1.0, 0.0], [1.0, 1.0]], [0.6, 0.8])
RHO1 = isotropic_mixture([0.5, 0.5], [[3.0, 0.0], [0.0, 3.0]], [0.4, 0.5])
PATH = build_path("linear", gamma="sqrt")
ORACLE = MixtureOracle(PATH, RHO0, RHO1)
HEAD_FIELDS = {"velocity": ORACLE.velocity, "score": ORACLE.score,
               "denoiser": ORACLE.noise,
               "deterministic_velocity": ORACLE.deterministic_velocity}
CASES = [(("velocity",), "none"), (("velocity", "score"), "none"),
         (("velocity", "score"), "gamma2"), (("deterministic_velocity", "denoiser"), "none"),
         (("deterministic_velocity", "score"), "none")]


def _direction(x, t):
  """A fixed smooth perturbation field h(x, t): (B, D) -> (B, D)."""
  t = jnp.broadcast_to(t, x.shape[:1])[:, None]
  return jnp.sin(x[:, ::-1]) + t * jnp.cos(x)


def _oracle_network(heads, scale=1.0):
  """apply(deltas, x, t): the oracle heads, head i perturbed by deltas[i] * h(x, t)."""
  def apply(deltas, x, t, cond=None):
    del cond
    outs = [scale * HEAD_FIELDS[h](x, t) + deltas[i] * _direction(x, t)
            for i, h in enumerate(heads)]
    return jnp.concatenate(outs, axis=-1)
  return apply


def _batch(key, n):
  k0, k1 = jax.random.split(key)
  return RHO0.sample(k0, n), RHO1.sample(k1, n)


@pytest.mark.parametrize("heads,weighting", CASES)
def test_oracle_minimises_each_loss(heads, weighting):
  objective = build_objective("interpolant", PATH, heads=heads, score_weighting=weighting,
                              t_min=0.02, t_max=0.98)
  apply = _oracle_network(heads)

  @jax.jit
  def loss_and_grad(deltas, key):
    x0, x1 = _batch(jax.random.fold_in(key, 1), 4096)
    value = lambda d: objective.loss(apply, d, key, x0, x1)[0]
    return value(deltas), jax.grad(value)(deltas)

  zero = jnp.zeros(len(heads))
  keys = jax.random.split(jax.random.PRNGKey(0), 12)
  grads = np.stack([loss_and_grad(zero, k)[1] for k in keys])
  mean, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(keys))
  # Gradient at the oracle is zero in expectation: within 5 standard errors.
  np.testing.assert_array_less(np.abs(mean), 5 * se + 1e-6)
  # Perturbed fields have a higher loss (same randomness for a paired comparison).
  for i in range(len(heads)):
    for delta in (0.3, -0.3):
      bumped = zero.at[i].set(delta)
      diffs = [loss_and_grad(bumped, k)[0] - loss_and_grad(zero, k)[0] for k in keys[:3]]
      assert min(diffs) > 0, (heads, i, delta, diffs)


def test_gradient_check_has_power():
  """A wrong field (the velocity scaled by 0.9) has a gradient far from zero."""
  objective = build_objective("interpolant", PATH, heads=("velocity",))
  apply = _oracle_network(("velocity",), scale=0.9)

  @jax.jit
  def grad(key):
    x0, x1 = _batch(jax.random.fold_in(key, 1), 4096)
    return jax.grad(lambda d: objective.loss(apply, d, key, x0, x1)[0])(jnp.zeros(1))

  grads = np.stack([grad(k) for k in jax.random.split(jax.random.PRNGKey(0), 12)])
  mean, se = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(len(grads))
  assert np.all(np.abs(mean) > 5 * se)


def test_flow_matching_objective_is_minimised_by_oracle_velocity():
  objective = build_objective("flow_matching", PATH)
  apply = lambda d, x, t, cond=None: ORACLE.velocity(x, t) + d[0] * _direction(x, t)

  @jax.jit
  def grad(key):
    x0, x1 = _batch(jax.random.fold_in(key, 1), 4096)
    return jax.grad(lambda d: objective.loss(apply, d, key, x0, x1)[0])(jnp.zeros(1))

  grads = np.stack([grad(k) for k in jax.random.split(jax.random.PRNGKey(1), 12)])
  assert abs(grads.mean()) < 5 * grads.std(ddof=1) / np.sqrt(len(grads))


@pytest.mark.parametrize("heads", [("velocity", "score"), ("velocity", "denoiser"),
                                   ("deterministic_velocity", "score"),
                                   ("deterministic_velocity", "denoiser")])
def test_fields_recover_oracle_velocity_and_score(heads):
  """Sign convention: eta regresses +z, s = -eta / gamma; b = v - gamma gamma' s."""
  objective = build_objective("interpolant", PATH, heads=heads)
  fields = objective.fields(_oracle_network(heads), jnp.zeros(len(heads)))
  x = jax.random.normal(jax.random.PRNGKey(2), (30, 2)) * 2
  for t in (0.2, 0.7):
    np.testing.assert_allclose(fields.velocity(x, t), ORACLE.velocity(x, t), atol=1e-4)
    np.testing.assert_allclose(fields.score(x, t), ORACLE.score(x, t), atol=1e-4)
    out = fields.evaluate(x, t)
    np.testing.assert_allclose(out.data, ORACLE.data(x, t), atol=2e-3)
    np.testing.assert_allclose(out.noise, ORACLE.noise(x, t), atol=1e-4)


def test_stacked_fields_model_and_head_validation():
  model = build_model("stacked_fields", (2,), num_fields=2, width=16, depth=1)
  params = model.init(jax.random.PRNGKey(0))
  out = model.apply(params, jnp.ones((5, 2)), jnp.full((5,), 0.3))
  assert out.shape == (5, 4)
  assert not np.allclose(out[:, :2], out[:, 2:])   # Two independent networks.
  with pytest.raises(ValueError, match="need a velocity"):
    build_objective("interpolant", PATH, heads=("score",))
  with pytest.raises(ValueError, match="gamma = 0"):
    build_objective("interpolant", build_path("linear"), heads=("velocity", "score"))
  with pytest.raises(ValueError, match="distinct names"):
    build_objective("interpolant", PATH, heads=("velocity", "drift"))
