"""Cheaper sampling from a trained run: Faster Diffusion on a digits U-Net, W2SD between
two checkpoints of the digits DiT.

  python -m experiments.main --config=configs/images/digits.py:unet --workdir=workdirs/digits_unet
  python -m experiments.acceleration_studies faster_diffusion --workdir=workdirs/digits_unet
      [--sampler=euler] [--num_steps=20] [--key_steps=0,1,2,4,6,10,14] [--num_samples=500]
      [--noise_injection=0] [--tiny]

faster_diffusion  On the run's U-Net (`diffjax.acceleration.faster_diffusion`), class-
  conditional samples (labels 0..9 in turn) from the same noise: first the paper's
  observation, the relative change between consecutive steps of the encoder's features
  and of the decoder's output along the plain sampler's trajectory; then the plain sampler
  against encoder propagation at the key steps (default: the paper's DDIM-50 schedule
  scaled to --num_steps), sequential and with parallel decoding: wall time of one compiled
  batch (median of 3; on a shared CPU a rough figure), network GFLOPs per sample (XLA's
  cost analysis of a full call and of the decoder alone; parallel decoding decodes a fixed
  number of steps at every key step, `parallel_width`), the digits classifier's accuracy
  and the proxy Fréchet distance to the test digits. Writes faster_diffusion.{md,json} in
  <workdir>/studies. The run may still be training (its newest checkpoint is used).

  python -m experiments.acceleration_studies w2sd --workdir=workdirs/guided_digits \
      [--weak_step=2000] [--strengths=0.5,1,2] [--interval=0,0.5] [--num_samples=500]

  (the same comparison as a config that writes into its own workdir, not the run's:
  configs/acceleration/w2sd.py)

w2sd  W2SD (`diffjax.acceleration.w2sd`) on the run's DiT: strong = the newest checkpoint
  (EMA), weak = checkpoint --weak_step of the same run; class-conditional DDIM samples
  (labels 0..9 in turn, --num_steps steps) from the same noise: the strong and weak models
  alone, and W2SD at each reflection strength of --strengths on the window --interval
  (diffjax time, 0 noise); evaluations per sample, digits accuracy, proxy Fréchet
  distance. Writes w2sd.{md,json} in <workdir>/studies (copy a run you may not write into).
--tiny: 40 samples (a smoke run). Bad values (key steps outside the grid, a run whose
network has no encoder to propagate, a negative or non-finite strength, a window outside
[0, 1], a weak checkpoint the run does not hold) are refused in one line, exit 2, nothing
written.
"""
import argparse
import inspect
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import image_metrics, runs
from diffjax.acceleration import (check_key_steps, check_strength, encoder_decoder_changes,
                                  faster_diffusion, network_flops, paper_key_steps,
                                  parallel_width)
from diffjax.errors import ConfigError
from diffjax.fields import complete
from diffjax.guidance.cfg import check_interval
from diffjax.guidance.model import check_one_evaluation
from diffjax.solvers import SAMPLERS, sample
from diffjax.solvers.grids import time_grid
from diffjax.train import storage
from experiments.acceleration import w2sd_name, w2sd_solutions


def _timed(fn, repeats=3):
  jax.block_until_ready(fn())
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    seconds.append(time.perf_counter() - start)
  return float(np.median(seconds))


def faster_diffusion_study(workdir, sampler, num_steps, key_steps, num_samples,
                           noise_injection):
  SAMPLERS.get(sampler)
  check_one_evaluation(sampler, "Faster Diffusion")
  keys = check_key_steps(paper_key_steps(num_steps) if key_steps is None else key_steps,
                         num_steps)
  run = runs.load(workdir, allow_unfinished=True)
  model, objective, path = run.model, run.objective, run.path
  if "encoder_features" not in inspect.signature(model.apply).parameters:
    raise ConfigError(f"The run in {workdir} has a network without an encoder to propagate "
                      f"(model.name={run.config.model.name!r}); train a U-Net "
                      "(configs/images/digits.py:unet).")
  pipeline = run.pipeline
  labels = jnp.arange(num_samples) % max(pipeline.num_classes, 1)
  cond = pipeline.conditional_model(run.params, labels if pipeline.num_classes else None,
                                    num_samples).cond
  x0 = pipeline.source(jax.random.PRNGKey(0), num_samples)
  params = run.params
  network = lambda x, t, **kw: model.apply(params, x, t, cond, **kw)
  fields = complete(objective.fields(model.apply, params, cond), path)

  plain = jax.jit(lambda: sample(sampler, fields, path, x0, num_steps=num_steps,
                                 return_trajectory=True))
  propagated = {
      parallel: jax.jit(lambda parallel=parallel: sample(
          sampler, None, path, x0, num_steps=num_steps, guidance=faster_diffusion(
              model.apply, objective, path, params, cond, keys, parallel=parallel,
              noise_injection=noise_injection)))
      for parallel in (False, True)}
  reference, _ = image_metrics.digits_reference_images("test")

  def quality(x):
    x = np.clip(np.asarray(x), -1, 1)
    values = {"frechet_proxy": float(image_metrics.digits_frechet_distance(x, reference))}
    if pipeline.num_classes:
      values["accuracy"] = float(image_metrics.digits_class_accuracy(x, np.asarray(labels)))
    return values

  solution = plain()
  ts = time_grid(SAMPLERS.get(sampler).default_grid, num_steps, path)
  measured = min(num_samples, 64)   # Samples the change is measured on.
  few = jax.tree.map(lambda c: c[:measured], cond)
  enc, dec = jax.jit(lambda traj: encoder_decoder_changes(
      lambda x, t, **kw: model.apply(params, x, t, few, **kw), traj, ts))(
          solution.trajectory[:, :measured])
  full, decoder = network_flops(network, x0, jnp.asarray(0.5))
  n_keys = len(keys)
  rows = [dict(method=f"{sampler}, {num_steps} steps", seconds=_timed(lambda: plain().x),
               gflops=num_steps * full / num_samples / 1e9, **quality(solution.x))]
  for parallel, fn in propagated.items():
    x = fn().x
    rows.append(dict(
        method=f"Faster Diffusion, {n_keys} key steps" + (", parallel decoding" if parallel
                                                         else ""),
        seconds=_timed(lambda fn=fn: fn().x),
        gflops=(n_keys * full + (n_keys * parallel_width(keys, num_steps) if parallel
                                 else num_steps - n_keys) * decoder) / num_samples / 1e9,
        **quality(x)))
  for row in rows:
    row["time_ratio"] = row["seconds"] / rows[0]["seconds"]
  return dict(rows=rows, key_steps=list(keys), encoder_change=np.asarray(enc).tolist(),
              decoder_change=np.asarray(dec).tolist(),
              encoder_flops_fraction=1 - decoder / full,
              checkpoint_step=run.step, num_samples=num_samples)



def digits_quality(x, labels):
  x = np.clip(np.asarray(x), -1, 1)
  reference, _ = image_metrics.digits_reference_images("test")
  return {"frechet_proxy": float(image_metrics.digits_frechet_distance(x, reference)),
          "accuracy": float(image_metrics.digits_class_accuracy(x, np.asarray(labels)))}


def w2sd_study(workdir, weak_step, strengths, interval, num_steps, num_samples):
  """Strong (newest checkpoint), weak (checkpoint weak_step) and W2SD per strength."""
  strengths = [float(check_strength(s)) for s in strengths]
  interval = check_interval(interval)
  strong_run = runs.load(workdir)
  if weak_step >= strong_run.step:
    raise ConfigError(f"--weak_step={weak_step} must be an earlier checkpoint than the "
                      f"strong model's step {strong_run.step}.")
  weak_run = runs.load(workdir, step=weak_step, allow_unfinished=True)
  if weak_run.step != weak_step:
    raise ConfigError(f"The run in {workdir} holds no checkpoint at --weak_step={weak_step}.")
  pipeline = strong_run.pipeline
  labels = jnp.arange(num_samples) % max(pipeline.num_classes, 1)
  x0 = pipeline.source(jax.random.PRNGKey(0), num_samples)
  solver = "ddim"
  solutions = w2sd_solutions(pipeline, strong_run.params, weak_run.params, x0, labels,
                             strengths, interval, solver, num_steps)
  rows = [dict(method=f"strong (step {strong_run.step})", nfe=int(solutions["strong"].nfe),
               **digits_quality(solutions["strong"].x, labels)),
          dict(method=f"weak (step {weak_step})", nfe=int(solutions["weak"].nfe),
               **digits_quality(solutions["weak"].x, labels))]
  for strength in strengths:
    solution = solutions[w2sd_name(strength)]
    rows.append(dict(method=f"W2SD lambda={strength:g}, window {interval}",
                     nfe=int(solution.nfe), **digits_quality(solution.x, labels)))
  return dict(rows=rows, num_samples=num_samples, num_steps=num_steps, solver=solver)


def write_w2sd(result, directory):
  lines = ["| method | evaluations per sample | accuracy | proxy FD |", "|---|---|---|---|"]
  lines += [f"| {r['method']} | {r['nfe']} | {r['accuracy']:.3f} | {r['frechet_proxy']:.2f} |"
            for r in result["rows"]]
  text = "\n".join([f"# W2SD between two checkpoints of the digits DiT "
                    f"({result['solver']}, {result['num_steps']} steps, "
                    f"{result['num_samples']} samples)", ""] + lines) + "\n"
  _write(directory, "w2sd", text, result)


def _write(directory, name, text, result):
  """<directory>/<name>.md (text) and .json (result); prints the text."""
  directory = storage.workdir_path(directory)
  storage.makedirs(directory)
  storage.write_text(directory / f"{name}.md", text)
  storage.write_text(directory / f"{name}.json", json.dumps(result, indent=2) + "\n")
  print(text)


def write_study(result, directory):
  rows = result["rows"]
  header = ("method", "wall s (ratio)", "GFLOPs / sample", "accuracy", "proxy FD")
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    lines.append(f"| {row['method']} | {row['seconds']:.3g} ({row['time_ratio']:.2f}) | "
                 f"{row['gflops']:.3g} | {row.get('accuracy', float('nan')):.3f} | "
                 f"{row['frechet_proxy']:.2f} |")
  enc, dec = np.asarray(result["encoder_change"]), np.asarray(result["decoder_change"])
  text = "\n".join([
      f"# Faster Diffusion on the digits U-Net (checkpoint step "
      f"{result['checkpoint_step']}, {result['num_samples']} samples)", "",
      f"Key steps: {result['key_steps']}; the encoder is "
      f"{100 * result['encoder_flops_fraction']:.0f}% of a network call's FLOPs.", "",
      "Relative change between consecutive steps (mean over the steps; first / last step):",
      f"encoder features {enc.mean():.3f} ({enc[0]:.3f} / {enc[-1]:.3f}), decoder output "
      f"{dec.mean():.3f} ({dec[0]:.3f} / {dec[-1]:.3f}).", ""] + lines) + "\n"
  _write(directory, "faster_diffusion", text, result)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("study", choices=("faster_diffusion", "w2sd"))
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--sampler", default="euler")
  parser.add_argument("--num_steps", type=int, default=20)
  parser.add_argument("--key_steps", default=None,
                      help="comma-separated step indices (default: the paper's schedule)")
  parser.add_argument("--num_samples", type=int, default=500)
  parser.add_argument("--noise_injection", type=float, default=0.0)
  parser.add_argument("--weak_step", type=int, default=2000)
  parser.add_argument("--strengths", default="0.5,1,2")
  parser.add_argument("--interval", default="0,0.5")
  parser.add_argument("--tiny", action="store_true")
  args = parser.parse_args(argv)
  try:
    if args.num_steps < 1 or args.num_samples < 1:
      raise ConfigError(f"--num_steps and --num_samples must be >= 1; got "
                        f"{args.num_steps}, {args.num_samples}.")
    num_samples = 40 if args.tiny else args.num_samples
    if args.study == "w2sd":
      strengths = _numbers(args.strengths, "--strengths")
      interval = _numbers(args.interval, "--interval")
      if len(interval) != 2:
        raise ConfigError(f"--interval takes two times t_start,t_end in [0, 1]; got "
                          f"{args.interval!r}.")
      result = w2sd_study(args.workdir, args.weak_step, strengths, interval,
                          args.num_steps, num_samples)
    else:
      keys = None if args.key_steps is None else [
          float(k) for k in args.key_steps.split(",") if k]
      result = faster_diffusion_study(args.workdir, args.sampler, args.num_steps, keys,
                                      num_samples, args.noise_injection)
  except (ConfigError, ValueError) as error:
    print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
    return 2
  write = write_w2sd if args.study == "w2sd" else write_study
  write(result, str(storage.workdir_path(args.workdir) / "studies"))
  return 0


def _numbers(text, flag):
  try:
    return [float(v) for v in text.split(",") if v]
  except ValueError:
    raise ConfigError(f"{flag} takes comma-separated numbers; got {text!r}.") from None


if __name__ == "__main__":
  sys.exit(main())
