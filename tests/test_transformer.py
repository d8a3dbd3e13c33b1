"""The DiT: shapes, zero (adaLN-Zero) start, conditioning, per-example independence."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.models import build_model
from diffjax.models.transformer import sincos_position_embedding

# The tests check values, not speed: skip XLA's slow CPU optimisation passes.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
TINY = dict(patch_size=2, hidden_dim=16, depth=2, num_heads=2, num_classes=10)


@pytest.fixture(scope="module")
def tiny():
  model = build_model("dit", (8, 8, 1), **TINY)
  fresh = _jit(model.init)(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)  # adaLN-Zero starts at 0 output: perturb every weight.
  params = jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape, np.float32), fresh)
  return model, fresh, params, _jit(model.apply)


def test_adaln_zero_start_and_shapes(tiny):
  _, fresh, params, apply = tiny
  x = jnp.asarray(np.random.default_rng(1).standard_normal((1, 8, 8, 1)), jnp.float32)
  x = jnp.concatenate([x] * 4)  # One image under (t, class) = (.3, 0), (.7, 0), (.3, 5), (.3, 0).
  t, cond = jnp.array([0.3, 0.7, 0.3, 0.3]), jnp.array([0, 0, 5, 0])
  np.testing.assert_array_equal(apply(fresh, x, t, cond), 0.0)
  out = apply(params, x, t, cond)
  assert out.shape == x.shape and out.dtype == jnp.float32
  diff = lambda i, j: float(jnp.max(jnp.abs(out[i] - out[j])))
  assert diff(0, 3) < 1e-5 and diff(0, 1) > 1e-3 and diff(0, 2) > 1e-3


def test_examples_are_independent_and_patches_interact(tiny):
  _, _, params, apply = tiny
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((4, 8, 8, 1)), jnp.float32)
  cond = jnp.array([1, 2, 3, 4])
  y = x.at[1, 0, 0, 0].add(1.0)  # Change one pixel of example 1 (its top-left patch).
  a, b = apply(params, x, 0.5, cond), apply(params, y, 0.5, cond)
  change = jnp.max(jnp.abs(a - b), axis=(1, 2, 3))
  assert float(change[1]) > 1e-4 and float(jnp.max(change.at[1].set(0))) == 0.0
  # Attention carries the change to the far (bottom-right) patch of the same image.
  assert float(jnp.max(jnp.abs(a[1, 6:, 6:] - b[1, 6:, 6:]))) > 1e-5


def test_position_embedding_and_errors():
  emb = sincos_position_embedding(2, 3, 8)
  assert emb.shape == (6, 8) and len({row.tobytes() for row in emb}) == 6
  np.testing.assert_array_equal(emb[0, :4], emb[2, :4])  # Same row, same row features.
  with pytest.raises(ValueError, match="patch_size"):
    build_model("dit", (9, 9, 1), patch_size=2)
  with pytest.raises(ValueError, match="num_heads"):
    build_model("dit", (8, 8, 1), hidden_dim=20, num_heads=3)
