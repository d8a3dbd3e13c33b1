"""Token samplers fed the exact denoiser of an enumerable language (V = 3, L = 4, 81
sequences) reproduce its distribution; first-hitting makes exactly one call per masked
token; caching saves calls as predicted; guidance and nucleus filtering act as stated."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields
from diffjax.data.text import random_enumerable_language
from diffjax.errors import ConfigError
from diffjax.paths.masked import masking_path
from diffjax.registry import UnknownComponentError
from diffjax.solvers import discrete

LANGUAGE = random_enumerable_language(3, 4, seed=0)
P = np.exp(LANGUAGE.log_probs)
# The tests check values, not speed: skip XLA's slow CPU optimisation passes.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _oracle(path):
  return Fields.of(logits=LANGUAGE.denoiser_logits(path))


def _tv(samples, p=P):
  q = np.bincount(LANGUAGE.index(samples), minlength=len(p)) / len(samples)
  return 0.5 * np.abs(q - p).sum()


def _tv_threshold(n, p=P):
  # E[TV of n exact draws] <= 1/2 sum sqrt(p (1 - p) / n); twice that bound is the test.
  return float(np.sum(np.sqrt(p * (1 - p) / n)))


def _run(name, path, n, seed=1, x0=None, **options):
  x0 = path.source((n, 4)) if x0 is None else x0
  # Long ancestral loops are run-time bound: those keep XLA's optimisations.
  jit = jax.jit if options.get("num_steps", 0) > 50 else _jit
  return jit(lambda key: discrete.sample_tokens(name, _oracle(path), path, x0, key,
                                                    **options))(jax.random.PRNGKey(seed))


@pytest.mark.parametrize("name, options, n, bias", [
    ("first_hitting", {}, 20000, 0.0),
    ("semi_autoregressive", {"block_size": 2}, 20000, 0.0),
    # N ancestral steps unmask two of the L tokens in one step (drawn independently) with
    # probability <= C(L, 2) / N = 0.024: the sampler's own TV bias is below that.
    ("masked_ancestral", {"num_steps": 250}, 3000, 0.024),
])
def test_samplers_reproduce_the_enumerated_distribution(name, options, n, bias):
  result = _run(name, masking_path("linear", vocab_size=3), n, **options)
  assert not np.any(np.asarray(result.x) == 3)
  threshold = _tv_threshold(n) + bias
  assert _tv(result.x) < threshold, (_tv(result.x), threshold)


def test_state_dependent_ancestral_sampling_and_the_test_has_power():
  path = masking_path("polynomial", vocab_size=3, exponent=(0.5, 1.0, 3.0))
  result = _run("masked_ancestral", path, 2000, num_steps=250)
  assert _tv(result.x) < _tv_threshold(2000) + 0.024
  # One ancestral step draws all four tokens independently: far from the joint law.
  one_step = _run("masked_ancestral", masking_path("linear", vocab_size=3), 2000, num_steps=1)
  assert _tv(one_step.x) > 0.3


def test_infilling_fixes_the_prompt_and_samples_the_conditional():
  path = masking_path("linear", vocab_size=3)
  n = 20000
  x0 = jnp.asarray(np.tile([[2, 3, 3, 3]], (n, 1)), jnp.int32)  # Token 0 given, 3 free.
  result = _run("first_hitting", path, n, x0=x0)
  assert np.all(np.asarray(result.x)[:, 0] == 2)
  assert int(result.nfe) == 3  # One call per free position.
  conditional = np.where(LANGUAGE.sequences[:, 0] == 2, P, 0.0)
  conditional /= conditional.sum()
  assert _tv(result.x, conditional) < _tv_threshold(n, conditional)


def test_first_hitting_makes_exactly_one_call_per_token():
  length = 32
  path = masking_path("linear", vocab_size=5)
  fields = Fields.of(logits=lambda x, t: jnp.zeros(x.shape + (5,)))
  result = _jit(lambda key: discrete.sample_tokens(
      "first_hitting", fields, path, path.source((8, length)), key))(jax.random.PRNGKey(0))
  assert int(result.nfe) == length and not np.any(np.asarray(result.x) == 5)


def test_caching_saves_calls_as_predicted_and_changes_no_sample():
  path = masking_path("linear", vocab_size=3)
  steps, n = 8, 2000
  fields = _oracle(path)  # Time-free: caching is exact.

  def one(key, cache):
    result = discrete.sample_tokens("masked_ancestral", fields, path, path.source((1, 4)), key,
                                    num_steps=steps, cache=cache)
    return result.x[0], result.nfe

  keys = jax.random.split(jax.random.PRNGKey(0), n)
  x_cached, calls = _jit(jax.vmap(lambda k: one(k, True)))(keys)
  x_plain, plain_calls = _jit(jax.vmap(lambda k: one(k, False)))(keys)
  np.testing.assert_array_equal(x_cached, x_plain)
  assert np.all(np.asarray(plain_calls) == steps)
  # A call is needed at the first step and after every step in which a token appeared;
  # the L reveal times are independent and uniform over the N steps.
  predicted = 1 + (steps - 1) * (1 - (1 - 1 / steps) ** 4)
  calls = np.asarray(calls, np.float64)
  assert abs(calls.mean() - predicted) < 4 * calls.std() / np.sqrt(n), (calls.mean(), predicted)
  assert calls.max() <= 4 + 1


def test_top_p_and_temperature():
  logits = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))
  kept = discrete.token_log_probs(logits, top_p=0.7)
  np.testing.assert_allclose(np.exp(kept), [0.5 / 0.8, 0.3 / 0.8, 0, 0], rtol=1e-6)
  cold = np.exp(discrete.token_log_probs(logits, temperature=0.5))
  np.testing.assert_allclose(cold, np.array([0.25, 0.09, 0.0225, 0.0025]) / 0.365, rtol=1e-5)


def test_unsupervised_cfg_formula_and_zero_weight():
  path = masking_path("linear", vocab_size=3)
  x = jnp.asarray([[0, 3, 3, 1]], jnp.int32)
  prompt = jnp.asarray([[True, False, False, True]])
  fields = _oracle(path)
  lc = jax.nn.log_softmax(fields.logits(x, 0.5))
  lu = jax.nn.log_softmax(fields.logits(jnp.full_like(x, 3), 0.5))
  for w in (0.0, 2.0):
    guided = discrete.unsupervised_cfg(fields, prompt, 3, w).logits(x, 0.5)
    np.testing.assert_allclose(guided, lu + (w + 1) * (lc - lu), atol=1e-5)


def test_bad_sampler_input_is_refused():
  path = masking_path("linear", vocab_size=3)
  with pytest.raises(UnknownComponentError, match="Unknown sampler 'greedy'"):
    discrete.sample_tokens("greedy", _oracle(path), path, path.source((1, 4)), None)
  with pytest.raises(ConfigError, match="needs num_steps"):
    discrete.sample_tokens("masked_ancestral", _oracle(path), path, path.source((1, 4)), None)
  with pytest.raises(ConfigError, match="state-independent"):
    discrete.first_hitting(masking_path("polynomial", vocab_size=3, exponent=(1, 2, 3)))
  with pytest.raises(ConfigError, match="top_p must be in"):
    discrete.ancestral(path, top_p=0.0)
  with pytest.raises(ConfigError, match="Unknown categorical sampling method 'float64'"):
    discrete.ancestral(path, method="float64")
