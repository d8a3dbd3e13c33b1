"""CatVTON-style concatenation (`diffjax.adaptation.concat`): the layout of the one denoiser
input, the toy task's batches, the reference reaching the target half through the DiT, and
a tiny end-to-end run of the `concat` family."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from configs.adaptation import concat as concat_config
from diffjax.adaptation.concat import (concat_inputs, concat_velocity, stroke_style_bank,
                                       stroke_transfer_batch, target_half)
from diffjax.adaptation.styles import thick
from diffjax.data.digits import digits_bin_centres
from diffjax.models import build_model
from diffjax.train import train
from experiments import concat as concat_experiment


def test_the_input_holds_reference_target_and_mask_side_by_side():
  reference, xt, mask = (jnp.full((2, 8, 8, 1), v) for v in (0.5, -0.25, 1.0))
  inputs = concat_inputs(reference, xt, mask)
  assert inputs.shape == (2, 8, 16, 2)
  np.testing.assert_array_equal(inputs[:, :, :8, 0], 0.5)
  np.testing.assert_array_equal(inputs[:, :, 8:, 0], -0.25)
  np.testing.assert_array_equal(inputs[:, :, :8, 1], 0.0)
  np.testing.assert_array_equal(inputs[:, :, 8:, 1], 1.0)
  np.testing.assert_array_equal(target_half(inputs), xt)


def test_stroke_transfer_batches():
  images = digits_bin_centres("test")[0][:20]
  bank = stroke_style_bank(images)
  reference, mask, target, style, index = stroke_transfer_batch(
      jnp.asarray(bank), jax.random.PRNGKey(0), 64)
  np.testing.assert_array_equal(target, bank[np.asarray(style), np.asarray(index)])
  np.testing.assert_array_equal(mask, np.where(images[np.asarray(index)] > 0, 1.0, -1.0))
  thick_rows = np.asarray(style) == 1
  assert 0 < thick_rows.sum() < 64
  np.testing.assert_array_equal(target[thick_rows], thick(images[np.asarray(index)])[thick_rows])
  # The reference is another digit in the target's style.
  assert not any(np.array_equal(r, t) for r, t in zip(np.asarray(reference), np.asarray(target))
                 if r.std() > 0)
  blank, *_ = stroke_transfer_batch(jnp.asarray(bank), jax.random.PRNGKey(0), 8, False)
  np.testing.assert_array_equal(blank, -1.0)


def test_the_reference_reaches_the_target_half_without_an_encoder():
  model = build_model("dit", (8, 16, 2), patch_size=2, hidden_dim=16, depth=1, num_heads=2)
  params = model.init(jax.random.PRNGKey(0))
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  params = jax.tree.unflatten(tree, [x + 0.1 * jax.random.normal(k, x.shape)
                                     for x, k in zip(leaves, keys)])
  xt = jax.random.normal(jax.random.PRNGKey(2), (1, 8, 8, 1))
  mask = jnp.ones((1, 8, 8, 1))

  def out(reference):
    return jnp.sum(concat_velocity(model.apply, params, reference, mask)(xt, jnp.array([0.5])))
  gradient = jax.jit(jax.grad(out))(jnp.zeros((1, 8, 8, 1)))
  assert float(jnp.abs(gradient).max()) > 1e-4


def test_a_tiny_concat_run(tmp_path):
  config = concat_config.get_config("tiny")
  workdir = str(tmp_path / "concat")
  train(config, workdir, concat_experiment.build_task(config))
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    record = [json.loads(line) for line in f][-1]
  assert 0.0 <= record["style_accuracy"] <= 1.0 and np.isfinite(record["psnr"])
