"""ProSpect (`diffjax.adaptation.prospect`): a spectrum with one embedding in every interval
is ordinary conditioning, swaps take the chosen intervals only, the loss trains the
spectra alone, and a bad interval list is refused by the command line."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs.guidance import digits as digits_config
from diffjax.adaptation.intervals import check_intervals
from diffjax.adaptation.prospect import (class_spectra, label_table, spectrum_apply,
                                         spectrum_loss, swap_intervals)
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.train import create_train_state
from diffjax.train.step import make_train_step, scan_steps
from tests.test_cli_fuzz import _assert_refused, _run

BOUNDARIES = check_intervals(((0.0, 0.25), (0.25, 0.6), (0.6, 1.0)), "x")


@pytest.fixture(scope="module")
def network():
  config = digits_config.get_config("tiny")
  pipeline = build_pipeline(config, DataSpec((8, 8, 1), 10))
  params = pipeline.model.init(jax.random.PRNGKey(0))
  # An untrained DiT's adaLN-Zero output layer is zero; perturb every weight so the
  # label embedding reaches the output.
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
  params = jax.tree.unflatten(tree, [x + 0.1 * jax.random.normal(k, x.shape)
                                     for x, k in zip(leaves, keys)])
  return pipeline, params


def test_equal_embeddings_in_every_interval_are_ordinary_conditioning(network):
  pipeline, params = network
  x = jax.random.normal(jax.random.PRNGKey(2), (6, 8, 8, 1))
  t = jnp.array([0.0, 0.1, 0.3, 0.5, 0.7, 1.0])
  labels = jnp.array([0, 3, 5, 7, 9, 10])   # 10: the null class.
  apply = spectrum_apply(pipeline.model.apply, BOUNDARIES, slot=10)
  spectra = class_spectra(params, labels, 3)
  expected = pipeline.model.apply(params, x, t, labels)
  np.testing.assert_allclose(apply(params, x, t, spectra), expected, rtol=2e-5, atol=2e-6)
  # Another class's embedding in one interval changes only the examples whose t is in it.
  other = swap_intervals(spectra, class_spectra(params, (labels + 1) % 10, 3), (1,))
  changed = np.abs(np.asarray(apply(params, x, t, other) - expected)).max(axis=(1, 2, 3))
  np.testing.assert_array_equal(changed > 1e-5, [False, False, True, True, False, False])


def test_swap_intervals():
  a, b = jnp.zeros((2, 4, 3)), jnp.ones((2, 4, 3))
  swapped = swap_intervals(a, b, (0, 2))
  np.testing.assert_array_equal(swapped[:, :, 0], [[1, 0, 1, 0]] * 2)


def test_spectrum_loss_trains_the_spectra_only(network):
  pipeline, params = network
  images = jax.random.uniform(jax.random.PRNGKey(3), (6, 8, 8, 1)) * 2 - 1
  loss = spectrum_loss(pipeline, params, BOUNDARIES, 10, images, np.array([0, 0, 0, 1, 1, 1]),
                       4)
  init = {"spectra": jnp.broadcast_to(label_table(params)[10], (2, 3, 16 * 1))}
  step = make_train_step(loss, optax.adam(1e-2))
  state = create_train_state(lambda _: init, optax.adam(1e-2), jax.random.PRNGKey(0))
  state, metrics = jax.jit(lambda s: scan_steps(step, s, 3))(state)
  assert state.params["spectra"].shape == (2, 3, 16)
  assert not np.allclose(state.params["spectra"], init["spectra"])
  assert np.all(np.isfinite(np.asarray(metrics["loss"])))


@pytest.mark.parametrize("overrides,text", [
    (("--config.method.intervals=((0.0, 0.5), (0.6, 1.0))",), "gap or overlap"),
    (("--config.method.intervals=((0.0, 0.5),)",), "does not cover [0, 1]"),
    (("--config.concepts.pairs=(('thick', 3),)",), "two (style, digit) pairs"),
    (("--config.concepts.pairs=(('thick', 3), ('bold', 8))",), "bold"),
])
def test_bad_input_is_refused_before_the_workdir(tmp_path, capfd, overrides, text):
  workdir = str(tmp_path / "run")
  code, output = _run(["--config=configs/adaptation/prospect.py:tiny",
                       f"--workdir={workdir}", *overrides], capfd)
  _assert_refused(code, output, 2, text)
  assert not os.path.exists(workdir)
