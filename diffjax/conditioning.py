"""Condition dropout for classifier-free guidance training.

"Classifier-Free Diffusion Guidance" (Ho & Salimans, Sec. 3.2, Algorithm 1): one network
learns the conditional and the unconditional model when, during training, the condition is
replaced by a null condition with probability p_uncond. For class labels the null
condition is an extra class id, `num_classes`, whose embedding the model learns (models
built with `num_classes = K` embed K + 1 ids); for conditioning arrays it is the all-zero
array with a `present` flag set to 0, which the model sees as one more input.

At sampling time `class_condition` and `array_condition` give the (condition, null
condition) pair that guidance (`diffjax.guidance`) evaluates in one batched network call.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.errors import ConfigError


def check_dropout(rate):
  """Refuses a dropout probability outside [0, 1]."""
  if not 0.0 <= rate <= 1.0:
    raise ConfigError(f"The condition dropout probability must be in [0, 1]; got {rate}.")
  return rate


def null_labels(batch_size, num_classes):
  """(B,) int32 null-class ids: the unconditional model's condition."""
  return jnp.full((batch_size,), num_classes, jnp.int32)


def drop_labels(key, labels, rate, num_classes):
  """(B,) int labels with each replaced by the null class `num_classes` w.p. `rate`."""
  drop = jax.random.bernoulli(key, rate, labels.shape)
  return jnp.where(drop, num_classes, labels).astype(jnp.int32)


def drop_arrays(key, cond, rate):
  """A conditioning array (B, ...) -> (B, ... + 1): each example zeroed w.p. `rate`, with
  a last feature 1 where the condition is present and 0 where it was dropped (so the
  network can tell a dropped condition from a condition that is zero)."""
  keep = ~jax.random.bernoulli(key, rate, cond.shape[:1])
  return mark_present(cond, keep)


def mark_present(cond, present):
  """(B, ...) conditions and (B,) bools -> (B, ... + 1) with dropped ones zeroed and the
  presence flag appended along the last axis."""
  mask = present.reshape(present.shape + (1,) * (cond.ndim - 1)).astype(cond.dtype)
  flag = jnp.broadcast_to(mask, cond.shape[:-1] + (1,))
  return jnp.concatenate([cond * mask, flag], axis=-1)


def _concrete(array):
  """The array as NumPy, or None inside a trace (where values cannot be checked)."""
  try:
    return np.asarray(array)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def class_condition(labels, num_classes):
  """(cond, null) for class-conditional sampling: the (B,) int32 labels, checked to lie in
  [0, num_classes) where their values are known, and the (B,) null-class ids (the
  unconditional model of condition dropout)."""
  if not num_classes:
    raise ConfigError("This run is unconditional (model.num_classes = 0): it has no class "
                      "condition to sample or guide with; train with model.num_classes > 0.")
  values = _concrete(labels)
  if values is not None and values.size and (values.min() < 0 or values.max() >= num_classes):
    bad = int(values.min() if values.min() < 0 else values.max())
    raise ConfigError(f"Class id {bad} is out of range: this model has {num_classes} "
                      f"classes, ids 0..{num_classes - 1}.")
  labels = jnp.asarray(labels, jnp.int32)
  return labels, null_labels(labels.shape[0], num_classes)


def array_condition(cond):
  """(cond, null) for a conditioning array (B, ...): the condition marked present and the
  all-zero condition marked absent, each (B, ... + 1) as `drop_arrays` trains them."""
  cond = jnp.asarray(cond)
  batch = cond.shape[:1]
  return (mark_present(cond, jnp.ones(batch, bool)),
          mark_present(jnp.zeros_like(cond), jnp.zeros(batch, bool)))
