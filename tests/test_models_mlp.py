"""The time-conditioned MLP: a pure (init, apply) pair built by name."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffjax.models import build_model
from diffjax.registry import UnknownComponentError


@pytest.mark.parametrize("time_embedding", ["sinusoidal", "concat"])
def test_output_shape_and_time_dependence(time_embedding):
  model = build_model("mlp", (3,), width=16, depth=2, time_embedding=time_embedding)
  params = model.init(jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
  out = model.apply(params, x, 0.3)
  assert out.shape == (5, 3)
  per_example = model.apply(params, x, jnp.full((5,), 0.3))
  np.testing.assert_allclose(out, per_example, rtol=1e-6)
  assert not np.allclose(out, model.apply(params, x, 0.7))


def test_class_conditioning():
  model = build_model("mlp", (2,), width=16, depth=1, num_classes=3)
  params = model.init(jax.random.PRNGKey(0))
  x = jnp.ones((2, 2))
  a = model.apply(params, x, 0.5, jnp.array([0, 0]))
  b = model.apply(params, x, 0.5, jnp.array([0, 2]))
  np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
  assert not np.allclose(a[1], b[1])
  # No labels: the unconditional model, i.e. the null class 3 of condition dropout.
  np.testing.assert_array_equal(model.apply(params, x, 0.5),
                                model.apply(params, x, 0.5, jnp.array([3, 3])))


def test_bad_inputs_are_refused():
  with pytest.raises(UnknownComponentError, match="Unknown activation 'swish'; valid"):
    build_model("mlp", (2,), activation="swish")
  with pytest.raises(ValueError, match=r"vector data of shape \(D,\); got data_shape"):
    build_model("mlp", (8, 8, 1))
  with pytest.raises(UnknownComponentError, match="Unknown model 'mpl'"):
    build_model("mpl", (2,))
  with pytest.raises(ValueError, match=r"model.width must be an integer >= 1; got 0"):
    build_model("mlp", (2,), width=0)
  model = build_model("mlp", (2,), width=8, depth=1)
  with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(4,\)"):
    model.apply(model.init(jax.random.PRNGKey(0)), jnp.zeros((4, 2)), jnp.zeros(3))
