"""Conditioning by spatial concatenation, CatVTON-style ("CatVTON: Concatenation Is All You
Need for Virtual Try-On with Diffusion Models", Chong et al., section 3.2): the reference
image is placed beside the noisy target in ONE denoiser input, with no reference encoder;
the denoiser's output over the target's half is the prediction, the other half is dropped.

  inputs = concat_inputs(reference, xt, mask)   # (B, H, 2W, 2): [reference | x_t] and
                                                #  [0 | mask] as a second channel
  velocity = target_half(model.apply(params, inputs, t))   # (B, H, W, 1)

The digits toy task (`stroke_transfer_batch`): the target is a digit drawn in the stroke
style of the reference (original or thick, `diffjax.adaptation.styles`), the mask its
shape (the ink of the original digit, +1 inside, -1 outside). The reference is another
digit in that style, so the network must read the style from the reference half and the
shape from the mask. `concat_loss` is flow matching on the target half; `concat_generate`
integrates the target half's velocity field with the reference and mask fixed.
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.adaptation.styles import TARGET_STYLES
from diffjax.fields import velocity_fields
from diffjax.solvers import sample

# The two stroke styles of the toy task (index 0 and 1 of a batch's `style`).
STROKE_STYLES = ("original", "thick")


def concat_inputs(reference, xt, mask):
  """reference, xt, mask (B, H, W, 1) -> (B, H, 2W, 2): channel 0 [reference | x_t],
  channel 1 [0 | mask]."""
  image = jnp.concatenate([reference, xt], axis=2)
  marks = jnp.concatenate([jnp.zeros_like(mask), mask], axis=2)
  return jnp.concatenate([image, marks], axis=3)


def target_half(output):
  """(B, H, 2W, C) -> (B, H, W, 1): channel 0 of the right (target) half."""
  return output[:, :, output.shape[2] // 2:, :1]


def stroke_style_bank(images):
  """(S, N, H, W, 1) the images (N, H, W, 1) in each of `STROKE_STYLES`."""
  return np.stack([TARGET_STYLES.get(s)(images) for s in STROKE_STYLES])


def stroke_transfer_batch(bank, key, batch_size, use_reference=True):
  """A batch of the toy task from a style bank (S, N, H, W, 1): (reference, mask, target,
  style (B,) int, digit index i (B,)). Target digit i and reference digit j (j != i) are drawn independently,
  style s uniformly; mask = +1 where the original digit i has ink. use_reference False
  blanks the reference (all -1, the background): the ablation without a reference."""
  k_i, k_j, k_s = jax.random.split(key, 3)
  n = bank.shape[1]
  i = jax.random.randint(k_i, (batch_size,), 0, n)
  j = (i + jax.random.randint(k_j, (batch_size,), 1, n)) % n
  style = jax.random.randint(k_s, (batch_size,), 0, bank.shape[0])
  target = bank[style, i]
  reference = bank[style, j] if use_reference else -jnp.ones_like(target)
  mask = jnp.where(bank[0, i] > 0, 1.0, -1.0)
  return reference, mask, target, style, i


def concat_velocity(model_apply, params, reference, mask):
  """predict(x_t (B, H, W, 1), t) -> the target half's velocity."""
  def predict(xt, t):
    return target_half(model_apply(params, concat_inputs(reference, xt, mask), t))
  return predict


def concat_loss(model_apply, path, bank, batch_size, use_reference=True):
  """The engine's loss(params, key, shard, step, batch): flow matching of the target half
  on the path (x0 ~ N(0, I)), the reference and mask given in the same input."""
  bank = jnp.asarray(bank)

  def loss(params, key, shard, step, batch=None):
    del shard, step, batch
    k_batch, k_t, k_x0 = jax.random.split(key, 3)
    reference, mask, x1, _, _ = stroke_transfer_batch(bank, k_batch, batch_size, use_reference)
    t = jax.random.uniform(k_t, (batch_size,))
    x0 = jax.random.normal(k_x0, x1.shape)
    xt = path.interpolate(t, x0, x1)
    velocity = concat_velocity(model_apply, params, reference, mask)(xt, t)
    value = jnp.mean((velocity - path.conditional_velocity(t, x0, x1)) ** 2)
    return value, {"flow_matching": value}
  return loss


def concat_generate(model_apply, params, path, reference, mask, key, solver="heun",
                    num_steps=20):
  """(B, H, W, 1) targets generated for reference and mask (B, H, W, 1)."""
  k_x0, k_sampler = jax.random.split(key)
  x0 = jax.random.normal(k_x0, reference.shape)
  fields = velocity_fields(concat_velocity(model_apply, params, reference, mask), path)
  return sample(solver, fields, path, x0, k_sampler, num_steps=num_steps).x
