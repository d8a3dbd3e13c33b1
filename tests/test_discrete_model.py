"""The token transformer: logits over real tokens only, zero start, bidirectional or causal
attention, time input on or off, bfloat16, RoPE or learned positions."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.models import build_model

_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _model(**options):
  model = build_model("token_transformer", (6,), vocab_size=12, hidden_dim=16, depth=2,
                      num_heads=2, **options)
  fresh = _jit(model.init)(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)  # Zero-initialised output and gates: perturb every weight.
  params = jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape, np.float32), fresh)
  return _jit(model.apply), fresh, params


@pytest.mark.parametrize("options", [
    dict(positions="rope", time_input=True),
    dict(positions="learned", time_input=False, dtype="bfloat16"),
])
def test_bidirectional_model(options):
  apply, fresh, params = _model(**options)
  x = jnp.asarray([[1, 12, 3, 12, 5, 6], [1, 12, 3, 12, 5, 7]], jnp.int32)  # 12 = mask
  half = jnp.array([0.5, 0.5])
  np.testing.assert_array_equal(apply(fresh, x, half), 0.0)
  out = apply(params, x, half)
  assert out.shape == (2, 6, 12) and out.dtype == jnp.float32
  # Changing the last token changes the prediction at the first position (bidirectional).
  assert float(jnp.max(jnp.abs(out[0, 0] - out[1, 0]))) > 1e-3
  moved = apply(params, x, jnp.array([0.9, 0.5]))
  changed = float(jnp.max(jnp.abs(moved[0] - out[0])))
  assert (changed > 1e-4) == options["time_input"]


def test_causal_model_sees_only_the_past():
  apply, _, params = _model(causal=True, positions="learned")
  x = jnp.asarray([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 7]], jnp.int32)
  out = apply(params, x, jnp.zeros(2))
  np.testing.assert_allclose(out[0, :5], out[1, :5], atol=1e-6)
  assert float(jnp.max(jnp.abs(out[0, 5] - out[1, 5]))) > 1e-3
