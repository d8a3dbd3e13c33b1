"""DeeDiff on the masked-diffusion token transformer, through the same `Stages` contract
as the DiT: the stages compose to the network (parameter tree unchanged), threshold 0 is
the full network bit for bit, each sample leaves at its own exit, and the token form of
the layer-wise loss against a hand computation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.acceleration import deediff
from diffjax.models import build_model
from diffjax.models.token_transformer import token_transformer_stages

V, L = 7, 6
OPTIONS = dict(vocab_size=V, hidden_dim=16, depth=3, num_heads=2, num_classes=2)
IDS = jax.random.randint(jax.random.PRNGKey(2), (5, L), 0, V + 1)   # V: the mask id
T = jnp.linspace(0.1, 0.9, 5)
COND = jnp.arange(5) % 2


def _setup(**options):
  options = dict(OPTIONS, **options)
  model = build_model("token_transformer", (L,), **options)
  # Random weights moved off adaLN-Zero's zero gates and output layer, so every block acts.
  params = jax.tree.map(lambda a: a + 0.2 * jax.random.normal(jax.random.PRNGKey(1), a.shape),
                        model.init(jax.random.PRNGKey(0)))
  return model, token_transformer_stages((L,), **options), params


@pytest.mark.parametrize("time_input, head", [(True, ("Dense_2", "Dense_3")),
                                              (False, ("Dense_0", "Dense_1"))])
def test_the_token_stages_compose_to_the_network(time_input, head):
  model, stages, params = _setup(time_input=time_input)
  # The output layer keeps the auto-names it always had: old checkpoints still load.
  assert stages.head_params == head and set(head) <= set(params)
  assert sum(k.startswith("Dense_") for k in params) == (4 if time_input else 2)
  tokens, c = stages.embed(params, IDS, T, COND)
  for name in stages.block_names:
    tokens = stages.block(params[name], tokens, c)
  np.testing.assert_array_equal(stages.head(params, IDS, tokens, c),
                                model.apply(params, IDS, T, COND))


def _exits(stages, params, bias=0.0, c_scale=0.0):
  exits = deediff.init_exits(stages, params)
  d = OPTIONS["hidden_dim"]
  kernel = exits["uncertainty"]["kernel"].at[:, d:].set(
      c_scale * jax.random.normal(jax.random.PRNGKey(4), (stages.depth - 1, d)))
  return {"head": jax.tree.map(
      lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(3), a.shape), exits["head"]),
          "uncertainty": {"kernel": kernel, "bias": exits["uncertainty"]["bias"] + bias}}


def test_threshold_zero_is_the_full_token_network_bit_for_bit():
  model, stages, params = _setup()
  early = jax.jit(lambda p, e: deediff.early_exit_apply(stages, p, e, IDS, T, COND,
                                                        threshold=0.0))
  out, layers, loop = early(params, _exits(stages, params))
  full = jax.jit(model.apply)(params, IDS, T, COND)
  assert out.shape == (5, L, V) and float(jnp.std(full)) > 0.1
  np.testing.assert_array_equal(out, full)
  assert np.all(np.asarray(layers) == stages.depth) and int(loop) == stages.depth


def test_each_token_sequence_leaves_at_its_own_exit():
  _, stages, params = _setup()
  exits = _exits(stages, params, 0.0, 3.0)
  outputs, u = deediff.exit_outputs(stages, params, exits, IDS, T, COND)
  threshold = float(np.median(np.asarray(u[0])))
  out, layers, loop = jax.jit(lambda p, e: deediff.early_exit_apply(
      stages, p, e, IDS, T, COND, threshold=threshold))(params, exits)
  layers = np.asarray(layers)
  assert 1 in layers and len(set(layers)) > 1
  for b, layer in enumerate(layers):
    assert layer == int(np.argmax(np.append(np.asarray(u[:, b]) < threshold, True))) + 1
    np.testing.assert_allclose(out[b], outputs[layer - 1, b], atol=1e-5)
  assert int(loop) == layers.max()


def test_the_token_layerwise_loss_against_a_hand_computation():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 2, 4, V)).astype(np.float32)   # 3 exits, B = 2, N = 4
  target = rng.integers(0, V, size=(2, 4))
  masked = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], np.float32)
  u = np.array([[0.3, 0.6], [0.2, 0.9]], np.float32)
  loss, aux = deediff.deediff_loss(jnp.asarray(logits), jnp.asarray(u), jnp.asarray(target),
                                   deediff.token_errors(jnp.asarray(masked)))
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  ce = np.array([[-sum(masked[b, n] * log_p[i, b, n, target[b, n]] for n in range(4))
                  / masked[b].sum() for b in range(2)] for i in range(3)])
  simple = ce[2].mean()
  l_u = np.mean(((u - np.tanh(ce[:2])) ** 2).sum(0))
  l_ual = np.mean(((1 - u) * ce[:2]).sum(0))
  np.testing.assert_allclose(float(aux["loss_simple"]), simple, rtol=1e-5)
  np.testing.assert_allclose(float(aux["loss_uncertainty"]), l_u, rtol=1e-5)
  np.testing.assert_allclose(float(aux["loss_layerwise"]), l_ual, rtol=1e-5)
  np.testing.assert_allclose(float(loss), simple + l_u + l_ual, rtol=1e-5)
