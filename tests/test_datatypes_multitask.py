"""Multi-task generation: the shared space round-trips each modality, the observation
condition hides exactly the unobserved blocks, the family runs end to end on its :tiny
config, and bad values are refused in one line before the workdir is touched."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
from configs.datatypes import multitask as multitask_config
from diffjax import multitask
from diffjax.errors import ConfigError
from diffjax.train.workdir import read_metrics

SPACE = multitask.JointSpace((multitask.image_modality((8, 8, 1)),
                              multitask.label_modality(10)))


def test_joint_space_round_trips_images_and_labels():
  images = jax.random.uniform(jax.random.PRNGKey(0), (6, 8, 8, 1), minval=-1, maxval=1)
  labels = jnp.arange(6) % 10
  z = SPACE.encode({"image": images, "label": labels})
  assert z.shape == (6, 74) and SPACE.cond_dim == 76
  out = SPACE.decode(z)
  np.testing.assert_array_equal(out["image"], images)
  np.testing.assert_array_equal(out["label"], labels)
  assert set(np.unique(np.asarray(SPACE.split(z)["label"]))) == {-1.0, 1.0}


def test_observation_condition_hides_unobserved_blocks():
  z = jax.random.normal(jax.random.PRNGKey(1), (3, 74))
  observed = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
  cond = multitask.observation_condition(SPACE, z, observed)
  np.testing.assert_array_equal(cond[0, :64], z[0, :64])
  np.testing.assert_array_equal(cond[0, 64:74], 0.0)
  np.testing.assert_array_equal(cond[1, :64], 0.0)
  np.testing.assert_array_equal(cond[1, 64:74], z[1, 64:])
  np.testing.assert_array_equal(cond[2, :74], 0.0)
  np.testing.assert_array_equal(cond[:, 74:], observed)
  np.testing.assert_array_equal(multitask.given(SPACE, 2, ("label",)), [[0, 1], [0, 1]])
  with pytest.raises(ValueError, match="Unknown modalities"):
    multitask.given(SPACE, 2, ("audio",))


def test_random_observation_leaves_something_to_generate():
  p = 0.4
  observed = np.asarray(multitask.random_observation(jax.random.PRNGKey(2), SPACE,
                                                     200_000, p))
  assert not np.any(observed.all(-1))
  # Each single modality is observed w.p. p (1 - p); none w.p. (1 - p)^2 + p^2.
  np.testing.assert_allclose(observed[:, 0].mean(), p * (1 - p), atol=4e-3)
  np.testing.assert_allclose((observed.sum(-1) == 0).mean(), (1 - p) ** 2 + p ** 2,
                             atol=4e-3)


def test_multitask_tiny_reports_every_task(tmp_path):
  workdir = str(tmp_path / "run")
  experiments.run(multitask_config.get_config("tiny"), workdir)
  record = read_metrics(workdir)[-1]
  for name in ("label_agreement", "label_to_image_accuracy", "image_to_label_accuracy"):
    assert 0.0 <= record[name] <= 1.0
  assert np.isfinite(record["frechet_proxy_joint"])


@pytest.mark.parametrize("change,message", [
    (("data", "modalities", "label,image"), "data.modalities='label,image' is not one of"),
    (("data", "p_observe", 1.0), "data.p_observe=1.0 is out of range"),
    (("model", "cond_dim", 74), "model.cond_dim=74: the joint model is conditioned on the "
                                "observed modalities, 76 values"),
])
def test_bad_values_fail_in_one_line_before_the_workdir(tmp_path, change, message):
  config = multitask_config.get_config("tiny")
  section, key, value = change
  config[section][key] = value
  with pytest.raises(ConfigError, match=message) as error:
    experiments.run(config, str(tmp_path / "run"))
  assert "\n" not in str(error.value)
  assert not os.path.exists(tmp_path / "run")
