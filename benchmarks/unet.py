"""U-Net training step: diffjax (JAX, jit) against diffusers' UNet2DModel (PyTorch, CPU).

  python -m benchmarks.unet [--quick] [--xla-defaults]

Both networks have the same architecture: channels, residual blocks per resolution,
attention at 16x16 (and in the middle block) with one head, GroupNorm with 8 groups
everywhere, nearest-neighbour + convolution upsampling and strided-convolution
downsampling, the same parameter count; both train on the same noise-prediction MSE with
Adam, in float32, in this one process on the same cores. A step is forward + backward +
Adam update, timed after warm-up (compilation excluded on our side), as the median over
interleaved rounds (ours, then theirs, repeated) so that both see the same machine load;
ours is the library's train step (`diffjax.train.make_train_step`, without EMA).
PyTorch runs with its best thread count: 1 and 2 threads are both timed; the faster counts.

diffusers' default `attention_head_dim=8` would split each attention layer into channels / 8
heads while our default is one head; the headline compares one head on both sides
(`attention_head_dim=None` there), and the details also time both with 8-dimensional heads
(diffusers' default, `num_heads=channels / 8` here). Differences left do not change the
work: GroupNorm epsilon (1e-6 here, 1e-5 there), residual rescaling by 1/sqrt(2) here,
times in [0, 1] here and integer timesteps there, one fused q/k/v projection here and three
there (the same parameters).

Our side runs with `diffjax.backend.configure_cpu()` (XLA:CPU convolutions on its
multi-threaded Eigen kernels rather than single-threaded YNNPACK; see that module);
`--xla-defaults` leaves XLA's defaults instead.

Also reports the compiled step's peak temporary memory with and without
rematerialisation: the bytes of forward activations kept for the backward pass (the
residuals of `jax.vjp`, backend independent, what remat reduces), and XLA's own memory
analysis of the compiled step (temporary buffers; on CPU XLA does not shrink these with
remat, so they are reported for reference only).

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
from diffjax import backend
from diffjax.models import build_model
from diffjax.train import create_train_state, make_train_step

GROUPS = 8  # GroupNorm groups on both sides (diffusers' norm_num_groups, our max_groups).
HEAD_DIM = 8  # diffusers' default attention_head_dim, for the secondary comparison.


def settings(quick):
  return dict(image_size=32, image_channels=3, channels=32 if quick else 64,
              channel_mults=(1, 2), num_res_blocks=1 if quick else 2, batch_size=16,
              rounds=3, steps=4 if quick else 3)


def _attention_channels(s):
  return s["channels"] * s["channel_mults"][-1]


def _model(s, remat, num_heads=1):
  return build_model("unet", (s["image_size"], s["image_size"], s["image_channels"]),
                     channels=s["channels"], channel_mults=s["channel_mults"],
                     num_res_blocks=s["num_res_blocks"], attention_resolutions=(16,),
                     dropout=0.0, remat=remat, max_groups=GROUPS, num_heads=num_heads)


def _num_params(tree):
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(tree)))


def saved_activation_bytes(s, remat):
  """Bytes of the residuals jax.vjp keeps from the forward pass for the backward pass."""
  model = _model(s, remat)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0))
  x = jnp.zeros((s["batch_size"], s["image_size"], s["image_size"], s["image_channels"]))
  loss = lambda p: jnp.mean(model.apply(p, x, jnp.full((s["batch_size"],), 0.5)) ** 2)
  residuals = jax.eval_shape(lambda p: jax.vjp(loss, p)[1], params)
  return int(sum(np.prod(r.shape) * r.dtype.itemsize for r in jax.tree.leaves(residuals)))


def diffjax_step(s, remat, num_heads=1):
  """Returns (compiled train step, state, example batch): the library's train step
  (`diffjax.train.make_train_step`: gradient, Adam update, no EMA), jitted with the state
  donated."""
  model = _model(s, remat, num_heads)
  optimizer = optax.adam(1e-4)

  def loss(params, key, shard, step, batch):
    del key, shard, step
    x, t, noise = batch
    return jnp.mean((model.apply(params, x, t) - noise) ** 2), {}

  step = make_train_step(loss, optimizer)
  state = jax.jit(lambda key: create_train_state(model.init, optimizer, key))(
      jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  shape = (s["batch_size"], s["image_size"], s["image_size"], s["image_channels"])
  batch = (jnp.asarray(rng.standard_normal(shape), jnp.float32),
           jnp.asarray(rng.uniform(size=s["batch_size"]), jnp.float32),
           jnp.asarray(rng.standard_normal(shape), jnp.float32))
  compiled = jax.jit(lambda state, batch: step(state, batch, state.key),
                     donate_argnums=0).lower(state, batch).compile()
  return compiled, state, batch


def diffjax_runner(s, num_heads=1):
  """Returns (run one step, compiled step, parameter count); warmed up."""
  compiled, state, batch = diffjax_step(s, remat=False, num_heads=num_heads)
  holder = {"state": state}
  num_params = _num_params(state.params)

  def run():
    holder["state"], metrics = compiled(holder["state"], batch)
    metrics["loss"].block_until_ready()

  run()
  run()
  return run, compiled, num_params


def diffusers_runner(s, head_dim=None):
  """Returns (run one step, parameter count, attention heads per layer); warmed up."""
  import torch  # pylint: disable=g-import-not-at-top
  from diffusers import UNet2DModel  # pylint: disable=g-import-not-at-top
  from diffusers.models.attention_processor import Attention  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  mults = s["channel_mults"]
  model = UNet2DModel(
      sample_size=s["image_size"], in_channels=s["image_channels"],
      out_channels=s["image_channels"], layers_per_block=s["num_res_blocks"],
      block_out_channels=tuple(s["channels"] * m for m in mults),
      down_block_types=("DownBlock2D", "AttnDownBlock2D"),
      up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=GROUPS,
      attention_head_dim=head_dim)
  heads = sorted({m.heads for m in model.modules() if isinstance(m, Attention)})
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
  return run, num_params, heads


def torch_threads(threads):
  """A function that sets PyTorch's intra-op thread count to `threads`."""
  import torch  # pylint: disable=g-import-not-at-top
  return lambda: torch.set_num_threads(threads)


def _cpu_ticks():
  with open("/proc/stat") as f:
    ticks = [int(v) for v in f.readline().split()[1:9]]
  return sum(ticks), ticks[3]


def interleaved_medians(runners, rounds, steps):
  """Median seconds per step of each runner (name -> (prepare, step)), timed in turns.

  Also returns the CPU cores other processes used meanwhile (from /proc/stat, or None).
  """
  times = {name: [] for name in runners}
  try:
    total0, idle0 = _cpu_ticks()
  except OSError:
    total0 = None
  own0, wall0 = sum(os.times()[:2]), time.perf_counter()
  for _ in range(rounds):
    for name, (prepare, run) in runners.items():
      prepare()
      run()  # The first step after switching sides warms caches and threads up.
      for _ in range(steps):
        start = time.perf_counter()
        run()
        times[name].append(time.perf_counter() - start)
  others = None
  if total0 is not None:
    total1, idle1 = _cpu_ticks()
    busy = ((total1 - total0) - (idle1 - idle0)) / os.sysconf("SC_CLK_TCK")
    own = sum(os.times()[:2]) - own0
    others = max(0.0, (busy - own) / (time.perf_counter() - wall0))
  return {name: float(np.median(t)) for name, t in times.items()}, times, others


def peak_bytes(compiled):
  analysis = compiled.memory_analysis()
  return int(analysis.temp_size_in_bytes) if analysis is not None else None


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  xla_defaults = "--xla-defaults" in argv
  args = common.parse_args(__doc__.splitlines()[0], [a for a in argv if a != "--xla-defaults"])
  command = ("python -m benchmarks.unet" + (" --quick" if args.quick else "")
             + (" --xla-defaults" if xla_defaults else ""))
  s = settings(args.quick)
  if not xla_defaults:
    backend.configure_cpu()  # Before the first JAX computation creates the CPU backend.
  jax_run, compiled, jax_params = diffjax_runner(s)
  memory = peak_bytes(compiled)
  torch_run, torch_params, torch_heads = diffusers_runner(s)
  jax_run8, _, _ = diffjax_runner(s, num_heads=_attention_channels(s) // HEAD_DIM)
  torch_run8, _, torch_heads8 = diffusers_runner(s, head_dim=HEAD_DIM)
  nothing = lambda: None
  runners = {"diffjax": (nothing, jax_run),
             "diffusers_2_threads": (torch_threads(2), torch_run),
             "diffusers_1_thread": (torch_threads(1), torch_run),
             "diffjax_8dim_heads": (nothing, jax_run8),
             "diffusers_8dim_heads_2_threads": (torch_threads(2), torch_run8),
             "diffusers_8dim_heads_1_thread": (torch_threads(1), torch_run8)}
  medians, all_times, others = interleaved_medians(runners, s["rounds"], s["steps"])
  torch_threads(os.cpu_count())()
  jax_time = medians["diffjax"]
  torch_time = min(medians["diffusers_2_threads"], medians["diffusers_1_thread"])
  torch_time8 = min(medians["diffusers_8dim_heads_2_threads"],
                    medians["diffusers_8dim_heads_1_thread"])

  remat_compiled, _, _ = diffjax_step(s, remat=True)
  remat_memory = peak_bytes(remat_compiled)
  saved, saved_remat = saved_activation_bytes(s, False), saved_activation_bytes(s, True)
  figures = {"speedup_vs_diffusers": torch_time / jax_time,
             "remat_activation_memory_ratio": saved_remat / saved}
  mib = lambda b: b / 2 ** 20 if b else "n/a"
  ms = lambda name: f"{1000 * medians[name]:.1f}"
  heads8 = _attention_channels(s) // HEAD_DIM
  rows = [["diffjax (jit)", "1", ms("diffjax"), mib(saved), mib(memory)],
          ["diffjax (jit, remat)", "1", "", mib(saved_remat), mib(remat_memory)],
          ["diffusers UNet2DModel (torch, 2 threads)", "1", ms("diffusers_2_threads"), "", ""],
          ["diffusers UNet2DModel (torch, 1 thread)", "1", ms("diffusers_1_thread"), "", ""],
          ["diffjax (jit)", str(heads8), ms("diffjax_8dim_heads"), "", ""],
          ["diffusers UNet2DModel (torch, 2 threads)", str(heads8),
           ms("diffusers_8dim_heads_2_threads"), "", ""],
          ["diffusers UNet2DModel (torch, 1 thread)", str(heads8),
           ms("diffusers_8dim_heads_1_thread"), "", ""]]
  flags = os.environ.get("XLA_FLAGS", "") or "(none)"
  markdown = (
      f"U-Net: {s['image_size']}x{s['image_size']}x{s['image_channels']}, channels "
      f"{s['channels']} x {s['channel_mults']}, {s['num_res_blocks']} residual blocks per "
      f"level, attention at 16x16, GroupNorm with {GROUPS} groups, batch "
      f"{s['batch_size']}, Adam, float32; {jax_params} parameters (diffjax), "
      f"{torch_params} (diffusers). Median of {s['rounds']} interleaved rounds of "
      f"{s['steps']} steps; other processes used {others if others is None else round(others, 2)}"
      f" cores meanwhile. XLA_FLAGS: `{flags}`.\n\n"
      + common.markdown_table(["implementation", "attention heads", "train step (ms)",
                               "saved activations (MiB)", "XLA CPU temp buffers (MiB)"],
                              rows)
      + f"\n\nspeedup_vs_diffusers = {figures['speedup_vs_diffusers']:.2f} (target >= 2; one "
      f"attention head on both sides, PyTorch at its faster thread count); with "
      f"{heads8} heads of {HEAD_DIM} channels on both sides (diffusers' default head size): "
      f"{torch_time8 / medians['diffjax_8dim_heads']:.2f}. Remat keeps "
      f"{figures['remat_activation_memory_ratio']:.2f}x the activations.")
  details = {"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
             "xla_flags": os.environ.get("XLA_FLAGS", ""),
             "diffjax_step_seconds": jax_time, "diffusers_step_seconds": torch_time,
             "median_step_seconds": medians,
             "step_seconds": {k: [float(t) for t in v] for k, v in all_times.items()},
             "other_processes_cores": others,
             "speedup_vs_diffusers_8dim_heads": torch_time8 / medians["diffjax_8dim_heads"],
             "diffjax_num_params": jax_params, "diffusers_num_params": torch_params,
             "diffusers_attention_heads": torch_heads,
             "diffusers_attention_heads_8dim": torch_heads8,
             "saved_activation_bytes": saved,
             "saved_activation_bytes_remat": saved_remat, "xla_temp_bytes": memory,
             "xla_temp_bytes_remat": remat_memory}
  common.write_results("unet" + ("_quick" if args.quick else ""), figures, details, markdown,
                       args.quick, command)


if __name__ == "__main__":
  main()
