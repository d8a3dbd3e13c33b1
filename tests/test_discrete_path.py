"""The masking process on the three contracts: it satisfies the path protocol, is built by
name from `PATHS`, passes through `complete` untouched, and its objectives declare what
their fields give (any-order `logits`, or left-to-right `next_token_logits` only), which
the samplers' `needs` check."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.core import Fields, PathProtocol
from diffjax.data.text import random_enumerable_language
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.objectives import build_objective
from diffjax.paths import PATHS, build_path, masking_path
from diffjax.solvers import discrete

LANGUAGE = random_enumerable_language(3, 4, seed=0)
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def test_the_masked_path_is_registered_and_satisfies_the_protocol():
  path = build_path("masked", schedule="cosine", vocab_size=5)
  assert PATHS.get("masked") is masking_path
  assert (path.name, path.vocab_size, path.mask_id) == ("cosine", 5, 5)
  np.testing.assert_allclose(path.alpha(0.5), 1 - np.cos(np.pi / 4), rtol=1e-6)
  assert isinstance(path, PathProtocol) and isinstance(build_path("vp"), PathProtocol)
  assert path.one_sided and path.gaussian is None
  x0 = path.source_sample(jax.random.PRNGKey(0), (2, 3))
  assert x0.dtype == jnp.int32 and np.all(np.asarray(x0) == 5)
  np.testing.assert_array_equal(path.source_log_prob(jnp.asarray([[5, 5, 5], [5, 0, 5]])),
                                [0.0, -np.inf])
  with pytest.raises(ConfigError, match="needs vocab_size"):
    build_path("masked")


def test_token_fields_pass_through_complete_and_objectives_need_the_masked_path():
  fields = Fields.of(logits=lambda x, t: jnp.zeros(x.shape + (3,)))
  assert complete(fields, masking_path(vocab_size=3)) is fields
  for name in ("masked_diffusion", "autoregressive"):
    with pytest.raises(ConfigError, match="models tokens on the masked path"):
      build_objective(name, build_path("vp"))


def test_autoregressive_fields_feed_only_the_left_to_right_sampler():
  """The autoregressive sampler on exact next-token conditionals (the masked oracle at a
  masked suffix) reproduces the language; a sampler revealing any position refuses them;
  a masked objective's fields give both predictions."""
  path = masking_path("linear", vocab_size=3)
  oracle = LANGUAGE.denoiser_logits(path)
  next_token = Fields.of(next_token_logits=oracle)
  n = 20000
  x = _jit(lambda key: discrete.sample_tokens("autoregressive", next_token, path,
                                              path.source((n, 4)), key).x)(
                                                  jax.random.PRNGKey(0))
  counts = np.bincount(LANGUAGE.index(np.asarray(x)), minlength=81) / n
  p = np.exp(LANGUAGE.log_probs)
  assert 0.5 * np.abs(counts - p).sum() < np.sum(np.sqrt(p * (1 - p) / n))
  with pytest.raises(ValueError, match=r"needs the prediction\(s\) \['logits'\]"):
    discrete.sample_tokens("first_hitting", next_token, path, path.source((2, 4)),
                           jax.random.PRNGKey(0))
  masked = build_objective("masked_diffusion", path).fields(lambda p, x, t, c: oracle(x, t),
                                                            None)
  ar = build_objective("autoregressive", path).fields(lambda p, x, t, c: oracle(x, t), None)
  assert masked.names == ("logits", "next_token_logits") and ar.names == (
      "next_token_logits",)
