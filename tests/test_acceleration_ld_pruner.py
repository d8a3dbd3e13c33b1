"""LD-Pruner on a small DiT: pruning nothing leaves the outputs identical, a masked and a
removed network agree, the pruned tree is the one the smaller config builds (and loads),
the score and the magnitude baseline against hand computations, bad targets refused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.acceleration import ld_pruner
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.models.transformer import dit_stages

OPTIONS = dict(patch_size=2, hidden_dim=16, depth=3, num_heads=2, num_classes=3)
SHAPE = (8, 8, 1)
MODEL = build_model("dit", SHAPE, **OPTIONS)
PARAMS = jax.tree.map(
    lambda a: a + 0.2 * jax.random.normal(jax.random.PRNGKey(1), a.shape),
    MODEL.init(jax.random.PRNGKey(0)))
X = jax.random.normal(jax.random.PRNGKey(2), (6, *SHAPE))
T = jnp.linspace(0.1, 0.9, 6)
COND = jnp.arange(6) % 3
WIDTH = 64   # int(4.0 * 16)


def test_pruning_nothing_leaves_the_outputs_identical():
  kept = ld_pruner.prune(PARAMS, np.arange(3), [np.arange(WIDTH)] * 3)
  np.testing.assert_array_equal(MODEL.apply(kept, X, T, COND), MODEL.apply(PARAMS, X, T, COND))
  masked = ld_pruner.mask_params(PARAMS, jnp.ones(3), jnp.ones((3, WIDTH)))
  np.testing.assert_array_equal(MODEL.apply(masked, X, T, COND),
                                MODEL.apply(PARAMS, X, T, COND))


def test_a_removed_network_is_the_masked_one_and_the_smaller_config_builds_its_tree():
  blocks = np.array([0, 2])
  channels = [np.sort(np.random.default_rng(i).choice(WIDTH, 45, replace=False))
              for i in range(3)]
  block_mask = jnp.asarray([1.0, 0.0, 1.0])
  channel_mask = np.zeros((3, WIDTH), np.float32)
  for i, c in enumerate(channels):
    channel_mask[i, c] = 1.0
  masked = MODEL.apply(ld_pruner.mask_params(PARAMS, block_mask, jnp.asarray(channel_mask)),
                       X, T, COND)
  small_model = build_model("dit", SHAPE, **dict(OPTIONS, depth=2, mlp_ratio=45 / 16))
  pruned = ld_pruner.prune(PARAMS, blocks, channels)
  shapes = lambda tree: jax.tree.map(jnp.shape, tree)
  assert shapes(pruned) == shapes(small_model.init(jax.random.PRNGKey(0)))
  np.testing.assert_allclose(small_model.apply(pruned, X, T, COND), masked, atol=1e-5)
  # A masked block is skipped exactly: the stages without block 1.
  stages = dit_stages(SHAPE, **OPTIONS)
  tokens, c = stages.embed(PARAMS, X, T, COND)
  for i in (0, 2):
    tokens = stages.block(PARAMS[f"DiTBlock_{i}"], tokens, c)
  np.testing.assert_allclose(
      MODEL.apply(ld_pruner.mask_params(PARAMS, block_mask), X, T, COND),
      stages.head(PARAMS, X, tokens, c), atol=1e-6)


def test_the_ld_score_and_the_magnitude_baseline_by_hand():
  rng = np.random.default_rng(0)
  y, y2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)) * 2 + 1
  expected = (np.linalg.norm(y.mean(0) - y2.mean(0))
              + np.linalg.norm(y.std(0) - y2.std(0)))
  np.testing.assert_allclose(float(ld_pruner.ld_score(jnp.asarray(y), jnp.asarray(y2))),
                             expected, rtol=1e-5)
  assert float(ld_pruner.ld_score(jnp.asarray(y), jnp.asarray(y))) == 0.0
  scores = ld_pruner.channel_scores(MODEL.apply, PARAMS, (X, T, COND), "magnitude")
  w_in = np.asarray(PARAMS["DiTBlock_1"]["Dense_3"]["kernel"])
  w_out = np.asarray(PARAMS["DiTBlock_1"]["Dense_4"]["kernel"])
  np.testing.assert_allclose(scores[1, 7], np.linalg.norm(w_in[:, 7])
                             * np.linalg.norm(w_out[7]), rtol=1e-5)
  np.testing.assert_array_equal(ld_pruner.select(jnp.asarray([0.3, 0.1, 0.9, 0.5]), 2),
                                [2, 3])


def test_the_ld_block_score_is_the_output_change_of_removing_each_block():
  scores = ld_pruner.block_scores(MODEL.apply, PARAMS, (X, T, COND), "ld")
  reference = MODEL.apply(PARAMS, X, T, COND)
  for i in range(3):
    mask = jnp.ones(3).at[i].set(0.0)
    without = MODEL.apply(ld_pruner.mask_params(PARAMS, mask), X, T, COND)
    np.testing.assert_allclose(scores[i], ld_pruner.ld_score(reference, without), rtol=1e-4)
  assert np.all(np.asarray(scores) > 0)


@pytest.mark.parametrize("target, text", [
    (dict(depth=4), "model.depth=4 must be in [1, 3]"),
    (dict(mlp_ratio=5.0), "it must be in [1, 64]"),
    (dict(hidden_dim=32), "model.hidden_dim=32 differs"),
])
def test_a_target_larger_than_the_source_or_of_another_shape_is_refused(target, text):
  with pytest.raises(ConfigError, match=text.replace("[", r"\[").replace("]", r"\]")):
    ld_pruner.check_target(dict(name="dit", **OPTIONS), dict(dict(name="dit", **OPTIONS), **target))
