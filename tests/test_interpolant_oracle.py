"""The exact Gaussian-mixture oracle: marginals, continuity equation, score, and transport
of rho0 to rho1 by the ODE and SDE samplers fed the oracle fields."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data import MixtureOracle, isotropic_mixture
from diffjax.paths import build_path
from diffjax.core import Fields
from diffjax.solvers import sample

RHO0 = isotropic_mixture([0.3, 0.7], [[-1.0, 0.0], [1.0, 1.0]], [0.6, 0.8])
RHO1 = isotropic_mixture([0.5, 0.2, 0.3], [[3.0, 0.0], [0.0, 3.0], [-2.0, -2.0]],
                         [0.4, 0.5, 0.3])
PATHS = [("linear", dict(gamma="sqrt")), ("trigonometric", {}), ("encoder_decoder", {}),
         ("vp_cfm", dict(gamma="sigmoid_bump", gamma_scale=0.5))]


def _mixture_log_prob(mixture, x):
  # GaussianMixture.component_log_probs broadcasts (K,) against (N, K) implicitly, which
  # the suite's strict rank promotion refuses; allow it for this call only.
  with jax.numpy_rank_promotion("allow"):
    return mixture.log_prob(x)


def _oracle(name, options):
  return MixtureOracle(build_path(name, **options), RHO0, RHO1)


@pytest.mark.parametrize("name,options", PATHS)
def test_marginal_endpoints_are_the_mixtures(name, options):
  oracle = _oracle(name, options)
  log_prob = jax.jit(oracle.log_prob)
  x = jax.random.normal(jax.random.PRNGKey(0), (50, 2)) * 2.5
  np.testing.assert_allclose(log_prob(x, 0.0), _mixture_log_prob(RHO0, x), atol=1e-4)
  np.testing.assert_allclose(log_prob(x, 1.0), _mixture_log_prob(RHO1, x), atol=1e-4)
  np.testing.assert_allclose(_mixture_log_prob(oracle.marginal(0.3), x),
                             log_prob(x, 0.3), atol=1e-4)


@pytest.mark.parametrize("name,options", PATHS)
def test_velocity_satisfies_continuity_equation(name, options):
  """d/dt log rho + div b + b . grad log rho = 0 (continuity equation divided by rho)."""
  oracle = _oracle(name, options)

  def residual(x, t):
    dlogp = jax.grad(lambda s: oracle.log_prob(x[None], s)[0])(t)
    div = jnp.trace(jax.jacfwd(lambda y: oracle.velocity(y[None], t)[0])(x))
    b, s = oracle.velocity(x[None], t)[0], oracle.score(x[None], t)[0]
    return dlogp + div + b @ s, jnp.abs(dlogp) + jnp.abs(div)

  x = jax.random.normal(jax.random.PRNGKey(1), (16, 2)) * 2.0
  ts = jnp.array([0.1, 0.35, 0.6, 0.85])
  res, scale = jax.jit(jax.vmap(jax.vmap(residual, (0, None)), (None, 0)))(x, ts)
  assert float(jnp.median(scale)) > 1.0   # The terms are not trivially zero.
  np.testing.assert_array_less(np.abs(res), 1e-3 * (1 + np.asarray(scale)))


def test_score_is_gradient_of_log_density_and_relations_hold():
  oracle = _oracle("linear", dict(gamma="sqrt"))
  x = jax.random.normal(jax.random.PRNGKey(2), (20, 2)) * 2.0

  @jax.jit
  def check(t):
    grad = jax.vmap(jax.grad(lambda y: oracle.log_prob(y[None], t)[0]))(x)
    s = oracle.score(x, t)
    gg = oracle.path.gamma_gamma_derivative(t)
    g = oracle.path.coefficients(t)[2]
    return (s - grad, oracle.velocity(x, t) - (oracle.deterministic_velocity(x, t) - gg * s),
            oracle.noise(x, t) + g * s)

  for t in (0.0, 0.4, 1.0):
    for err in check(jnp.float32(t)):
      np.testing.assert_allclose(err, 0.0, atol=1e-4)


def _moments_match(samples, mixture, n_ref=20_000, key=jax.random.PRNGKey(7)):
  """Samples against the exact mixture: mean within 4 standard errors (+0.05 bias
  allowance for the discretisation), covariance within 10%, mode occupancy within 0.05
  (about 4.5 standard errors of the difference at N = 2000)."""
  samples = np.asarray(samples)
  n = len(samples)
  ref = np.asarray(mixture.sample(key, n_ref))
  mean, ref_mean = samples.mean(0), ref.mean(0)
  se = np.sqrt(ref.var(0) / n)
  np.testing.assert_array_less(np.abs(mean - ref_mean), 4 * se + 0.05)
  cov, ref_cov = np.cov(samples.T), np.cov(ref.T)
  np.testing.assert_array_less(np.abs(cov - ref_cov), 0.1 * np.abs(ref_cov).max())
  nearest = lambda x: np.argmin(((x[:, None] - np.asarray(mixture.means)[None]) ** 2).sum(-1),
                                1)
  occupancy = np.bincount(nearest(samples), minlength=3) / n
  ref_occupancy = np.bincount(nearest(ref), minlength=3) / n_ref
  np.testing.assert_array_less(np.abs(occupancy - ref_occupancy), 0.05)


@pytest.mark.parametrize("sampler,options", [
    ("heun", dict(num_steps=40)),
    ("euler_maruyama", dict(num_steps=200, eps=0.0)),
    ("euler_maruyama", dict(num_steps=200, eps=0.5)),
    ("euler_maruyama", dict(num_steps=500, eps=5.0)),
])
def test_samplers_transport_rho0_to_rho1_with_oracle_fields(sampler, options):
  oracle = _oracle("linear", dict(gamma="sqrt"))
  x0 = RHO0.sample(jax.random.PRNGKey(3), 2000)
  run = jax.jit(lambda x, k: sample(sampler, oracle.fields(), oracle.path, x, k,
                                    **options).x)
  x1 = run(x0, jax.random.PRNGKey(4))
  _moments_match(x1, RHO1)


def test_moment_check_detects_a_wrong_transport():
  """The statistical check above has power: a slightly wrong field fails it."""
  oracle = _oracle("linear", dict(gamma="sqrt"))
  wrong = Fields.of(velocity=lambda x, t: 0.85 * oracle.velocity(x, t))
  x1 = jax.jit(lambda x: sample("heun", wrong, oracle.path, x, None, num_steps=40).x)(
      RHO0.sample(jax.random.PRNGKey(3), 2000))
  with pytest.raises(AssertionError):
    _moments_match(x1, RHO1)
