"""The fine-tuning baseline of unlearning: the forgotten class's condition is re-taught
onto other classes' images (the "erased" model).

As in "Ablating Concepts in Text-to-Image Diffusion Models" (Kumari et al., ICCV 2023,
eq. 2, the model-based variant: the concept's condition is fitted to an anchor concept's
images) and in SFD's cross-class mapping ("Score Forgetting Distillation", eq. 8, with
real data instead of the teacher's score): the fine-tuning batch holds images of the kept
classes only, with their own labels, and a `fraction` of its rows relabelled to the
forgotten class with images of the override class (or of every kept class when override
is -1). The model's loss is otherwise its own (`diffjax.pipeline.Pipeline.loss`, condition
dropout included, so the unconditional model also stops seeing the forgotten class).
"""
import jax
import jax.numpy as jnp

from diffjax.errors import ConfigError
from diffjax.safety.digits_data import DIGITS_NUM_CLASSES, check_digit_class, digits_sampler

RANDOM_OVERRIDE = -1   # Every kept class, as SFD's override_class = -1.


def check_erasure(forget, override):
  """ConfigError (one line) for a forgotten class or an override out of range."""
  check_digit_class(forget, "erase.forget_class")
  if override != RANDOM_OVERRIDE:
    check_digit_class(override, "erase.override_class")
    if override == forget:
      raise ConfigError(f"erase.override_class={override} is the forgotten class: give "
                        f"another class or {RANDOM_OVERRIDE} (every kept class).")


def erase_sampler(forget: int, override: int = RANDOM_OVERRIDE, fraction: float = 0.1,
                  num_classes: int = DIGITS_NUM_CLASSES):
  """draw(key, n) -> (x1 (n, 8, 8, 1), labels (n,)): the erasing fine-tune's batch (module
  docstring): round(fraction n) rows labelled `forget` with images of `override` (or of any
  kept class), the rest kept-class images with their labels."""
  check_erasure(forget, override)
  kept = tuple(c for c in range(num_classes) if c != forget)
  draw_kept = digits_sampler(kept)
  draw_override = draw_kept if override == RANDOM_OVERRIDE else digits_sampler((override,))

  def draw(key, n):
    k_kept, k_override = jax.random.split(key)
    x1, labels = draw_kept(k_kept, n)
    count = int(round(fraction * n))
    if count:
      x1 = x1.at[:count].set(draw_override(k_override, count)[0])
      labels = labels.at[:count].set(jnp.int32(forget))
    return x1, labels

  return draw
