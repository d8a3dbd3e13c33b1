"""Denoising score matching: weightings are exact across predictions, the exact
predictor is the minimiser, time samplers, EDM's objective, and error messages."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax import fields as F
from diffjax.data import isotropic_mixture, mixture_oracle
from diffjax.objectives import build_objective
from diffjax.objectives.score_matching import log_snr_uniform_times
from diffjax.paths import build_path
from diffjax.registry import UnknownComponentError

MIX = isotropic_mixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], 0.6)


def _batch(path, n=512, seed=0):
  k0, k1 = jax.random.split(jax.random.PRNGKey(seed))
  return path.source_sample(k0, (n, 2)), MIX.sample(k1, n)


def _network(path, prediction):
  """An arbitrary smooth 'noise network', re-expressed exactly as each prediction."""
  noise_net = lambda x, t: jnp.tanh(x) * (0.5 + t[:, None])
  return lambda p, x, t, c: F.convert(noise_net(x, t), x, t, path.gaussian, "noise",
                                      prediction)


@pytest.mark.parametrize("path_name,weighting", list(itertools.product(
    ["vp", "ve"], ["likelihood", "snr", "min_snr", "edm"])))
def test_weightings_are_the_same_loss_in_every_prediction(path_name, weighting):
  """The same network expressed as noise/data/score/v/velocity gives the same weighted
  loss (same key, so the same t and z): the factor table is exact."""
  path = build_path(path_name, **({"sigma_max": 10.0} if path_name == "ve" else {}))
  x0, x1 = _batch(path)
  key = jax.random.PRNGKey(1)
  losses = {}
  for prediction in ("noise", "data", "score", "v", "velocity"):
    obj = build_objective("score_matching", path, prediction=prediction, weighting=weighting,
                          t_min=0.05, t_max=0.95)
    losses[prediction] = float(obj.loss(_network(path, prediction), None, key, x0, x1)[0])
  for prediction, value in losses.items():
    np.testing.assert_allclose(value, losses["noise"], rtol=2e-3, err_msg=prediction)


@pytest.mark.parametrize("prediction", ["noise", "data", "v"])
def test_exact_predictor_minimises_the_loss(prediction):
  """Shifting the Bayes-optimal prediction by +-delta raises the loss by E[w] delta^2 >= 0,
  far above Monte Carlo noise because the same samples are used."""
  path = build_path("vp")
  exact = mixture_oracle(path, MIX).fields()
  obj = build_objective("score_matching", path, prediction=prediction, t_min=0.05,
                        t_max=0.95)

  def apply(shift, x, t, c):
    score = jax.vmap(lambda xi, ti: exact.score(xi[None], ti)[0])(x, t)
    return F.convert(score, x, t, path.gaussian, "score", prediction) + shift

  x0, x1 = _batch(path, 2048)
  key = jax.random.PRNGKey(2)
  loss = jax.jit(lambda shift: obj.loss(apply, shift, key, x0, x1)[0])
  base = float(loss(0.0))
  for shift in (-0.2, 0.2):
    raised = float(loss(shift))
    assert raised > base + 0.5 * shift ** 2, (raised, base)


def test_importance_sampling_draws_log_snr_uniformly_and_weights_constant():
  path = build_path("vp")
  view = path.gaussian
  t = log_snr_uniform_times(view, jax.random.PRNGKey(3), 20000)
  lam = np.asarray(view.log_snr(t))
  lo, hi = float(view.log_snr(0.0)), float(view.log_snr(1.0))
  # Uniform on [lo, hi]: mean and variance with 5-standard-error tolerances.
  n, width = lam.size, hi - lo
  assert abs(lam.mean() - (lo + hi) / 2) < 5 * width / np.sqrt(12 * n)
  assert abs(lam.var() - width ** 2 / 12) < 5 * width ** 2 * np.sqrt(1 / (180 * n)) * 2
  # Likelihood weighting with importance sampling is an unbiased estimate of the same loss.
  x0, x1 = _batch(path, 4096)
  net = _network(path, "noise")
  plain = build_objective("score_matching", path, weighting="likelihood")
  importance = build_objective("score_matching", path, weighting="likelihood",
                               importance_sampling=True)
  estimates = {}
  for name, obj in (("plain", plain), ("importance", importance)):
    loss = jax.jit(jax.vmap(lambda k, obj=obj: obj.loss(net, None, k, x0, x1)[0]))
    estimates[name] = np.asarray(loss(jax.random.split(jax.random.PRNGKey(9), 8)))
  diff = np.mean(estimates["plain"]) - np.mean(estimates["importance"])
  se = np.sqrt(np.var(estimates["plain"]) / 8 + np.var(estimates["importance"]) / 8)
  assert abs(diff) < 5 * se + 0.02 * abs(np.mean(estimates["importance"]))
  # Importance sampling reduces the variance of the estimate.
  assert np.std(estimates["importance"]) < np.std(estimates["plain"])


def test_edm_objective_loss_and_fields():
  path = build_path("edm")
  obj = build_objective("edm", path)
  x0, x1 = _batch(path)
  zero_net = lambda p, x, t, c: jnp.zeros_like(x)
  loss, _ = obj.loss(zero_net, None, jax.random.PRNGKey(4), x0, x1)
  # With F = 0, D = c_skip x_t: the weighted residual has expectation E[c_out^-2 |(c_skip - 1) x1 + c_skip sigma z|^2]
  # = (sigma^2 + sd^2)^-1 ... averaged; it must be finite and of order one.
  assert 0.1 < float(loss) < 10.0
  fields = obj.fields(zero_net, None)
  x = jnp.ones((2, 2))
  assert fields.velocity(x, 0.5).shape == x.shape and fields.score(x, 0.5).shape == x.shape


def test_errors_name_the_valid_choices():
  path = build_path("vp")
  with pytest.raises(UnknownComponentError, match="likelihood.*min_snr.*prediction.*snr"):
    build_objective("score_matching", path, weighting="elbo")
  with pytest.raises(UnknownComponentError, match="data.*noise.*score.*v.*velocity"):
    build_objective("score_matching", path, prediction="x0")
  with pytest.raises(ValueError, match="needs a Gaussian path"):
    build_objective("score_matching", build_path("linear"))
  with pytest.raises(UnknownComponentError, match="edm.*score_matching"):
    build_objective("denoising", path)
