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


def test_the_time_free_network_learns_its_condition_and_modulation():
  """A defect that kept masked diffusion at the unigram level: the time-free network's
  constant condition vector c started at zero, so SiLU(c) = 0 and neither c nor any adaLN
  modulation kernel ever received a gradient (a saddle no optimiser leaves); the gates
  then grew only through their biases, by about the Adam step size per step, and the
  blocks stayed nearly switched off for hundreds of steps. Three gradient steps on any loss
  now move c and every modulation kernel."""
  model = build_model("token_transformer", (6,), vocab_size=12, hidden_dim=16, depth=2,
                      num_heads=2, time_input=False)
  params = _jit(model.init)(jax.random.PRNGKey(0))
  x = jnp.asarray(np.random.default_rng(0).integers(0, 13, (4, 6)), jnp.int32)
  target = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 12))
  grad = _jit(jax.grad(lambda p: jnp.mean((model.apply(p, x, 0.0) - target) ** 2)))
  moved = params
  for _ in range(3):
    moved = jax.tree.map(lambda p, g: p - 0.1 * g, moved, grad(moved))
  assert float(jnp.max(jnp.abs(moved["condition"] - params["condition"]))) > 0
  for name in ("DiTBlock_0", "DiTBlock_1"):  # Dense_0: the block's adaLN modulation.
    assert float(jnp.max(jnp.abs(moved[name]["Dense_0"]["kernel"]))) > 0, name
  assert float(jnp.max(jnp.abs(moved["Dense_0"]["kernel"]))) > 0  # The output's modulation.


def test_token_embeddings_do_not_drown_positions_or_blocks():
  """A second defect behind the unigram plateau: token embeddings started at standard
  deviation 1, fifty times the learned positions (0.02), so the positional signal was 2%
  of each input and the adaLN-Zero blocks, whose outputs start at zero, needed gates of
  order one before they could change the residual stream. Token and position embeddings
  now start at the same scale (GPT-2's 0.02)."""
  model = build_model("token_transformer", (64,), vocab_size=96, hidden_dim=128, depth=1,
                      num_heads=4, positions="learned")
  params = _jit(model.init)(jax.random.PRNGKey(0))
  token_std = float(jnp.std(params["Embed_0"]["embedding"]))
  position_std = float(jnp.std(params["position_embedding"]))
  assert 0.5 < token_std / position_std < 2.0, (token_std, position_std)
