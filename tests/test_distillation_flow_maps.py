"""Consistency models, MeanFlow and shortcut models against exact flow maps.

The target N(m, diag(s^2)) on the rectified-flow path x_t = t x1 + (1 - t) x0 has marginals
N(t m, diag(sigma_t^2)), sigma_t^2 = t^2 s^2 + (1 - t)^2, and the linear probability-flow
ODE whose flow map is X(x, t, t') = t' m + (sigma_t' / sigma_t)(x - t m) coordinate-wise.
The 8-Gaussian ring's flow map is the exact oracle's ODE integrated with 400 RK4 steps.
With these as students, every loss vanishes (within float or integration tolerance) and is
positive for a perturbed student; the multistep samplers reproduce the target."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from diffjax import metrics
from diffjax.core import Fields
from diffjax.data import isotropic_mixture, mixture_oracle
from diffjax.data.gaussian_mixture import GaussianMixture
from diffjax.distillation import TEACHER_MIXTURES
from diffjax.distillation import consistency as cm
from diffjax.distillation.meanflow import DEFAULTS as MEANFLOW_DEFAULTS, meanflow_loss
from diffjax.distillation.shortcut import DEFAULTS as SHORTCUT_DEFAULTS, shortcut_loss
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.paths import build_path
from diffjax.solvers import SAMPLERS, integrate, sample

PATH = build_path("rectified_flow")
LEVELS = cm.NoiseLevels(PATH.gaussian)
M = jnp.array([1.0, -0.5])
S = jnp.array([0.5, 1.5])
GAUSSIAN = GaussianMixture(jnp.ones((1,)), M[None], jnp.diag(S ** 2)[None])
ORACLE = mixture_oracle(PATH, GAUSSIAN).fields()
# The time at which the consistency function's level tau = sigma / alpha is sigma_min.
T_MAX = 1 / (1 + LEVELS.sigma_min)


def _col(t, x):
  return jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])[:, None]


def _scale(t):
  """sigma_t (B, 2) for t (B, 1)."""
  return jnp.sqrt(t ** 2 * S[None] ** 2 + (1 - t) ** 2)


def flow_map(x, t, s):
  """The exact X(x, t, s) of the Gaussian target; t, s () or (B,)."""
  t, s = _col(t, x), _col(s, x)
  return s * M[None] + _scale(s) / _scale(t) * (x - t * M[None])


def average_velocity(x, t, s):
  """(X(x, t, s) - x) / (s - t), and the velocity v(x, t) where s = t."""
  tc, sc = _col(t, x), _col(s, x)
  dscale = (tc * S[None] ** 2 - (1 - tc)) / _scale(tc)
  velocity = M[None] + dscale / _scale(tc) * (x - tc * M[None])
  gap = sc - tc
  same = jnp.abs(gap) < 1e-6
  jump = (flow_map(x, t, s) - x) / jnp.where(same, 1.0, gap)
  return jnp.where(same, velocity, jump)


def consistency_map(x, t):
  """The exact consistency function: the flow map to the level sigma_min, in units of
  x1 (divided by alpha there)."""
  return flow_map(x, t, T_MAX) / T_MAX


def _pairs(key, n=64, dim=2):
  k0, k1 = jax.random.split(key)
  return jax.random.normal(k0, (n, dim)), GAUSSIAN.sample(k1, n)


def _teacher_velocity(x_t, t, x0, x1, labels):
  del x0, x1, labels
  return ORACLE.velocity(x_t, t)


def test_closed_form_velocity_is_the_oracles():
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 2))
  t = jnp.linspace(0.05, 0.95, 6)
  np.testing.assert_allclose(average_velocity(x, t, t), ORACLE.velocity(x, t), rtol=1e-5,
                             atol=1e-5)


def test_boundary_condition_holds_exactly():
  """f(x, 1) = x bit for bit whatever the network, and f(x, t) = x / alpha(t) wherever the
  level tau(t) <= sigma_min."""
  model = build_model("mlp", (2,), width=16, depth=2)
  params = jax.tree.map(lambda p: 50.0 * p, model.init(jax.random.PRNGKey(0)))
  f = cm.consistency_function(lambda p, x, t, labels: model.apply(p, x, t), LEVELS, 0.5)
  x = 3.0 * jax.random.normal(jax.random.PRNGKey(1), (32, 2))
  np.testing.assert_array_equal(f(params, x, 1.0), x)
  np.testing.assert_array_equal(f(params, x, jnp.ones(32)), x)
  t = 1 / (1 + 0.5 * LEVELS.sigma_min)
  np.testing.assert_allclose(f(params, x, t), x / t, rtol=1e-7)
  assert float(jnp.max(jnp.abs(f(params, x, 0.9) - x / 0.9))) > 1e-2   # F matters inside


def test_noise_levels_map_to_times_and_the_curriculum_doubles():
  n = jnp.asarray(18)
  levels = LEVELS.level(jnp.arange(18), n)
  np.testing.assert_allclose(np.asarray(levels)[[0, -1]], [0.002, 80.0], rtol=1e-5)
  times = LEVELS.time(levels)
  np.testing.assert_allclose(times, 1 / (1 + levels), rtol=1e-5)   # tau = (1 - t) / t
  edm = cm.NoiseLevels(build_path("edm").gaussian)
  np.testing.assert_allclose(edm.time(edm.level(jnp.arange(18), n)),
                             1 - jnp.arange(18) / 17, atol=1e-5)
  counts = [int(cm.ict_num_levels(jnp.asarray(k), 800)) for k in (0, 99, 100, 350, 799)]
  assert counts == [11, 11, 21, 81, 1281]


def test_lognormal_level_sampling_follows_the_erf_masses():
  n, draws = 21, 40_000
  index = cm.sample_level_index(jax.random.PRNGKey(0), (draws,), jnp.asarray(n), 41, LEVELS)
  freq = np.bincount(np.asarray(index), minlength=n - 1) / draws
  assert np.asarray(index).max() <= n - 2
  levels = np.asarray(LEVELS.level(jnp.arange(n), n), np.float64)
  mass = np.diff(erf((np.log(levels) + 1.1) / (np.sqrt(2) * 2.0)))
  np.testing.assert_allclose(freq, mass / mass.sum(), atol=0.01)


def _wiggle(t, x):
  """A perturbation of a student that differs between adjacent noise levels."""
  return 0.05 * jnp.sin(40 * _col(t, x)) * jnp.ones_like(x)


def _cd_options(**changes):
  return dict(cm.CD_DEFAULTS, **changes)


def _cd_loss(f, x1, step_fn, fields_of, **options):
  """key -> the consistency-distillation loss of f on data x1 (compiled once)."""
  options = _cd_options(**options)
  return jax.jit(lambda key: cm.consistency_distillation_loss(
      f, None, key, x1, None, fields_of, step_fn, LEVELS, options)[0])


@pytest.mark.parametrize("distance", ["squared_l2", "pseudo_huber"])
def test_consistency_distillation_loss_vanishes_at_the_exact_map(distance):
  step_fn = cm.ode_step("rk4", PATH)
  fields_of = lambda labels: ORACLE
  exact = lambda params, x, t, labels: consistency_map(x, t)
  perturbed = lambda params, x, t, labels: consistency_map(x, t) + _wiggle(t, x)
  _, x1 = _pairs(jax.random.PRNGKey(0))
  exact_loss = _cd_loss(exact, x1, step_fn, fields_of, distance=distance)
  perturbed_loss = _cd_loss(perturbed, x1, step_fn, fields_of, distance=distance)
  for i in range(3):
    key = jax.random.PRNGKey(10 + i)
    zero, positive = exact_loss(key), perturbed_loss(key)
    # The pseudo-Huber distance is about |a - b| (not squared): float32 noise shows more.
    assert float(zero) < 1e-4 * float(positive) and float(positive) > 1e-3, (zero, positive)


def test_consistency_distillation_loss_vanishes_for_the_ring_oracle():
  """The 8-Gaussian ring: the student is the oracle's ODE integrated to sigma_min."""
  ring = mixture_oracle(PATH, TEACHER_MIXTURES.get("eight_gaussians")()).fields()
  rk4 = SAMPLERS.get("rk4").build(PATH)

  def ode_map(params, x, t, labels):
    del params, labels
    def one(xi, ti):
      ts = ti + (T_MAX - ti) * jnp.linspace(0.0, 1.0, 401)
      return integrate(rk4, ring, xi[None], ts).x[0]
    return jax.vmap(one)(x, jnp.broadcast_to(t, x.shape[:1])) / T_MAX

  x1 = TEACHER_MIXTURES.get("eight_gaussians")().sample(jax.random.PRNGKey(0), 16)
  step_fn = cm.ode_step("rk4", PATH)
  key = jax.random.PRNGKey(1)
  zero = _cd_loss(ode_map, x1, step_fn, lambda labels: ring)(key)
  perturbed = lambda p, x, t, labels: ode_map(p, x, t, labels) + _wiggle(t, x)
  positive = _cd_loss(perturbed, x1, step_fn, lambda labels: ring)(key)
  assert float(zero) < 1e-6 and float(positive) > 1e-3, (zero, positive)


def test_a_stochastic_or_unusable_ode_step_is_refused():
  with pytest.raises(ConfigError, match="stochastic") as error:
    step_fn = cm.ode_step("euler_maruyama", PATH)
    cm.check_ode_step(step_fn, lambda labels: ORACLE, _Context(), "euler_maruyama")
  assert "\n" not in str(error.value)
  with pytest.raises(ConfigError, match="stochastic"):   # a token sampler declares it
    step_fn = cm.ode_step("masked_ancestral", PATH)
    cm.check_ode_step(step_fn, lambda labels: ORACLE, _Context(), "masked_ancestral")


class _Context:
  """The bits of a DistillationContext that check_ode_step reads."""
  class spec:   # pylint: disable=invalid-name
    shape = (2,)

  @staticmethod
  def random_labels(key, n):
    del key, n


def _meanflow(u, options, velocity=_teacher_velocity):
  """key -> the MeanFlow loss of u on fixed pairs (compiled once)."""
  x0, x1 = _pairs(jax.random.PRNGKey(3))
  return jax.jit(lambda key: meanflow_loss(u, None, key, x0, x1, None, PATH, velocity,
                                           options)[0])


@pytest.mark.parametrize("adaptive_p", [0.0, 1.0])
def test_meanflow_loss_vanishes_at_the_exact_average_velocity(adaptive_p):
  options = dict(MEANFLOW_DEFAULTS, adaptive_p=adaptive_p, ratio=0.5)
  exact = lambda params, x, t, s, labels: average_velocity(x, t, s)
  perturbed = lambda params, x, t, s, labels: average_velocity(x, t, s) + 0.1 * (s - t)[:, None]
  exact_loss, perturbed_loss = _meanflow(exact, options), _meanflow(perturbed, options)
  for i in range(3):
    key = jax.random.PRNGKey(i)
    zero, positive = exact_loss(key), perturbed_loss(key)
    assert float(zero) < 1e-8 and float(positive) > 1e-4, (zero, positive)
  # With the pairs' conditional velocity the exact map is the minimiser, not a zero.
  conditional = _meanflow(exact, options, lambda x_t, t, x0, x1, labels: x1 - x0)
  assert float(conditional(jax.random.PRNGKey(0))) > 1e-2


def _shortcut(u, **options):
  """key -> the shortcut loss and its aux for u on fixed pairs (compiled once)."""
  x0, x1 = _pairs(jax.random.PRNGKey(4))
  options = dict(SHORTCUT_DEFAULTS, **options)
  return jax.jit(lambda key: shortcut_loss(u, None, key, x0, x1, None, PATH,
                                           _teacher_velocity, options))


def test_shortcut_loss_vanishes_at_the_exact_flow_map():
  exact = lambda params, x, t, s, labels: average_velocity(x, t, s)
  perturbed = lambda params, x, t, s, labels: (average_velocity(x, t, s)
                                               + 0.1 * (s - t)[:, None] ** 2)
  exact_loss = _shortcut(exact, flow_matching_anchor=False, self_consistency_share=0.5)
  perturbed_loss = _shortcut(perturbed, flow_matching_anchor=False,
                             self_consistency_share=0.5)
  for i in range(3):
    key = jax.random.PRNGKey(i)
    (zero, aux), (positive, _) = exact_loss(key), perturbed_loss(key)
    assert float(zero) < 1e-9 and float(positive) > 1e-5, (zero, positive)
    assert float(aux["self_consistency"]) < 1e-9
  # The paper's anchor (two flow-matching half steps at d = 1/128) is a second-order
  # approximation of the finest step: small, not zero.
  anchored, _ = _shortcut(exact, self_consistency_share=1.0)(jax.random.PRNGKey(0))
  assert float(anchored) < 1e-4


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_flow_map_sampler_with_the_exact_map_is_exact(num_steps):
  x0 = jax.random.normal(jax.random.PRNGKey(0), (256, 2))
  fields = Fields.of(velocity=lambda x, t: average_velocity(x, t, t))
  out = sample("flow_map", fields, PATH, x0, num_steps=num_steps,
               average_velocity=average_velocity)
  np.testing.assert_allclose(out.x, M[None] + S[None] * x0, rtol=1e-5, atol=1e-5)
  assert int(out.nfe) == num_steps
  # Without a flow map it steps with the fields' velocity: Euler.
  euler = sample("euler", fields, PATH, x0, num_steps=num_steps).x
  np.testing.assert_allclose(sample("flow_map", fields, PATH, x0, num_steps=num_steps).x,
                             euler, rtol=1e-6)


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_consistency_sampler_with_the_exact_map_reproduces_the_target(num_steps):
  n = 20_000
  x0 = jax.random.normal(jax.random.PRNGKey(0), (n, 2))
  fields = Fields.of(data=consistency_map)
  out = sample("consistency", fields, PATH, x0, jax.random.PRNGKey(1), num_steps=num_steps,
               sigma_min=LEVELS.sigma_min).x
  # f maps to the level sigma_min: the law is N(m, s^2 + sigma_min^2).
  std = np.sqrt(np.asarray(S) ** 2 + LEVELS.sigma_min ** 2)
  assert np.all(np.abs(np.mean(out, 0) - np.asarray(M)) < 4 * std / np.sqrt(n))
  assert np.all(np.abs(np.std(out, 0) - std) < 4 * std / np.sqrt(2 * n))
  if num_steps > 1:   # fresh noise at the intermediate levels: not the 1-step map
    one = sample("consistency", fields, PATH, x0, jax.random.PRNGKey(1), num_steps=1,
                 sigma_min=LEVELS.sigma_min).x
    assert float(jnp.max(jnp.abs(out - one))) > 0.1


def test_consistency_sampler_on_the_ring_matches_the_exact_target():
  target = TEACHER_MIXTURES.get("eight_gaussians")()
  ring = mixture_oracle(PATH, target).fields()
  rk4 = SAMPLERS.get("rk4").build(PATH)

  def ode_data(x, t):
    ts = t + (T_MAX - t) * jnp.linspace(0.0, 1.0, 201)
    return integrate(rk4, ring, x, ts).x / T_MAX

  x0 = jax.random.normal(jax.random.PRNGKey(0), (1000, 2))
  reference = np.asarray(target.sample(jax.random.PRNGKey(2), 1000))
  floor, spread = metrics.w2_floor(target.sample, reference, num_draws=4, seed=3)
  for num_steps in (1, 2):
    out = sample("consistency", Fields.of(data=ode_data), PATH, x0, jax.random.PRNGKey(1),
                 num_steps=num_steps, sigma_min=LEVELS.sigma_min).x
    assert metrics.wasserstein2(np.asarray(out), reference) < floor + 2 * spread
