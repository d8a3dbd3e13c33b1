"""Masked-diffusion objectives against an enumerable language (V = 3, L = 4) with the exact
denoiser: the NELBO equals the true negative log-likelihood of every sequence, and the
t-DCE, lambda-DCE and k-DCE estimators agree with it within Monte Carlo error."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.data.text import random_enumerable_language
from diffjax.objectives.masked import discrete_time_nelbo, masked_diffusion, sequence_losses
from diffjax.paths.masked import masking_path

LANGUAGE = random_enumerable_language(3, 4, seed=0)
# The tests check values, not speed: skip XLA's slow CPU optimisation passes.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
PICKED = np.array([0, 17, 40, 80])  # Sequence indices with NLLs from 5.7 to 8.7 nats.


@pytest.mark.parametrize("schedule, options", [
    ("linear", {}), ("cosine", {}), ("polynomial", {"exponent": 2.5}), ("geometric", {})])
def test_nelbo_weights_integrate_to_the_any_order_factors(schedule, options):
  # With k of L tokens masked, int_0^1 w(t) alpha^(L-k) (1-alpha)^k dt = (k-1)! (L-k)! / L!,
  # so the NELBO of the exact denoiser is the any-order chain rule: exactly -log p(x).
  path = masking_path(schedule, vocab_size=3, **options)
  nodes, weights = np.polynomial.legendre.leggauss(400)
  t = jnp.asarray(0.5 * (nodes + 1), jnp.float32)
  alpha, rate = np.asarray(path.alpha(t), np.float64), np.asarray(path.rate(t), np.float64)
  np.testing.assert_allclose(path.alpha(jnp.array([0.0, 1.0])), [0, 1], atol=1e-6)
  length = 4
  for k in range(1, length + 1):
    integral = 0.5 * np.sum(weights * rate * alpha ** (length - k) * (1 - alpha) ** k)
    exact = math.factorial(k - 1) * math.factorial(length - k) / math.factorial(length)
    assert integral == pytest.approx(exact, rel=2e-3), (schedule, k)


def _estimate(path, estimator, samples=32768, seed=0):
  """Mean and standard error of the per-sequence estimator for each picked sequence."""
  oracle = LANGUAGE.denoiser_logits(path)
  apply_fn = lambda params, xt, t, cond: oracle(xt, t)
  x = jnp.asarray(np.repeat(LANGUAGE.sequences[PICKED], samples, 0))

  @_jit
  def losses(key):
    # Sequences repeat in blocks: each block's times are a stratified set.
    return jax.vmap(lambda k, xs: sequence_losses(path, estimator, apply_fn, None, k, xs))(
        jax.random.split(key, len(PICKED)), x.reshape(len(PICKED), samples, -1))

  values = np.asarray(losses(jax.random.PRNGKey(seed)), np.float64)
  return values.mean(1), values.std(1) / np.sqrt(samples)


@pytest.mark.parametrize("schedule, options, estimator, samples", [
    ("linear", {}, "nelbo", 32768),
    ("cosine", {}, "nelbo", 32768),
    ("linear", {}, "lambda_dce", 8192),
    ("linear", {}, "k_dce", 4096),
    ("polynomial", {"exponent": (0.5, 1.0, 3.0)}, "nelbo", 16384),  # MD4's GenMD4 form.
])
def test_estimators_equal_the_true_nll(schedule, options, estimator, samples):
  path = masking_path(schedule, vocab_size=3, **options)
  mean, error = _estimate(path, estimator, samples)
  nll = -LANGUAGE.log_probs[PICKED]
  # 4 standard errors (the low-discrepancy times make the naive error conservative); the
  # error itself is small enough (< 3% of the NLL) for the test to mean something. The
  # t-DCE's 1 / (1 - t) weight gives it the largest error (about 2% here, k-DCE 0.3%).
  assert np.all(error < 0.03 * nll), error
  np.testing.assert_array_less(np.abs(mean - nll), 4 * error + 1e-3)


def test_the_loss_is_nats_per_token_and_never_below_the_nll_in_expectation():
  path = masking_path("linear", vocab_size=3)
  objective = masked_diffusion(path, estimator="k_dce")
  uniform = lambda params, xt, t, cond: jnp.zeros(xt.shape + (3,))
  x = jnp.asarray(LANGUAGE.sample(np.random.default_rng(0), 4096))
  loss, aux = _jit(lambda k: objective.loss(uniform, None, k, None, x))(
      jax.random.PRNGKey(0))
  # A uniform model: every token costs ln 3 whatever is masked (k-DCE is then exact).
  assert float(loss) == pytest.approx(math.log(3), rel=1e-5)
  assert float(aux["nelbo_per_token"]) == float(loss)
  entropy_per_token = -np.sum(np.exp(LANGUAGE.log_probs) * LANGUAGE.log_probs) / 4
  assert float(loss) > entropy_per_token


def test_the_discrete_time_nelbo_falls_from_independent_tokens_to_the_entropy():
  """With the exact denoiser: one step reveals every token from its all-mask marginal (the
  bound of a sequence is -sum_l log p_l(x_l), deterministic, and its mean over the data the
  sum of the marginal entropies); more steps tighten the mean bound monotonically towards
  the entropy of the language, which the continuous-time NELBO reaches."""
  path = masking_path("linear", vocab_size=3)
  oracle = LANGUAGE.denoiser_logits(path)
  apply = lambda params, xt, t, cond: oracle(xt, t)
  x = jnp.asarray(LANGUAGE.sequences)
  p = np.exp(LANGUAGE.log_probs)
  marginals = np.stack([np.bincount(LANGUAGE.sequences[:, l], weights=p, minlength=3)
                        for l in range(4)])  # (L, V)
  bounds = {steps: np.asarray(_jit(lambda k, s=steps: discrete_time_nelbo(
      path, apply, None, k, x, num_steps=s, num_samples=1024))(jax.random.PRNGKey(0)))
            for steps in (1, 4, 256)}
  np.testing.assert_allclose(
      bounds[1], -np.log(marginals[np.arange(4), LANGUAGE.sequences]).sum(-1), rtol=1e-5)
  mean = [float(np.sum(p * bounds[s])) for s in (1, 4, 256)]
  assert mean[0] > mean[1] > mean[2]
  assert mean[0] == pytest.approx(-np.sum(marginals * np.log(marginals)), rel=1e-5)
  assert mean[2] == pytest.approx(-np.sum(p * LANGUAGE.log_probs), rel=0.01)
