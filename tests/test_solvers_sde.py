"""SDE samplers: Euler–Maruyama for any eps(t) (incl. the reverse SDE), Langevin
predictor-corrector, EDM's churn sampler; target distributions and errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.fields import gaussian_fields, gaussian_mixture_fields
from diffjax.paths import build_path, marginal_mixture
from diffjax.solvers import SAMPLERS
from tests.test_solvers_ode import BIMODAL, assert_matches_mixture, run

PATH = build_path("vp")
FIELDS = gaussian_mixture_fields(BIMODAL, PATH)
X0 = marginal_mixture(PATH, BIMODAL, 0.0).sample(jax.random.PRNGKey(5), 2000)
LAW = marginal_mixture(PATH, BIMODAL, 1.0)


@pytest.mark.parametrize("eps", [0.5, "reverse_sde", "schedule"])
def test_euler_maruyama_marginals_do_not_depend_on_eps(eps):
  eps = (lambda t: 2.0 * t * (1 - t)) if eps == "schedule" else eps
  x = run("euler_maruyama", FIELDS, PATH, X0, 300, eps=eps)
  assert_matches_mixture(x, LAW, slack=0.07)


def test_euler_maruyama_with_zero_eps_is_the_euler_ode():
  np.testing.assert_allclose(run("euler_maruyama", FIELDS, PATH, X0[:64], 20, eps=0.0),
                             run("euler", FIELDS, PATH, X0[:64], 20), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,steps,options,path_name", [
    ("pc_langevin", 200, {"snr": 0.05}, "vp"),
    ("edm_churn", 40, {"s_churn": 20.0}, "vp"),
    ("edm_churn", 40, {"s_churn": 20.0}, "edm")])
def test_sampler_reaches_target_distribution(name, steps, options, path_name):
  path = build_path(path_name, **({"sigma_max": 20.0} if path_name == "edm" else {}))
  x0 = marginal_mixture(path, BIMODAL, 0.0).sample(jax.random.PRNGKey(6), 2000)
  x = run(name, gaussian_mixture_fields(BIMODAL, path), path, x0, steps, **options)
  assert_matches_mixture(x, marginal_mixture(path, BIMODAL, 1.0), slack=0.07)


def test_euler_maruyama_evaluates_a_network_once_per_step():
  """Fields derived from one network give velocity and score from one evaluation: the same
  samples as calling both fields, half the NFE, and one network trace in the loop."""
  traces = []
  def noise_network(x, t):
    traces.append(t)
    return -PATH.sigma(t) * FIELDS.score(x, t)

  joint = gaussian_fields(noise_network, PATH, "noise")
  separate = joint._replace(velocity_and_score=None)
  sample = lambda fields: jax.jit(lambda x: SAMPLERS.get("euler_maruyama")(
      fields, PATH, x, jax.random.PRNGKey(3), num_steps=10, eps="reverse_sde"))(X0[:64])
  traces.clear()
  one = sample(joint)
  assert len(traces) == 3      # The two shape checks, then one trace in the loop.
  two = sample(separate)
  np.testing.assert_allclose(one.x, two.x, rtol=1e-5, atol=1e-5)
  assert int(one.nfe) == 10 and int(two.nfe) == 20


def test_stochastic_samplers_use_their_key():
  a = run("euler_maruyama", FIELDS, PATH, X0[:8], 10, key=jax.random.PRNGKey(1))
  b = run("euler_maruyama", FIELDS, PATH, X0[:8], 10, key=jax.random.PRNGKey(2))
  assert float(jnp.max(jnp.abs(a - b))) > 1e-3


def test_errors():
  key = jax.random.PRNGKey(0)
  no_score = FIELDS._replace(score=None)
  for name in ("euler_maruyama", "pc_langevin"):
    with pytest.raises(ValueError, match="needs a score field"):
      SAMPLERS.get(name)(no_score, PATH, X0[:2], key, num_steps=2)
  with pytest.raises(ValueError, match="reverse_sde"):
    SAMPLERS.get("euler_maruyama")(FIELDS, PATH, X0[:2], key, num_steps=2, eps="reverse")
  rf = build_path("rectified_flow")
  with pytest.raises(ValueError, match="alpha\\(0\\) > 0"):
    SAMPLERS.get("edm_churn")(gaussian_mixture_fields(BIMODAL, rf), rf, X0[:2], key,
                              num_steps=2)
