"""U-Net training step: diffjax (JAX, jit) against diffusers' UNet2DModel (PyTorch, CPU).

Both networks have the same channels, residual blocks per resolution, attention resolution
and batch, train on the same noise-prediction MSE with Adam, and run in this one process on
the same cores. Also reports the compiled step's peak temporary memory with and without
rematerialisation: the bytes of forward activations kept for the backward pass (the
residuals of `jax.vjp`, backend independent, what remat reduces), and XLA's own memory
analysis of the compiled step (temporary buffers; on CPU XLA does not shrink these with
remat, so they are reported for reference only).

  python -m benchmarks.unet [--quick]

Figures: speedup_vs_diffusers (torch step time / diffjax step time; target >= 2),
remat_activation_memory_ratio (saved activation bytes with remat / without).
"""
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from diffjax.models import build_model

COMMAND = "python -m benchmarks.unet" + (" --quick" if "--quick" in sys.argv else "")


def settings(quick):
  return dict(image_size=32, image_channels=3, channels=32 if quick else 64,
              channel_mults=(1, 2), num_res_blocks=1 if quick else 2, batch_size=16,
              steps=3 if quick else 10)


def _median_time(step, num_steps):
  times = []
  for _ in range(num_steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _model(s, remat):
  return build_model("unet", (s["image_size"], s["image_size"], s["image_channels"]),
                     channels=s["channels"], channel_mults=s["channel_mults"],
                     num_res_blocks=s["num_res_blocks"], attention_resolutions=(16,),
                     dropout=0.0, remat=remat)


def saved_activation_bytes(s, remat):
  """Bytes of the residuals jax.vjp keeps from the forward pass for the backward pass."""
  model = _model(s, remat)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
  x = jnp.zeros((s["batch_size"], s["image_size"], s["image_size"], s["image_channels"]))
  loss = lambda p: jnp.mean(model.apply(p, x, jnp.full((s["batch_size"],), 0.5)) ** 2)
  residuals = jax.eval_shape(lambda p: jax.vjp(loss, p)[1], params)
  return int(sum(np.prod(r.shape) * r.dtype.itemsize for r in jax.tree.leaves(residuals)))


def diffjax_step(s, remat):
  """Returns (compiled step, state, example batch)."""
  model = _model(s, remat)
  optimizer = optax.adam(1e-4)

  def step(params, opt_state, x, t, noise):
    def loss(p):
      return jnp.mean((model.apply(p, x, t) - noise) ** 2)
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  params = jax.jit(model.init)(jax.random.PRNGKey(0))
  opt_state = optimizer.init(params)
  rng = np.random.default_rng(0)
  shape = (s["batch_size"], s["image_size"], s["image_size"], s["image_channels"])
  batch = (jnp.asarray(rng.standard_normal(shape), jnp.float32),
           jnp.asarray(rng.uniform(size=s["batch_size"]), jnp.float32),
           jnp.asarray(rng.standard_normal(shape), jnp.float32))
  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, *batch).compile()
  return compiled, (params, opt_state), batch


def time_diffjax(s):
  compiled, state, batch = diffjax_step(s, remat=False)
  holder = {"state": state}

  def run():
    params, opt_state, loss = compiled(*holder["state"], *batch)
    loss.block_until_ready()
    holder["state"] = (params, opt_state)

  run()
  run()
  return _median_time(run, s["steps"]), compiled


def time_diffusers(s):
  import torch  # pylint: disable=g-import-not-at-top
  from diffusers import UNet2DModel  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count())
  mults = s["channel_mults"]
  model = UNet2DModel(
      sample_size=s["image_size"], in_channels=s["image_channels"],
      out_channels=s["image_channels"], layers_per_block=s["num_res_blocks"],
      block_out_channels=tuple(s["channels"] * m for m in mults),
      down_block_types=("DownBlock2D", "AttnDownBlock2D"),
      up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
  shape = (s["batch_size"], s["image_channels"], s["image_size"], s["image_size"])
  x, noise = torch.randn(shape), torch.randn(shape)
  t = torch.randint(0, 1000, (s["batch_size"],))

  def run():
    optimizer.zero_grad()
    loss = torch.mean((model(x, t).sample - noise) ** 2)
    loss.backward()
    optimizer.step()

  run()
  run()
  num_params = sum(p.numel() for p in model.parameters())
  return _median_time(run, s["steps"]), num_params


def peak_bytes(compiled):
  analysis = compiled.memory_analysis()
  return int(analysis.temp_size_in_bytes) if analysis is not None else None


def main(argv=None):
  args = common.parse_args(__doc__.splitlines()[0], argv)
  s = settings(args.quick)
  jax_time, compiled = time_diffjax(s)
  memory = peak_bytes(compiled)
  remat_compiled, _, _ = diffjax_step(s, remat=True)
  remat_memory = peak_bytes(remat_compiled)
  saved, saved_remat = saved_activation_bytes(s, False), saved_activation_bytes(s, True)
  torch_time, torch_params = time_diffusers(s)
  figures = {"speedup_vs_diffusers": torch_time / jax_time,
             "remat_activation_memory_ratio": saved_remat / saved}
  mib = lambda b: b / 2 ** 20 if b else "n/a"
  rows = [["diffjax (jit)", f"{1000 * jax_time:.1f}", mib(saved), mib(memory)],
          ["diffjax (jit, remat)", "", mib(saved_remat), mib(remat_memory)],
          ["diffusers UNet2DModel (torch CPU)", f"{1000 * torch_time:.1f}", "", ""]]
  markdown = (
      f"U-Net: {s['image_size']}x{s['image_size']}x{s['image_channels']}, channels "
      f"{s['channels']} x {s['channel_mults']}, {s['num_res_blocks']} residual blocks per "
      f"level, attention at 16x16, batch {s['batch_size']}, Adam; median of {s['steps']} "
      f"steps.\n\n"
      + common.markdown_table(["implementation", "train step (ms)",
                               "saved activations (MiB)", "XLA CPU temp buffers (MiB)"],
                              rows)
      + f"\n\nspeedup_vs_diffusers = {figures['speedup_vs_diffusers']:.2f} (target >= 2); "
      f"remat keeps {figures['remat_activation_memory_ratio']:.2f}x the activations.")
  details = {"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
             "diffjax_step_seconds": jax_time, "diffusers_step_seconds": torch_time,
             "diffusers_num_params": torch_params, "saved_activation_bytes": saved,
             "saved_activation_bytes_remat": saved_remat, "xla_temp_bytes": memory,
             "xla_temp_bytes_remat": remat_memory}
  common.write_results("unet", figures, details, markdown, args.quick, COMMAND)


if __name__ == "__main__":
  main()
