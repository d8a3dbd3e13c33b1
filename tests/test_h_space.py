"""h-space directions and BoundaryDiffusion's linear boundary on closed forms; edits
through the bottleneck interface; bad input refused before a workdir is touched."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import experiments
from configs.diagnostics import h_space as h_space_config
from diffjax.diagnostics import boundary as boundary_lib
from diffjax.diagnostics import h_space
from diffjax.errors import ConfigError
from diffjax.models import build_model


class BottleneckModel:
  """A two-layer stand-in with the U-Net's bottleneck interface (the real hook is the
  U-Net's `bottleneck_edit`; a U-Net compiles for a minute on a busy 2-core CPU):
  h = tanh(x W1 + t), out = edit(h) W2, h of shape (B, 4, 2)."""

  @staticmethod
  def apply(params, x, t, cond=None, *, return_bottleneck=False, bottleneck_edit=None):
    del cond
    w1, w2 = params
    t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ w1 + t[:, None]).reshape(x.shape[0], 4, 2)
    edited = h if bottleneck_edit is None else bottleneck_edit(h)
    out = (edited.reshape(x.shape[0], -1) @ w2).reshape(x.shape)
    return (out, h) if return_bottleneck else out


@pytest.fixture(scope="module")
def bottleneck_model():
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  return BottleneckModel(), (jax.random.normal(keys[0], (64, 8)),
                             jax.random.normal(keys[1], (8, 64)))


def test_edits_apply_inside_the_interval_only(bottleneck_model):
  model, params = bottleneck_model
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 1))
  h = h_space.bottleneck(model, params, x, 0.7)
  assert h.shape == (2, 4, 2)
  direction = jax.random.normal(jax.random.PRNGKey(2), h.shape[1:])
  plain = model.apply(params, x, 0.7)
  shifted = model.apply(params, x, 0.7, bottleneck_edit=lambda v: v + 2.0 * direction[None])
  edited = h_space.edited_apply(model, direction, 2.0, (0.5, 1.0))
  np.testing.assert_allclose(edited(params, x, 0.7), shifted, atol=1e-6)
  plain_early = model.apply(params, x, 0.3)
  np.testing.assert_allclose(edited(params, x, 0.3), plain_early, atol=1e-6)   # outside
  # Per-example times: example 0 inside, example 1 outside the interval.
  both = edited(params, x, jnp.array([0.7, 0.3]))
  np.testing.assert_allclose(both[0], shifted[0], atol=1e-6)
  np.testing.assert_allclose(both[1], plain_early[1], atol=1e-6)
  assert float(jnp.max(jnp.abs(shifted - plain))) > 1e-4   # the edit does change outputs


def test_jacobian_directions_match_the_svd_of_a_linear_map():
  a = jax.random.normal(jax.random.PRNGKey(0), (12, 2, 3))
  fn = lambda h: jnp.einsum("oij,bij->bo", a, h)       # (1, 2, 3) -> (1, 12)
  directions, values = h_space.jacobian_directions(fn, jnp.ones((1, 2, 3)), 3,
                                                   jax.random.PRNGKey(1), iterations=200)
  _, s, vt = np.linalg.svd(np.asarray(a).reshape(12, 6))
  np.testing.assert_allclose(values, s[:3], rtol=1e-4)
  overlap = np.abs(np.asarray(directions).reshape(3, 6) @ vt[:3].T)   # |cos|, sign-free
  np.testing.assert_allclose(np.diag(overlap), 1.0, atol=1e-3)


def test_principal_and_class_mean_directions():
  key = jax.random.PRNGKey(0)
  axis = jnp.array([3.0, 4.0]) / 5.0
  h = (jax.random.normal(key, (500, 1)) * 5.0 * axis[None]
       + 0.1 * jax.random.normal(jax.random.PRNGKey(1), (500, 2)))
  directions, explained = h_space.principal_directions(h, 1)
  assert abs(float(directions[0] @ axis)) > 0.999 and float(explained[0]) > 0.99
  labels = jnp.array([0, 0, 1, 1])
  h = jnp.array([[0.0, 1.0], [2.0, 1.0], [5.0, 5.0], [7.0, 5.0]])
  np.testing.assert_allclose(h_space.class_mean_direction(h, labels, 0, 1), [5.0, 4.0])
  with pytest.raises(ConfigError, match="class 3"):
    h_space.class_mean_direction(h, labels, 0, 3)
  randoms = h_space.random_directions(key, jnp.array([3.0, 4.0]), 4)
  np.testing.assert_allclose(jnp.linalg.norm(randoms, axis=-1), 5.0, rtol=1e-6)


def test_linear_boundary_separates_and_crossing_lands_on_the_target_distance():
  rng = np.random.default_rng(0)
  normal = np.array([1.0, 2.0, 2.0]) / 3.0
  h = np.concatenate([rng.normal(size=(100, 3)) * 0.3 - 2 * normal,
                      rng.normal(size=(100, 3)) * 0.3 + 2 * normal]).reshape(200, 3, 1)
  labels = np.repeat([4, 9], 100)
  boundary = boundary_lib.fit_linear_boundary(h, labels, source=4, target=9)
  assert boundary.accuracy == 1.0
  assert float(boundary.normal.reshape(-1) @ normal) > 0.98    # points to the target
  distances = boundary.signed_distance(jnp.asarray(h, jnp.float32))
  assert bool(jnp.all((distances > 0) == (labels == 9)))
  shift = boundary.crossing_strength(jnp.asarray(h[:5], jnp.float32), 1.5)
  moved = jnp.asarray(h[:5], jnp.float32) + shift[:, None, None] * boundary.normal[None]
  np.testing.assert_allclose(boundary.signed_distance(moved), 1.5, atol=1e-5)
  with pytest.raises(ConfigError, match="at least 2 examples"):
    boundary_lib.fit_linear_boundary(h, labels, source=4, target=3)


def test_models_without_a_bottleneck_are_refused():
  mlp = build_model("mlp", (2,), width=8, depth=1)
  with pytest.raises(ConfigError, match="model.name='mlp' has no bottleneck"):
    h_space.require_bottleneck(mlp, "mlp")
  with pytest.raises(ConfigError, match="edit interval"):
    h_space.edited_apply(mlp, jnp.zeros(2), 1.0, (0.8, 0.2))


@pytest.mark.parametrize("key,value,message", [
    ("model", "dit", "has no bottleneck"),
    ("eval.target_class", 1, "both 1"),
    ("eval.edit_until", 0.2, "edit_until"),
    ("eval.edit_time", 1.0, "eval.edit_time"),
])
def test_bad_h_space_values_fail_before_the_workdir(tmp_path, key, value, message):
  config = h_space_config.get_config("tiny")
  if key == "model":
    config.model = build_dit_section()
  else:
    section, name = key.split(".")
    config[section][name] = value
  with pytest.raises(ConfigError, match=message):
    experiments.run(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def build_dit_section():
  return ml_collections.ConfigDict(dict(name="dit", patch_size=2, hidden_dim=16, depth=1,
                                        num_heads=2, num_classes=0))
