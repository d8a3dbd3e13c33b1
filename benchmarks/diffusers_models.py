"""Same architecture, same weights: diffjax's diffusers_unet / diffusers_dit against
diffusers' UNet2DModel / DiTTransformer2DModel (PyTorch, CPU).

  python -m benchmarks.diffusers_models [--quick]

Each diffusers model is built in PyTorch (seeded), saved with `save_pretrained` and
converted by `diffjax.interop.from_diffusers`, so both sides compute the same function
with the same parameters (checked: outputs agree to 1e-4 relative). Per step, at batch
1 / 16 / 64, in float32:
  sampling  one network evaluation (PyTorch under no_grad, eval mode; diffjax jitted);
  training  forward + backward of the noise-prediction MSE w.r.t. every parameter
            (`loss.backward()` / `jax.value_and_grad`; no optimizer update on either side:
            diffjax's public train step is not on this branch, so the engine's full step
            is not timed here).
And end to end: DDIM with 50 steps at batch 16 from the same noise (diffusers'
DDIMPipeline, a Python loop over the network; diffjax's `sample("ddim", ...)`, one
compiled scan), compilation excluded and reported apart.

The diffjax side runs twice, in two worker processes: with `diffjax.backend.configure_cpu()`
(XLA:CPU convolutions on Eigen's multi-threaded kernels) and with XLA's defaults (XLA reads
its flags once per process). Each worker times both sides interleaved (round after round,
median per step) so that both see the same machine load; PyTorch is timed at 2 and at 1
intra-op threads and the faster counts. Ratios are diffusers time / diffjax time (> 1:
diffjax faster). The results record torch's version and build, jax's, the load average
(`uptime`) before and after, and the CPU other processes used meanwhile. Figures from a
shared, loaded machine are unreliable: rerun on a quiet one.

Also (the same workers) a micro-benchmark of one 3x3 convolution (batch 16, 32x32, 64 -> 64
channels) in the lowerings XLA offers: NHWC and NCHW `conv_general_dilated` and im2col
(nine shifted views concatenated, one matrix product), forward and forward + backward,
against PyTorch's (oneDNN) at 2 and 1 threads.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import common
from benchmarks.unet import interleaved_medians, torch_threads

BATCHES = (1, 16, 64)
WORKERS = ("configure_cpu", "xla_defaults")


def settings(quick):
  if quick:
    unet = dict(sample_size=16, block_out_channels=(32, 64, 64), layers_per_block=1,
                down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
    dit = dict(sample_size=16, num_attention_heads=4, attention_head_dim=32, num_layers=2)
    return dict(unet=unet, dit=dit, rounds=2, steps=2, ddim_batch=16, ddim_rounds=1)
  # google/ddpm-cifar10-32's structure at half width (8.9M parameters instead of 35.7M).
  unet = dict(sample_size=32, block_out_channels=(64, 128, 128, 128), layers_per_block=2,
              down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D",
                                "DownBlock2D"),
              up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
  dit = dict(sample_size=32, num_attention_heads=6, attention_head_dim=64, num_layers=6)
  return dict(unet=unet, dit=dit, rounds=3, steps=3, ddim_batch=16, ddim_rounds=2)


def torch_models(s, folder):
  """The seeded PyTorch models, saved to folder/unet and folder/dit."""
  import torch  # pylint: disable=g-import-not-at-top
  import diffusers  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  unet = diffusers.UNet2DModel(
      in_channels=3, out_channels=3, norm_num_groups=32, attention_head_dim=None, flip_sin_to_cos=False, freq_shift=1,
      downsample_padding=0, norm_eps=1e-6, **s["unet"]).eval()
  dit = diffusers.DiTTransformer2DModel(in_channels=4, out_channels=8, patch_size=2,
                                        num_embeds_ada_norm=1000, **s["dit"]).eval()
  for name, module in (("unet", unet), ("dit", dit)):
    module.save_pretrained(os.path.join(folder, name))
  diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False).save_pretrained(
      os.path.join(folder, "unet"))
  return {"unet": unet, "dit": dit}


def _inputs(module, batch):
  import torch  # pylint: disable=g-import-not-at-top
  config = module.config
  generator = torch.Generator().manual_seed(batch)
  x = torch.randn(batch, config.in_channels, config.sample_size, config.sample_size,
                  generator=generator)
  k = torch.randint(0, 1000, (batch,), generator=generator)
  labels = (torch.randint(0, 1000, (batch,), generator=generator)
            if "num_embeds_ada_norm" in config else None)
  return x, k, labels


def torch_runners(module, batch):
  """(sample step, train step) of the PyTorch model at `batch`."""
  import torch  # pylint: disable=g-import-not-at-top
  x, k, labels = _inputs(module, batch)
  channels = module.config.in_channels
  noise = torch.randn_like(x)

  def sample():
    with torch.no_grad():
      module(x, k, class_labels=labels)

  def train():
    module.zero_grad(set_to_none=True)
    out = module(x, k, class_labels=labels).sample[:, :channels]
    torch.mean((out - noise) ** 2).backward()

  return sample, train


def diffjax_runners(pretrained, module, batch):
  """(sample step, train step, compile seconds, max relative difference to PyTorch)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from diffjax.paths.ddpm import time_of_timestep  # pylint: disable=g-import-not-at-top
  x, k, labels = _inputs(module, batch)
  xj = jnp.asarray(x.numpy().transpose(0, 2, 3, 1))
  tj = jnp.asarray(time_of_timestep(k.numpy(), 1000), jnp.float32)
  cond = None if labels is None else jnp.asarray(labels.numpy())
  noise = jnp.asarray(np.random.default_rng(batch).standard_normal(xj.shape), jnp.float32)
  model, params = pretrained.model, pretrained.params

  def loss(p):
    return jnp.mean((model.apply(p, xj, tj, cond) - noise) ** 2)

  start = time.perf_counter()
  forward = jax.jit(lambda p: model.apply(p, xj, tj, cond, full_output=True)
                    ).lower(params).compile()
  backward = jax.jit(jax.value_and_grad(loss)).lower(params).compile()
  compile_seconds = time.perf_counter() - start
  with torch.no_grad():
    theirs = module(x, k, class_labels=labels).sample.numpy().transpose(0, 2, 3, 1)
  ours = np.asarray(forward(params))
  difference = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
  sample = lambda: jax.block_until_ready(forward(params))
  train = lambda: jax.block_until_ready(backward(params))
  return sample, train, compile_seconds, difference


def ddim_runners(folder, module, batch):
  """(diffusers DDIMPipeline run, diffjax compiled DDIM run, compile seconds, max abs
  difference of the outputs), 50 steps from the same noise."""
  import diffusers  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from diffjax import runs  # pylint: disable=g-import-not-at-top
  from diffjax.paths import diffusers_grid, read_schedule  # pylint: disable=g-import-not-at-top
  from diffjax.solvers import sample  # pylint: disable=g-import-not-at-top
  pipeline = diffusers.DDIMPipeline(
      unet=module, scheduler=diffusers.DDIMScheduler.from_pretrained(folder))
  pipeline.set_progress_bar_config(disable=True)
  size, channels = module.config.sample_size, module.config.in_channels
  noise = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(0))
  run = runs.from_diffusers(folder)
  grid = jnp.asarray(diffusers_grid(50, read_schedule(folder)))
  x0 = jnp.asarray(noise.numpy().transpose(0, 2, 3, 1))
  start = time.perf_counter()
  compiled = jax.jit(lambda params, x0: sample(
      "ddim", run.pipeline.fields(params), run.path, x0, num_steps=50, grid=grid).x
                     ).lower(run.params, x0).compile()
  compile_seconds = time.perf_counter() - start
  theirs_holder = {}

  def theirs():
    theirs_holder["x"] = pipeline(batch_size=batch, generator=torch.Generator().manual_seed(0),
                                  num_inference_steps=50, output_type="np").images

  def ours():
    return jax.block_until_ready(compiled(run.params, x0))

  theirs()
  ours_image = np.clip(np.asarray(ours()) / 2 + 0.5, 0, 1)
  difference = float(np.abs(ours_image - theirs_holder["x"]).max())
  return theirs, ours, compile_seconds, difference


def conv_runners():
  """name -> timed function of the convolution micro-benchmark (module docstring)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 32, 32, 64))
  w = 0.05 * jax.random.normal(jax.random.PRNGKey(1), (3, 3, 64, 64))
  pad = ((1, 1), (1, 1))

  def nhwc(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), pad,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def nchw(x, w):
    return jax.lax.conv_general_dilated(x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1),
                                        (1, 1), pad).transpose(0, 2, 3, 1)

  def im2col(x, w):
    b, h, width, c = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    columns = jnp.concatenate([padded[:, i:i + h, j:j + width] for i in range(3)
                               for j in range(3)], axis=-1)
    return (columns.reshape(-1, 9 * c) @ w.reshape(9 * c, -1)).reshape(b, h, width, -1)

  reference = jax.jit(nhwc)(x, w)
  runners = {}
  for name, conv in (("nhwc", nhwc), ("nchw", nchw), ("im2col", im2col)):
    np.testing.assert_allclose(jax.jit(conv)(x, w), reference, rtol=1e-4, atol=1e-4)
    forward = jax.jit(conv)
    both = jax.jit(jax.grad(lambda x, w, conv=conv: jnp.sum(conv(x, w) ** 2), (0, 1)))
    runners[f"conv_{name}_forward"] = lambda f=forward: jax.block_until_ready(f(x, w))
    runners[f"conv_{name}_forward_backward"] = lambda f=both: jax.block_until_ready(f(x, w))
  return runners


def torch_conv_runners():
  """The same convolution in PyTorch (NCHW, oneDNN): forward, forward + backward."""
  import torch  # pylint: disable=g-import-not-at-top
  x = torch.randn(16, 64, 32, 32, requires_grad=True)
  conv = torch.nn.Conv2d(64, 64, 3, padding=1)

  def forward():
    with torch.no_grad():
      conv(x)

  def both():
    x.grad = None
    conv.zero_grad(set_to_none=True)
    torch.sum(conv(x) ** 2).backward()

  return forward, both


def _uptime():
  return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def worker(quick, configured, output):
  """Times everything in this process (diffjax with configure_cpu() or XLA's defaults)."""
  if configured:
    from diffjax import backend  # pylint: disable=g-import-not-at-top
    backend.configure_cpu()   # Before the first JAX computation creates the CPU backend.
  import jax  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from diffjax.interop import from_diffusers  # pylint: disable=g-import-not-at-top
  s = settings(quick)
  record = {"uptime_before": _uptime(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "jax": jax.__version__, "steps": {}, "compile_seconds": {},
            "relative_difference": {}}
  nothing = lambda: None
  with tempfile.TemporaryDirectory() as folder:
    modules = torch_models(s, folder)
    for name, module in modules.items():
      pretrained = from_diffusers(os.path.join(folder, name))
      for batch in BATCHES:
        runners = {}
        t_sample, t_train = torch_runners(module, batch)
        j_sample, j_train, seconds, difference = diffjax_runners(pretrained, module, batch)
        key = f"{name}_b{batch}"
        record["compile_seconds"][key] = seconds
        record["relative_difference"][key] = difference
        for threads in (2, 1):
          runners[f"{key}_sample_diffusers_{threads}t"] = (torch_threads(threads), t_sample)
          runners[f"{key}_train_diffusers_{threads}t"] = (torch_threads(threads), t_train)
        runners[f"{key}_sample_diffjax"] = (nothing, j_sample)
        runners[f"{key}_train_diffjax"] = (nothing, j_train)
        medians, _, others = interleaved_medians(runners, s["rounds"], s["steps"])
        record["steps"].update(medians)
        record.setdefault("other_processes_cores", {})[key] = others
    theirs, ours, seconds, difference = ddim_runners(os.path.join(folder, "unet"),
                                                     modules["unet"], s["ddim_batch"])
    record["compile_seconds"]["ddim"] = seconds
    record["relative_difference"]["ddim_abs"] = difference
    runners = {"ddim_diffusers_2t": (torch_threads(2), theirs),
               "ddim_diffusers_1t": (torch_threads(1), theirs),
               "ddim_diffjax": (nothing, ours)}
    medians, _, others = interleaved_medians(runners, s["ddim_rounds"], 1)
    record["steps"].update(medians)
    record["other_processes_cores"]["ddim"] = others
  runners = {k: (nothing, v) for k, v in conv_runners().items()}
  forward, both = torch_conv_runners()
  for threads in (2, 1):
    runners[f"conv_torch_{threads}t_forward"] = (torch_threads(threads), forward)
    runners[f"conv_torch_{threads}t_forward_backward"] = (torch_threads(threads), both)
  medians, _, _ = interleaved_medians(runners, s["rounds"], 5)
  record["steps"].update(medians)
  record["uptime_after"] = _uptime()
  record["torch"] = {"version": torch.__version__, "build": torch.__config__.show(),
                     "threads_default": torch.get_num_threads()}
  with open(output, "w") as f:
    json.dump(record, f)


def _ratio(steps, theirs, ours):
  best = min(steps[f"{theirs}_2t"], steps[f"{theirs}_1t"])
  return best / steps[ours]


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  worker_flag = [a for a in argv if a.startswith("--worker=")]
  args = common.parse_args(__doc__.splitlines()[0],
                           [a for a in argv if not a.startswith(("--worker=", "--output="))])
  if worker_flag:
    output = [a for a in argv if a.startswith("--output=")][0].split("=", 1)[1]
    worker(args.quick, worker_flag[0].split("=", 1)[1] == "configure_cpu", output)
    return
  command = "python -m benchmarks.diffusers_models" + (" --quick" if args.quick else "")
  records = {}
  with tempfile.TemporaryDirectory() as scratch:
    for name in WORKERS:
      output = os.path.join(scratch, f"{name}.json")
      subprocess.run([sys.executable, "-m", "benchmarks.diffusers_models", f"--worker={name}",
                      f"--output={output}"] + (["--quick"] if args.quick else []),
                     check=True)
      with open(output) as f:
        records[name] = json.load(f)
  figures, rows = {}, []
  for name, record in records.items():
    steps = record["steps"]
    for model in ("unet", "dit"):
      for batch in BATCHES:
        key = f"{model}_b{batch}"
        ratios = [_ratio(steps, f"{key}_{kind}_diffusers", f"{key}_{kind}_diffjax")
                  for kind in ("sample", "train")]
        ms = lambda k: 1000 * steps[k]
        rows.append([name, model, batch,
                     ms(f"{key}_sample_diffjax"), ms(f"{key}_sample_diffusers_2t"),
                     ms(f"{key}_sample_diffusers_1t"), ratios[0],
                     ms(f"{key}_train_diffjax"), ms(f"{key}_train_diffusers_2t"),
                     ms(f"{key}_train_diffusers_1t"), ratios[1]])
        figures[f"{name}_{key}_sampling_ratio"] = ratios[0]
        figures[f"{name}_{key}_training_ratio"] = ratios[1]
    figures[f"{name}_ddim50_ratio"] = _ratio(steps, "ddim_diffusers", "ddim_diffjax")
  header = ["diffjax XLA", "model", "batch", "sample diffjax (ms)", "diffusers 2t",
            "diffusers 1t", "sampling ratio", "train diffjax (ms)", "diffusers 2t",
            "diffusers 1t", "training ratio"]
  ddim_rows = [[name, 1000 * r["steps"]["ddim_diffjax"], 1000 * r["steps"]["ddim_diffusers_2t"],
                1000 * r["steps"]["ddim_diffusers_1t"], figures[f"{name}_ddim50_ratio"],
                r["compile_seconds"]["ddim"], r["relative_difference"]["ddim_abs"]]
               for name, r in records.items()]
  lowerings = ("nhwc", "nchw", "im2col", "torch_2t", "torch_1t")
  conv_rows = [[name] + [1000 * r["steps"][f"conv_{lowering}_{kind}"]
                         for lowering in lowerings for kind in ("forward", "forward_backward")]
               for name, r in records.items()]
  first = records[WORKERS[0]]
  s = settings(args.quick)
  markdown = (
      f"UNet2DModel {s['unet']} (3 channels); DiTTransformer2DModel {s['dit']} (4 latent "
      f"channels, learned sigma, 1,000 classes). torch {first['torch']['version']}, jax "
      f"{first['jax']}. Ratio = diffusers' faster thread count / diffjax (> 1: diffjax "
      "faster); training = forward + backward only (no optimizer update).\n\n"
      + common.markdown_table(header, rows)
      + "\n\nDDIM, 50 steps, batch "
      f"{s['ddim_batch']}, end to end (diffusers' DDIMPipeline vs diffjax's compiled scan):\n\n"
      + common.markdown_table(["diffjax XLA", "diffjax (ms)", "diffusers 2t (ms)",
                               "diffusers 1t (ms)", "ratio", "diffjax compile (s)",
                               "max |difference| of the images"], ddim_rows)
      + "\n\nOne 3x3 convolution, batch 16, 32x32, 64 -> 64 channels (ms):\n\n"
      + common.markdown_table(["diffjax XLA", "NHWC fwd", "NHWC fwd+bwd", "NCHW fwd",
                               "NCHW fwd+bwd", "im2col fwd", "im2col fwd+bwd",
                               "torch 2t fwd", "torch 2t fwd+bwd", "torch 1t fwd",
                               "torch 1t fwd+bwd"], conv_rows)
      + "\n\nLoad: " + "; ".join(f"{n}: before `{r['uptime_before']}`, after "
                                   f"`{r['uptime_after']}`" for n, r in records.items()))
  details = {name: record for name, record in records.items()}
  details["settings"] = s
  name = "diffusers_models_quick" if args.quick else "diffusers_models"
  common.write_results(name, figures, details, markdown, args.quick, command)


if __name__ == "__main__":
  main()
