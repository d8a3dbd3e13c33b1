"""DDMI (functions as data): the positional embeddings' interpolation against closed
forms, the autoencoder's grid reconstruction, the family end to end on its :tiny config,
and coordinates outside [0, 1]^2 refused in one line before the workdir is touched."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import experiments
from configs.datatypes import ddmi
from diffjax import implicit
from diffjax.data.digits import digits_bin_centres
from diffjax.errors import ConfigError
from diffjax.train import fit
from diffjax.train.workdir import read_metrics


def test_bilinear_is_exact_at_centres_and_for_affine_grids():
  grid = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 3))
  centres = implicit.grid_coordinates(4)
  np.testing.assert_allclose(implicit.bilinear(grid, centres), grid.reshape(16, 3),
                             atol=1e-6)
  # An affine function sampled at the centres is reproduced anywhere between them.
  a, b, c = 0.7, -1.3, 0.2
  centre = (jnp.arange(4) + 0.5) / 4
  affine = (a * centre[:, None] + b * centre[None, :] + c)[..., None]
  points = jax.random.uniform(jax.random.PRNGKey(1), (50, 2), minval=0.125, maxval=0.875)
  np.testing.assert_allclose(implicit.bilinear(affine, points)[:, 0],
                             a * points[:, 0] + b * points[:, 1] + c, atol=1e-5)
  # Beyond the outermost centres the border value holds; the corner is the corner pixel.
  np.testing.assert_allclose(implicit.bilinear(grid, jnp.zeros((1, 2)))[0], grid[0, 0],
                             atol=1e-6)


def test_hierarchical_embedding_splits_and_reads_each_level():
  levels = ((2, 3), (4, 1))
  z = jnp.arange(implicit.latent_size(levels), dtype=jnp.float32)
  grids = implicit.split_levels(z, levels)
  assert [g.shape for g in grids] == [(2, 2, 3), (4, 4, 1)]
  read = implicit.read_embedding(z, levels, implicit.grid_coordinates(4))
  assert read.shape == (16, 4)
  np.testing.assert_allclose(read[:, 3], grids[1].reshape(16), atol=1e-5)


def test_decoder_on_the_grid_reproduces_the_encoded_digits():
  """Stated tolerance: after fitting 32 digits, the decoded function at the 8x8 pixel
  centres is within RMSE 0.1 (of the range [-1, 1]; 0.85 of a grey level of 17) of the
  pixels it encodes."""
  images = jnp.asarray(digits_bin_centres("test", limit=32)[0])
  module = implicit.FunctionAutoencoder(levels=((2, 8), (4, 4)), width=128,
                                        decoder_width=64, decoder_depth=2)

  def loss(params, batch, key):
    del batch
    return implicit.autoencoder_loss(module, params, key, images, 0, 0.0)

  state = fit(loss, optax.adam(3e-3),
              lambda key: implicit.init_autoencoder(module, key, (8, 8, 1)),
              num_steps=600, key=jax.random.PRNGKey(0), ema_decay=None,
              steps_per_call=600)
  mean, _ = module.apply({"params": state.params}, images, method="encode")
  rendered = implicit.render(module, state.params, mean, 8)
  rmse = float(jnp.sqrt(jnp.mean((rendered - images) ** 2)))
  assert rmse < 0.1, rmse
  # The same functions rendered at 16x16 are close to the pixels they refine.
  fine = implicit.render(module, state.params, mean, 16)
  block = fine.reshape(32, 8, 2, 8, 2, 1).mean((2, 4))
  assert float(jnp.sqrt(jnp.mean((block - images) ** 2))) < 0.2


@pytest.mark.parametrize("points,message", [
    (np.array([[0.5, 0.5], [1.2, 0.3]]), r"\[1\] = \[1.2.*outside the domain \[0, 1\]\^2"),
    (np.array([[0.5, -0.1]]), r"\[0\] = \[0.5, -0.1.*outside the domain"),
    (np.array([0.5, 0.5]), r"has shape \(2,\); give \(P, 2\)"),
])
def test_coordinates_outside_the_domain_fail_in_one_line(tmp_path, points, message):
  path = str(tmp_path / "points.npy")
  np.save(path, points)
  config = ddmi.get_config("tiny")
  config.ddmi.coordinates_file = path
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")


def test_ddmi_tiny_samples_at_two_resolutions_and_queries(tmp_path):
  path = str(tmp_path / "points.npy")
  # The first point is the centre of the 16x16 rendering's top-left pixel.
  np.save(path, np.array([[1 / 32, 1 / 32], [0.25, 0.75], [1.0, 1.0]]))
  config = ddmi.get_config("tiny")
  config.ddmi.coordinates_file = path
  workdir = str(tmp_path / "run")
  experiments.run(config, workdir)
  record = read_metrics(workdir)[-1]
  for name in ("frechet_proxy_8", "frechet_proxy_16", "grid_rmse"):
    assert np.isfinite(record[name])
  experiments.run(config, workdir, mode="sample")
  directory = os.path.join(workdir, "samples")
  name = [n for n in os.listdir(directory) if n.startswith("samples_")][0]
  samples = np.load(os.path.join(directory, name))
  assert samples["images_8"].shape == (20, 8, 8, 1)
  assert samples["images_16"].shape == (20, 16, 16, 1)
  assert samples["query_values"].shape == (20, 3)
  np.testing.assert_allclose(samples["query_values"][:, 0], samples["images_16"][:, 0, 0, 0],
                             atol=1e-5)
