"""Host-fed batches and gradient accumulation in the training engine."""
import jax
import numpy as np

from diffjax.train import train
from diffjax.train.workdir import read_metrics
from tests.helpers import assert_trees_equal, regression_config, regression_task


def test_host_fed_training_learns_and_resumes_bitwise(tmp_path):
  full = train(regression_config(), str(tmp_path / "full"), regression_task())
  assert read_metrics(str(tmp_path / "full"))[-1]["w_error"] < 0.5
  half_dir = str(tmp_path / "half")
  train(regression_config(num_steps=20), half_dir, regression_task())
  resumed = train(regression_config(), half_dir, regression_task())
  assert_trees_equal(jax.tree.map(np.asarray, full.params),
                     jax.tree.map(np.asarray, resumed.params))


def test_gradient_accumulation_equals_the_full_batch(tmp_path):
  one = train(regression_config(), str(tmp_path / "one"), regression_task())
  four = train(regression_config(grad_accum_steps=4), str(tmp_path / "four"),
               regression_task())
  np.testing.assert_allclose(np.asarray(four.params["w"]), np.asarray(one.params["w"]),
                             rtol=1e-5, atol=1e-6)
  assert not np.allclose(np.asarray(one.params["w"]), 0)


def test_gradient_accumulation_on_device_task(tmp_path):
  import experiments  # pylint: disable=g-import-not-at-top
  from tests.helpers import tiny_config  # pylint: disable=g-import-not-at-top
  state = experiments.run(tiny_config(**{"train.grad_accum_steps": 2, "train.num_steps": 50,
                                         "train.eval_every": 0}), str(tmp_path / "toy"))
  assert int(state.step) == 50
  assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(state.params))
