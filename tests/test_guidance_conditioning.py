"""Condition dropout for class labels and for conditioning arrays, through the models, every
objective and the shared pipeline (diffjax.conditioning, diffjax.models.base)."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from diffjax import conditioning
from diffjax.errors import ConfigError
from diffjax.models import Model, build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.paths.masked import masking_path
from diffjax.pipeline import DataSpec, build_pipeline

KEY = jax.random.PRNGKey(0)


def test_drop_condition_keeps_labels_and_marks_arrays():
  """Labels: exactly `drop_labels` (label behaviour unchanged). Arrays (B, d) -> (B, d + 1):
  rate 0 keeps every value with flag 1, rate 1 zeroes every value with flag 0, rate 0.3
  drops 30% (4,000 examples: tolerance 0.03 = 4 standard errors) and only whole examples."""
  labels = jnp.arange(4000) % 7
  np.testing.assert_array_equal(conditioning.drop_condition(KEY, labels, 0.3, 7),
                                conditioning.drop_labels(KEY, labels, 0.3, 7))
  cond = jax.random.normal(KEY, (4000, 3)) + 5.0
  kept = conditioning.drop_condition(KEY, cond, 0.0)
  np.testing.assert_array_equal(kept, jnp.concatenate([cond, jnp.ones((4000, 1))], -1))
  np.testing.assert_array_equal(conditioning.drop_condition(KEY, cond, 1.0),
                                jnp.zeros((4000, 4)))
  some = np.asarray(conditioning.drop_condition(KEY, cond, 0.3))
  dropped = some[:, -1] == 0
  assert abs(dropped.mean() - 0.3) < 0.03
  assert np.all(some[dropped] == 0) and np.all(some[~dropped, :3] == np.asarray(cond)[~dropped])
  present, null = conditioning.array_condition(cond[:2])
  np.testing.assert_array_equal(present, kept[:2])
  np.testing.assert_array_equal(null, jnp.zeros((2, 4)))
  with pytest.raises(ConfigError, match="class labels"):
    conditioning.drop_condition(KEY, labels, 0.1)


def _token_model():
  """A stand-in token model: logits = E[x] + (cond @ W)[:, None] (its condition term is
  the only thing these tests need from it; the token transformer's own embedding of
  arrays is checked below)."""
  def init(key):
    return {"embed": jax.random.normal(key, (4, 3)), "cond_embed_0": jnp.ones((3, 3))}

  def apply(params, x, t, cond=None):
    del t
    logits = params["embed"][x]
    return logits if cond is None else logits + (cond @ params["cond_embed_0"])[:, None]
  return Model(init, apply)


def _objectives():
  """(objective, model, x0, x1) for every objective, each with an array-conditioned model."""
  vector = build_model("mlp", (3,), width=16, depth=1, time_dim=8, cond_dim=2)
  x1 = jax.random.normal(KEY, (16, 3))
  x0 = jax.random.normal(jax.random.PRNGKey(2), (16, 3))
  t1 = jax.random.randint(KEY, (16, 4), 0, 3)
  masked = masking_path("linear", vocab_size=3)
  return {
      "flow_matching": (build_objective("flow_matching", build_path("rectified_flow")),
                        vector, x0, x1),
      "score_matching": (build_objective("score_matching", build_path("vp")), vector, x0,
                         x1),
      "edm": (build_objective("edm", build_path("edm")), vector, x0, x1),
      "interpolant": (build_objective("interpolant", build_path("linear")), vector, x0, x1),
      "masked_diffusion": (build_objective("masked_diffusion", masked), _token_model(),
                           None, t1),
      "autoregressive": (build_objective("autoregressive", masked), _token_model(), None,
                         t1),
  }


def test_array_conditions_reach_the_model_in_every_objective():
  """For every objective, the loss on a batch whose (16, 2) conditions were dropped at
  rate 0.5 has a nonzero gradient with respect to the condition's embedding."""
  cases = _objectives()
  cond = jax.random.normal(KEY, (16, 2))
  dropped = conditioning.drop_condition(jax.random.PRNGKey(1), cond, 0.5)

  @jax.jit
  def norms(dropped):
    out = {}
    for name, (objective, model, a, b) in cases.items():
      grads = jax.grad(lambda p: objective.loss(model.apply, p, KEY, a, b, dropped)[0])(
          model.init(KEY))
      out[name] = sum(jnp.sum(g ** 2) for path, g in jax.tree_util.tree_leaves_with_path(
          grads) if "cond_embed" in jax.tree_util.keystr(path))
    return out

  for name, norm in norms(dropped).items():
    assert float(norm) > 0, f"{name}: no gradient reaches the condition embedding"


def test_models_take_arrays_and_none_is_the_null_array():
  """The MLP's output changes with the condition; cond None is the explicit null array
  (zeros, flag 0); DiT and U-Net accept (B, d + 1) arrays and refuse other shapes, as the
  token transformer accepts them (shapes only: no compilation); labels and arrays
  together are refused."""
  model = build_model("mlp", (3,), width=16, depth=1, time_dim=8, cond_dim=2)
  params = model.init(KEY)
  x = jnp.ones((4, 3))
  present, null = conditioning.array_condition(jnp.arange(8.0).reshape(4, 2))
  default, absent, given = jax.jit(lambda p: tuple(
      model.apply(p, x, 0.5, c) for c in (None, null, present)))(params)
  np.testing.assert_array_equal(default, absent)
  assert float(jnp.max(jnp.abs(given - absent))) > 1e-3
  for name, options in (("dit", dict(hidden_dim=16, depth=1, num_heads=2)),
                        ("unet", dict(channels=8, channel_mults=(1,), num_res_blocks=1,
                                      attention_resolutions=()))):
    image = build_model(name, (4, 4, 1), cond_dim=2, **options)
    shapes = jax.eval_shape(image.init, KEY)
    assert "cond_embed_0" in str(jax.tree_util.tree_structure(shapes))
    out = jax.eval_shape(image.apply, shapes, jnp.zeros((2, 4, 4, 1)), 0.5, present[:2])
    assert out.shape == (2, 4, 4, 1)
    with pytest.raises(ValueError, match=r"\(B, 3\)"):
      jax.eval_shape(image.apply, shapes, jnp.zeros((2, 4, 4, 1)), 0.5, jnp.zeros((2, 2)))
  tokens = build_model("token_transformer", (4,), vocab_size=3, hidden_dim=16, depth=1,
                       num_heads=2, cond_dim=2)
  shapes = jax.eval_shape(tokens.init, KEY)
  assert "cond_embed_0" in str(jax.tree_util.tree_structure(shapes))
  out = jax.eval_shape(tokens.apply, shapes, jnp.zeros((2, 4), jnp.int32), 0.5, present[:2])
  assert out.shape == (2, 4, 3)
  with pytest.raises(ConfigError, match="not both"):
    build_model("mlp", (3,), num_classes=3, cond_dim=2)


def test_pipeline_trains_and_guides_with_conditioning_arrays():
  """The shared pipeline with DataSpec(cond_dim=2): the loss drops array conditions, the
  conditional model's null is the absent array, and CFG with w = 1 samples the conditional
  model exactly (to float32 rounding), w = 0 the unconditional one."""
  config = ml_collections.ConfigDict(dict(
      path=dict(name="rectified_flow"), objective=dict(name="flow_matching"),
      model=dict(name="mlp", width=16, depth=1, time_dim=8, cond_dim=2),
      train=dict(label_dropout=0.2), eval=dict(num_samples=8),
      sample=dict(solver="ddim", num_steps=3, guidance=dict(method="cfg", scale=1.0))))
  pipeline = build_pipeline(config, DataSpec((3,), cond_dim=2))
  params = pipeline.model.init(KEY)
  cond = jax.random.normal(KEY, (8, 2))
  loss, _ = pipeline.loss(params, KEY, lambda a: a, jnp.ones((8, 3)), cond)
  assert np.isfinite(float(loss))

  @jax.jit
  def draws(params):
    guided = lambda w: pipeline.generate(params, KEY, 8, cond,
                                         guidance=dict(method="cfg", scale=w)).x
    plain = lambda c: pipeline.generate(params, KEY, 8, c,
                                        guidance=dict(method="none")).x
    return guided(1.0), plain(cond), guided(0.0), plain(None)

  w1, conditional, w0, unconditional = draws(params)
  np.testing.assert_allclose(w1, conditional, atol=1e-5)
  np.testing.assert_allclose(w0, unconditional, atol=1e-5)
  assert float(jnp.max(jnp.abs(conditional - unconditional))) > 1e-4
  with pytest.raises(ConfigError, match="cond_dim=2 but the data"):
    build_pipeline(config, DataSpec((3,), cond_dim=3))
