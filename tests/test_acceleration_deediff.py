"""DeeDiff on a small DiT: threshold 0 is the full network bit for bit, each sample's
output is its own exit's, the layer-wise loss against a hand computation, bad thresholds;
the DiT's stages compose to the network."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.acceleration import deediff
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.models.transformer import dit_stages

OPTIONS = dict(patch_size=2, hidden_dim=16, depth=3, num_heads=2, num_classes=3)
SHAPE = (8, 8, 1)
MODEL = build_model("dit", SHAPE, **OPTIONS)
STAGES = dit_stages(SHAPE, **OPTIONS)
# Random weights moved off adaLN-Zero's zero gates and output layer, so every block acts.
PARAMS = jax.tree.map(
    lambda a: a + 0.2 * jax.random.normal(jax.random.PRNGKey(1), a.shape),
    MODEL.init(jax.random.PRNGKey(0)))
X = jax.random.normal(jax.random.PRNGKey(2), (6, *SHAPE))
T = jnp.linspace(0.1, 0.9, 6)
COND = jnp.arange(6) % 3


def _exits(bias=0.0, c_scale=0.0):
  exits = deediff.init_exits(STAGES, PARAMS)
  exits["head"] = jax.tree.map(
      lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(3), a.shape), exits["head"])
  d = OPTIONS["hidden_dim"]
  kernel = exits["uncertainty"]["kernel"].at[:, d:].set(
      c_scale * jax.random.normal(jax.random.PRNGKey(4), (STAGES.depth - 1, d)))
  return {"head": exits["head"],
          "uncertainty": {"kernel": kernel, "bias": exits["uncertainty"]["bias"] + bias}}


@functools.lru_cache(maxsize=None)
def _early(threshold, bias=0.0, c_scale=0.0):
  exits = _exits(bias, c_scale)
  return jax.jit(lambda p, e: deediff.early_exit_apply(STAGES, p, e, X, T, COND,
                                                       threshold=threshold))(PARAMS, exits)


def test_the_stages_compose_to_the_network():
  tokens, c = STAGES.embed(PARAMS, X, T, COND)
  for i in range(STAGES.depth):
    tokens = STAGES.block(PARAMS[f"DiTBlock_{i}"], tokens, c)
  np.testing.assert_array_equal(STAGES.head(PARAMS, X, tokens, c),
                                MODEL.apply(PARAMS, X, T, COND))


def test_threshold_zero_is_the_full_network_bit_for_bit():
  full = jax.jit(MODEL.apply)(PARAMS, X, T, COND)
  out, layers, loop = _early(0.0)
  np.testing.assert_array_equal(out, full)
  assert np.all(np.asarray(layers) == STAGES.depth) and int(loop) == STAGES.depth
  assert float(jnp.std(full)) > 0.1


def test_each_sample_leaves_at_its_own_exit_and_the_loop_stops_when_all_have():
  outputs, u = deediff.exit_outputs(STAGES, PARAMS, _exits(0.0, 3.0), X, T, COND)
  threshold = float(np.median(np.asarray(u[0])))
  out, layers, loop = _early(threshold, 0.0, 3.0)
  layers = np.asarray(layers)
  assert {1}.issubset(set(layers)) and len(set(layers)) > 1   # a per-sample decision
  for b, layer in enumerate(layers):
    first = int(np.argmax(np.append(np.asarray(u[:, b]) < threshold, True))) + 1
    assert layer == first
    np.testing.assert_allclose(out[b], outputs[layer - 1, b], atol=1e-5)
  assert int(loop) == layers.max()
  # All samples confident at the first exit: one block runs.
  out, layers, loop = _early(1.0, -30.0)
  assert int(loop) == 1 and np.all(np.asarray(layers) == 1)
  np.testing.assert_allclose(out, outputs[0], atol=1e-5)


def test_the_layerwise_loss_against_a_hand_computation():
  rng = np.random.default_rng(0)
  outputs = rng.normal(size=(3, 2, 2, 2, 1)).astype(np.float32)  # L = 3 exits, B = 2
  target = rng.normal(size=(2, 2, 2, 1)).astype(np.float32)
  u = np.array([[0.2, 0.7], [0.4, 0.1]], np.float32)              # (L - 1, B)
  loss, aux = deediff.deediff_loss(jnp.asarray(outputs), jnp.asarray(u),
                                   jnp.asarray(target))
  mse = np.array([[np.mean((outputs[i, b] - target[b]) ** 2) for b in range(2)]
                  for i in range(3)])
  labels = np.array([[np.tanh(np.mean(np.abs(outputs[i, b] - target[b])))
                      for b in range(2)] for i in range(2)])
  simple = mse[2].mean()
  l_u = np.mean(((u - labels) ** 2).sum(0))
  l_ual = np.mean(((1 - u) * mse[:2]).sum(0))
  np.testing.assert_allclose(float(aux["loss_simple"]), simple, rtol=1e-6)
  np.testing.assert_allclose(float(aux["loss_uncertainty"]), l_u, rtol=1e-5)
  np.testing.assert_allclose(float(aux["loss_layerwise"]), l_ual, rtol=1e-5)
  np.testing.assert_allclose(float(loss), simple + l_u + l_ual, rtol=1e-5)
  # u is a weight in L_UAL, not trained through it: its gradient comes from L_u alone.
  grad = jax.grad(lambda u_: deediff.deediff_loss(jnp.asarray(outputs), u_,
                                                  jnp.asarray(target))[0])(jnp.asarray(u))
  np.testing.assert_allclose(grad, 2 * (u - labels) / 2, rtol=1e-5)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan"), "high"])
def test_an_exit_threshold_out_of_range_is_refused(threshold):
  with pytest.raises(ConfigError, match="threshold"):
    deediff.check_threshold(threshold)
