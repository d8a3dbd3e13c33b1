"""SDE samplers: Euler–Maruyama for any eps(t) (incl. the reverse SDE), Langevin
predictor-corrector, EDM's churn sampler; target distributions and errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields
from diffjax.data import mixture_oracle
from diffjax.fields import gaussian_fields
from diffjax.paths import build_path
from diffjax.solvers import sample
from tests.test_solvers_ode import BIMODAL, assert_matches_mixture, run

PATH = build_path("vp")
FIELDS = mixture_oracle(PATH, BIMODAL).fields()
X0 = mixture_oracle(PATH, BIMODAL).marginal(0.0).sample(jax.random.PRNGKey(5), 2000)
LAW = mixture_oracle(PATH, BIMODAL).marginal(1.0)


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
  x0 = mixture_oracle(path, BIMODAL).marginal(0.0).sample(jax.random.PRNGKey(6), 2000)
  x = run(name, mixture_oracle(path, BIMODAL).fields(), path, x0, steps, **options)
  assert_matches_mixture(x, mixture_oracle(path, BIMODAL).marginal(1.0), slack=0.07)


def test_euler_maruyama_evaluates_a_network_once_per_step():
  """Fields of one network give velocity and score from one evaluation: one network trace
  in the loop, nfe = steps, and the same samples as separate velocity and score fields."""
  traces = []
  def noise_network(x, t):
    traces.append(t)
    return FIELDS.evaluate(x, t).noise

  joint = gaussian_fields(noise_network, PATH, "noise")
  separate = Fields.of(velocity=joint.velocity, score=joint.score)
  draw = lambda fields: jax.jit(lambda x: sample(
      "euler_maruyama", fields, PATH, x, jax.random.PRNGKey(3), num_steps=10,
      eps="reverse_sde"))(X0[:64])
  traces.clear()
  one = draw(joint)
  assert len(traces) == 1      # One trace in the loop, the shape check included.
  two = draw(separate)
  np.testing.assert_allclose(one.x, two.x, rtol=1e-5, atol=1e-5)
  assert int(one.nfe) == 10


def test_euler_maruyama_last_step_is_deterministic():
  """The last step adds no fresh noise unless final_noise=True (before the redesign the
  test of the last step compared the step's start time with its midpoint, always true, so
  fresh noise was added: at 5 NFE that doubled W2 on the solvers benchmark's ring)."""
  one = lambda key, **o: run("euler_maruyama", FIELDS, PATH, X0[:8], 1, key=key, **o)
  np.testing.assert_array_equal(one(jax.random.PRNGKey(1)), one(jax.random.PRNGKey(2)))
  noisy = [one(jax.random.PRNGKey(k), final_noise=True) for k in (1, 2)]
  assert float(jnp.max(jnp.abs(noisy[0] - noisy[1]))) > 1e-3


def test_stochastic_samplers_use_their_key():
  a = run("euler_maruyama", FIELDS, PATH, X0[:8], 10, key=jax.random.PRNGKey(1))
  b = run("euler_maruyama", FIELDS, PATH, X0[:8], 10, key=jax.random.PRNGKey(2))
  assert float(jnp.max(jnp.abs(a - b))) > 1e-3


def test_errors():
  key = jax.random.PRNGKey(0)
  # A velocity alone gives the score on a Gaussian path, not on an interpolant with noise.
  noisy = build_path("linear", gamma="sqrt")
  no_score = Fields.of(velocity=FIELDS.velocity)
  with pytest.raises(ValueError, match=r"needs the prediction\(s\) \['score'\]"):
    sample("euler_maruyama", no_score, noisy, X0[:2], key, num_steps=2)
  with pytest.raises(ValueError, match="needs a Gaussian path"):
    sample("pc_langevin", no_score, noisy, X0[:2], key, num_steps=2)
  with pytest.raises(ValueError, match="stochastic: pass a PRNG key"):
    sample("euler_maruyama", FIELDS, PATH, X0[:2], None, num_steps=2)
  with pytest.raises(ValueError, match="reverse_sde"):
    sample("euler_maruyama", FIELDS, PATH, X0[:2], key, num_steps=2, eps="reverse")
  rf = build_path("rectified_flow")
  with pytest.raises(ValueError, match="alpha\\(0\\) > 0"):
    sample("edm_churn", mixture_oracle(rf, BIMODAL).fields(), rf, X0[:2], key,
           num_steps=2)
