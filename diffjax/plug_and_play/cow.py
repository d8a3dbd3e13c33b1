"""Cyclic One-Way Diffusion (COW) and its SDEdit baseline: a pasted "seed" patch kept
while a trained model generates the rest of the image around it, learning-free.

"Diffusion in Diffusion: Cyclic One-Way Diffusion for Text-Vision-Conditioned Generation"
(Wang et al., ICLR 2024, Sec. 3): the seed region is re-imposed at the current noise level
after every denoising step, so information flows one way, from the seed into the rest of
the image and never back ("one-way"); and the denoising is cycled: between the noise levels
t_a < t_b the state is denoised from t_a to t_b, then noised back from t_b to t_a by the
forward transition, `cycles` times, so the region around the seed is regenerated until it
agrees with it ("cyclic"), before the last stretch to the data (time 1) completes the
details. On a path with the data at t = 1 and the source x0 at t = 0:
  1. x <- the sampler from the source draw at t = 0 to t_b, the seed re-imposed;
  2. `cycles` times: x <- q(x_{t_a} | x_{t_b}) (`renoise_back`), the sampler t_a -> t_b
     with the seed re-imposed;
  3. the sampler t_b -> 1, the seed re-imposed; at t = 1 the patch is the seed exactly.
The seed is re-imposed by input guidance with fresh noise each step
(`diffjax.guidance.input_guidance`, renoise=True, RePaint's replacement). t_a and t_b are
snapped to the sampler's grid, so with an empty patch and no cycles COW runs the plain
sampler's steps (tested bit for bit).

SDEdit ("SDEdit: Guided Image Synthesis and Editing with Stochastic Differential
Equations", Meng et al., ICLR 2022), the baseline: the canvas (seed pasted on a blank
background) is noised to t_s and denoised once to the data, nothing re-imposed.

Shapes: seed and canvas (B, ...) like the state; mask (1 or B, ...) 1 on the patch.
"""
import jax
import jax.numpy as jnp

from diffjax.core import require_gaussian
from diffjax.errors import ConfigError
from diffjax.guidance.input_guidance import check_mask, input_guidance
from diffjax.guidance.steered import renoise_back
from diffjax.solvers import SAMPLERS, Guidance, sample
from diffjax.solvers.grids import time_grid


def check_patch(top, left, size, shape):
  """Refuses a square patch (top, left, size) that is not inside images of shape
  (H, W, C)."""
  h, w = shape[:2]
  if not (size >= 1 and 0 <= top and 0 <= left and top + size <= h and left + size <= w):
    raise ConfigError(f"The seed patch at (top={top}, left={left}) of size {size} is not "
                      f"inside the {h}x{w} image: need size >= 1, 0 <= top <= {h} - size "
                      f"and 0 <= left <= {w} - size.")


def patch_mask(top, left, size, shape):
  """(H, W, C) float32: 1 on the square patch, 0 elsewhere (an empty patch: size 0)."""
  mask = jnp.zeros(shape, jnp.float32)
  if size == 0:
    return mask
  check_patch(top, left, size, shape)
  return mask.at[top:top + size, left:left + size].set(1.0)


def grid(solver, num_steps, path):
  """The sampler's default grid as constants, also inside a traced function: the cycle's
  times index into it."""
  with jax.ensure_compile_time_eval():
    return time_grid(SAMPLERS.get(solver).default_grid, num_steps, path)


def grid_index(ts, t):
  """The index of the grid time nearest t (a Python float)."""
  with jax.ensure_compile_time_eval():
    return int(jnp.argmin(jnp.abs(ts - t)))


def check_cycle(cycle_start, cycle_end, cycles):
  if not 0.0 <= cycle_start < cycle_end <= 1.0:
    raise ConfigError(f"COW cycles between noise levels 0 <= t_a < t_b <= 1; got t_a="
                      f"{cycle_start}, t_b={cycle_end}.")
  if not (isinstance(cycles, int) and cycles >= 0):
    raise ConfigError(f"COW's number of cycles must be an integer >= 0; got {cycles!r}.")


def cyclic_one_way(solver, fields, path, seed, mask, x0, key, *, num_steps,
                   cycle_start=0.3, cycle_end=0.6, cycles=3, **options):
  """COW (module docstring) with the registered sampler `solver` on its default grid of
  num_steps steps: x0 (B, ...) the source draw, seed (B, ...) whose values inside `mask`
  are kept; t_a = cycle_start, t_b = cycle_end (snapped to the grid). -> (B, ...)."""
  check_cycle(cycle_start, cycle_end, cycles)
  check_mask(jnp.shape(mask), jnp.shape(x0))
  view = require_gaussian(path, "Cyclic One-Way Diffusion")
  ts = grid(solver, num_steps, path)
  i_a, i_b = grid_index(ts, cycle_start), grid_index(ts, cycle_end)
  if i_a >= i_b and cycles:
    raise ConfigError(f"COW's t_a={cycle_start} and t_b={cycle_end} fall on the same step "
                      f"of the {num_steps}-step grid; take them further apart or more steps.")
  one_way = Guidance(wrap=lambda stepper, bound: input_guidance(stepper, path, seed, mask,
                                                                renoise=True))

  def run(x, segment, k):
    return sample(solver, fields, path, x, k, num_steps=len(segment) - 1, grid=segment,
                  guidance=one_way, **options).x

  keys = jax.random.split(key, 2 * cycles + 2)
  x = run(x0, ts[:i_b + 1], keys[0])
  for c in range(cycles):
    x = renoise_back(view, x, ts[i_b], ts[i_a], keys[2 * c + 1])
    x = run(x, ts[i_a:i_b + 1], keys[2 * c + 2])
  return run(x, ts[i_b:], keys[-1])


def sdedit(solver, fields, path, canvas, x0, key, *, num_steps, start=0.4, **options):
  """SDEdit: canvas (B, ...) noised to time `start` along the path with the source draw x0,
  then the sampler to the data on the steps of its num_steps grid from there."""
  if not 0.0 <= start < 1.0:
    raise ConfigError(f"SDEdit starts at a noise level in [0, 1); got {start}.")
  ts = grid(solver, num_steps, path)
  i_s = grid_index(ts, start)
  noised = path.interpolate(jnp.full(canvas.shape[:1], ts[i_s]), x0, canvas)
  return sample(solver, fields, path, noised, key, num_steps=num_steps - i_s,
                grid=ts[i_s:], **options).x
