"""The U-Net: shapes, dtypes, conditioning, dropout, bottleneck, remat equivalence, layers."""
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax import backend
from diffjax.models import build_model
from diffjax.models import unet

# XLA's CPU backend compiles these graphs several times faster without its LLVM
# optimisation passes; the tests check values, not speed.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})

TINY = dict(channels=8, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(),
            num_classes=10, dropout=0.1, num_heads=2)
# One resolution level: the cheapest U-Net to differentiate.
SMALL = dict(channels=8, channel_mults=(1,), num_res_blocks=1, attention_resolutions=(),
             num_classes=10, dropout=0.2, time_embedding="fourier")


def _perturbed_params(model, seed=0):
  """Zero-initialised output layers make a fresh U-Net output 0; perturb every weight."""
  params = _jit(model.init)(jax.random.PRNGKey(seed))
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape, np.float32), params)


@pytest.fixture(scope="module")
def tiny():
  model = build_model("unet", (8, 8, 1), **TINY)
  params = _perturbed_params(model)
  x = jnp.asarray(np.random.default_rng(1).standard_normal((1, 8, 8, 1)), jnp.float32)
  # One call, four variants of the same image: (t, class) = (.3, 0), (.7, 0), (.3, 5), (.3, 0).
  xs = jnp.concatenate([x] * 4)
  t, cond = jnp.array([0.3, 0.7, 0.3, 0.3]), jnp.array([0, 0, 5, 0])
  out, bottleneck = _jit(functools.partial(model.apply, return_bottleneck=True))(
      params, xs, t, cond)
  return model, params, (xs, t, cond), out, bottleneck


def test_parameters_are_float32_and_attention_sits_where_asked():
  def blocks(**options):
    model = build_model("unet", (8, 8, 1), **{**TINY, **options})
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    return sum(name.startswith("AttentionBlock") for name in params)
  assert blocks() == 1  # The middle block only.
  # At height 4: one block on the way down, two on the way up, plus the middle one.
  assert blocks(attention_resolutions=(4,)) == 4
  assert blocks(attention_resolutions=(8, 4)) == 7


def test_shapes_dtypes_and_bottleneck(tiny):
  _, _, (xs, _, _), out, bottleneck = tiny
  assert out.shape == xs.shape and out.dtype == jnp.float32
  # Two levels: the middle block runs at 8 / 2 = 4 pixels with 8 * 2 channels.
  assert bottleneck.shape == (4, 4, 4, 16) and bottleneck.dtype == jnp.float32
  assert np.all(np.isfinite(out)) and float(jnp.std(out)) > 1e-3


def test_time_and_class_conditioning_change_outputs(tiny):
  _, _, _, out, bottleneck = tiny
  diff = lambda a, b: float(jnp.max(jnp.abs(a - b)))
  assert diff(out[0], out[3]) < 1e-5  # Same input, same output.
  assert diff(out[0], out[1]) > 1e-3  # Another time.
  assert diff(out[0], out[2]) > 1e-3  # Another class.
  assert diff(bottleneck[0], bottleneck[2]) > 1e-3


def test_bfloat16_compute_is_close_to_float32(tiny):
  _, params, (xs, t, cond), out32, _ = tiny
  model16 = build_model("unet", (8, 8, 1), **TINY, dtype="bfloat16")
  out16 = _jit(model16.apply)(params, xs, t, cond)
  assert out16.dtype == jnp.float32
  assert not np.array_equal(out16, out32)  # bfloat16 really was used...
  err = float(jnp.linalg.norm(out16 - out32) / jnp.linalg.norm(out32))
  assert err < 0.05, err  # ...and stays close to the float32 computation.


def test_dropout_runs_only_with_a_key_and_none_is_the_null_class():
  model = build_model("unet", (8, 8, 1), **SMALL)
  params = _perturbed_params(model)
  x = jnp.ones((2, 8, 8, 1))
  apply = _jit(model.apply)
  plain = apply(params, x, 0.3, jnp.array([10, 10]))
  np.testing.assert_allclose(apply(params, x, 0.3, None), plain, atol=1e-6)
  with_key = _jit(lambda p, k: model.apply(p, x, 0.3, jnp.array([10, 10]), dropout_key=k))
  a, b = with_key(params, jax.random.PRNGKey(0)), with_key(params, jax.random.PRNGKey(1))
  assert float(jnp.max(jnp.abs(a - b))) > 1e-4
  assert float(jnp.max(jnp.abs(a - plain))) > 1e-4
  np.testing.assert_array_equal(a, with_key(params, jax.random.PRNGKey(0)))


def test_remat_gives_identical_outputs_and_gradients():
  plain = build_model("unet", (8, 8, 1), **SMALL)
  remat = build_model("unet", (8, 8, 1), **SMALL, remat=True)
  params = _perturbed_params(plain)
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 8, 8, 1)), jnp.float32)

  def loss(model, p):
    out = model.apply(p, x, jnp.array([0.2, 0.8]), jnp.array([3, 4]),
                      dropout_key=jax.random.PRNGKey(5))
    return jnp.mean(out ** 2)

  @_jit
  def both(params):
    return (jax.value_and_grad(functools.partial(loss, plain))(params),
            jax.value_and_grad(functools.partial(loss, remat))(params))

  (v1, g1), (v2, g2) = both(params)
  assert float(v1) > 0
  np.testing.assert_allclose(v1, v2, rtol=1e-6)
  assert jax.tree.structure(g1) == jax.tree.structure(g2)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_invalid_shapes_fail_clearly():
  with pytest.raises(ValueError, match="not divisible by 4"):
    build_model("unet", (10, 10, 1), channel_mults=(1, 2, 2))
  with pytest.raises(ValueError, match=r"\(H, W, C\)"):
    build_model("unet", (64,))


def test_group_norm_and_attention_match_their_textbook_forms():
  """The CPU-friendly GroupNorm and attention compute flax's GroupNorm and softmax(qk^T)v."""
  rng = np.random.default_rng(3)
  x = jnp.asarray(3 * rng.standard_normal((2, 4, 4, 12)) + 1, jnp.float32)
  ours, theirs = unet.GroupNorm(3), nn.GroupNorm(3)
  params = _jit(ours.init)(jax.random.PRNGKey(0), x)
  assert jax.tree.structure(params) == jax.tree.structure(theirs.init(jax.random.PRNGKey(0), x))
  params = jax.tree.map(lambda p: p + rng.standard_normal(p.shape).astype(np.float32), params)
  np.testing.assert_allclose(_jit(ours.apply)(params, x), theirs.apply(params, x), atol=1e-5)
  grad = lambda module: _jit(jax.grad(lambda p, x: jnp.sum(jnp.sin(module.apply(p, x))),
                                      argnums=(0, 1)))(params, x)
  for a, b in zip(jax.tree.leaves(grad(ours)), jax.tree.leaves(grad(theirs))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

  q, k, v = (jnp.asarray(rng.standard_normal((2, 5, 2, 3)), jnp.float32) for _ in range(3))
  weights = jax.nn.softmax(jnp.einsum("bnhd,bmhd->bhnm", q, k) / np.sqrt(3), axis=-1)
  np.testing.assert_allclose(unet.multi_head_attention(q, k, v),
                             jnp.einsum("bhnm,bmhd->bnhd", weights, v), atol=1e-6)


def test_cpu_flags_only_for_measured_jaxlib_and_before_jax_starts(monkeypatch):
  flags = backend.CPU_XLA_FLAGS
  assert backend.cpu_xla_flags("0.10.2", "") == flags
  assert backend.cpu_xla_flags("0.9.0", "") == ()  # Unknown flags would abort XLA.
  own = "--xla_cpu_experimental_ynn_fusion_type="  # The user's own choice wins.
  assert backend.cpu_xla_flags("0.10.2", own) == ()
  jnp.zeros(1).block_until_ready()  # JAX's CPU backend now exists: too late to add flags.
  monkeypatch.setenv("XLA_FLAGS", "")
  if backend.cpu_xla_flags():
    with pytest.warns(UserWarning, match="after JAX created its backends"):
      assert backend.configure_cpu() == ()
  assert os.environ["XLA_FLAGS"] == ""
