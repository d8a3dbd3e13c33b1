"""A network of (x, t, h): any registered model of (x, t) also conditioned on a step h.

Flow maps take a second time: MeanFlow's average velocity u(z, r, t) and a shortcut model's
s(x_t, t, d) (`diffjax.distillation`). `step_conditioned(name, data_shape, **options)`
builds the model `name` with array conditioning (model.cond_dim,
`diffjax.models.base.embed_condition`) and feeds it features of h (`step_embedding`:
"sinusoidal", `step_dim` sine/cosine features of angular frequencies from
`step_frequency` down to step_frequency / 10^4, 1000 as the models embed time; or
"concat", h itself. Low frequencies keep the network smooth in h, which matters where a
loss differentiates the network in its times, as MeanFlow's does) and, when num_classes = K > 0, the one-hot class label (K + 1 ids, K
the null class). So every model that accepts cond_dim (mlp, dit, unet) gains the input,
and none changes.

  model = step_conditioned("mlp", (2,), width=64)
  params = model.init(key)
  out = model.apply(params, x, t, h, labels=None)   # x (B, *shape); t, h: () or (B,)
"""
from typing import Sequence

import jax
import jax.numpy as jnp

from diffjax.conditioning import mark_present
from diffjax.errors import ConfigError
from diffjax.models.base import Model, broadcast_time, build_model, sinusoidal_embedding


STEP_EMBEDDINGS = ("sinusoidal", "concat")


def step_conditioned(name: str, data_shape: Sequence[int], *, step_dim=32,
                     step_embedding="sinusoidal", step_frequency=1000.0, num_classes=0,
                     **options) -> Model:
  """The model `name` (`diffjax.models.MODELS`) of (x, t, h[, labels]) (module docstring).

  Args:
    name: a registered model that accepts cond_dim.
    data_shape: the shape of one example.
    step_dim: sinusoidal features of h (even, >= 2).
    step_embedding: "sinusoidal" or "concat" (module docstring).
    step_frequency: the highest angular frequency of the sinusoidal features (> 0).
    num_classes: K > 0 for (B,) int labels in [0, K] (K: the null class; labels None is
      the null class too); 0 for an unconditional network.
    options: the model's own options (width, depth, hidden_dim, ...).

  Returns:
    Model(init, apply) with apply(params, x, t, h, labels=None, *, dropout_key=None).
  """
  if not (isinstance(step_dim, int) and step_dim >= 2 and step_dim % 2 == 0):
    raise ConfigError(f"model.step_dim must be an even integer >= 2; got {step_dim!r}.")
  if step_embedding not in STEP_EMBEDDINGS:
    raise ConfigError(f"model.step_embedding={step_embedding!r} is not one of: "
                      f"{', '.join(STEP_EMBEDDINGS)}.")
  if not (isinstance(step_frequency, (int, float)) and step_frequency > 0):
    raise ConfigError(f"model.step_frequency must be a number > 0; got {step_frequency!r}.")
  if options.get("cond_dim", 0):
    raise ConfigError("A step-conditioned model uses the model's array conditioning for its "
                      f"step input: remove model.cond_dim={options['cond_dim']!r}.")
  options.pop("cond_dim", None)
  label_dim = num_classes + 1 if num_classes else 0
  step_features = step_dim if step_embedding == "sinusoidal" else 1
  net = build_model(name, data_shape, cond_dim=step_features + label_dim, **options)

  def condition(h, labels, batch):
    h = broadcast_time(h, batch)
    # sinusoidal_embedding's highest angular frequency is 1000.
    features = [sinusoidal_embedding(h * (step_frequency / 1000.0), step_dim)
                if step_embedding == "sinusoidal" else h[:, None]]
    if num_classes:
      ids = (jnp.full((batch,), num_classes, jnp.int32) if labels is None
             else jnp.asarray(labels, jnp.int32))
      features.append(jax.nn.one_hot(ids, label_dim))
    return mark_present(jnp.concatenate(features, -1), jnp.ones((batch,), bool))

  def init(key):
    return net.init(key)

  def apply(params, x, t, h, labels=None, *, dropout_key=None):
    return net.apply(params, x, t, condition(h, labels, x.shape[0]),
                     dropout_key=dropout_key)

  return Model(init, apply)
