"""Issue 22's "time saved vs quality lost" table, every row timed in one process.

  python -m benchmarks.acceleration_table --digits=workdirs/guided_digits \
      --deediff=workdirs/deediff_digits --ld_pruner=workdirs/ld_pruner_digits \
      --ld_pruner_blocks=workdirs/ld_pruner_blocks --unet=workdirs/digits_unet_small \
      [--weak_step=2000] [--batch=500] [--rounds=5] [--budget_s=450] [--quick]

Each method of the README table ("Cheaper sampling from a trained network") runs beside
its own plain sampler at the same number of steps, from the trained workdirs given:

  DiT group (--digits, a run of configs/guidance/digits.py; 20 DDIM steps, class-
    conditional, labels 0..9 in turn): the plain sampler; DeeDiff's early-exit network
    (--deediff, a run of configs/acceleration/deediff.py) at thresholds 0 (every block,
    plus the exits' and uncertainty modules' overhead), 0.4 and 0.45; the LD-Pruner
    networks (--ld_pruner: 30% of the MLP channels removed, the magnitude and random
    baselines have the same architecture and cost; --ld_pruner_blocks: one block
    removed); W2SD with strong = the --digits run's newest checkpoint, weak = its
    checkpoint --weak_step (lambda --w2sd_strength on t in [0, 0.5]).
  CFG group (the --digits run, w = 2, 20 DDIM steps): CFG (one batched call on [x, x]),
    Adaptive Guidance (threshold 0.99), LinearAG (5 exact steps; coefficients fitted on
    --calibration CFG trajectories before the timing).
  U-Net group (--unet, a run of configs/images/digits.py:unet; 20 Euler steps): the plain
    sampler, Faster Diffusion's encoder propagation at the paper's key steps scaled to 20
    (0, 1, 2, 4, 6, 10, 14), and with parallel decoding.

Wall time: every row's sampler is compiled and run once (warm-up; its samples give the
quality figures), then up to --rounds rounds each run every row once, the order rotated
from round to round (after 2 rounds none starts that would end past --budget_s seconds from
the start, so that the table takes at most ~8 minutes); a row's time ratio is the median
over rounds of (its seconds / its baseline's seconds in the same round), so a slow spell
of the machine affects both. Network
cost beside it, not timed: evaluations per sample, GFLOPs per sample (XLA's cost analysis
of one network call, times the calls; Faster Diffusion: full calls at key steps, decoder
calls between), and for DeeDiff the blocks per sample and step and per batch (the while
loop runs the batch's deepest exit). Quality: digits classifier accuracy and proxy Fréchet
distance of the warm-up batch (--batch samples from one noise draw per group, the same for
every row of a group). Writes results/acceleration_table.{json,md} (`--quick`: 40 samples,
2 rounds, results/acceleration_table_quick.*; a smoke run, not a measurement).

Take the figures on a quiet machine (one process, no neighbour): the ratios are then the
issue's "wall time per sample batch", measured single-threaded if XLA is pinned to one core.
"""
import argparse
import sys
import time
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from configs.guidance.base import guidance_section
from diffjax import image_metrics, runs
from diffjax.acceleration import (early_exit_model, faster_diffusion, network_flops,
                                  paper_key_steps, parallel_width, w2sd_guidance)
from diffjax.acceleration.deediff import layers_along
from diffjax.fields import complete
from diffjax.guidance import fit_linear_ag
from diffjax.models.transformer import dit_stages
from diffjax.solvers import SAMPLERS, sample
from diffjax.solvers.grids import time_grid

STEPS = 20
CFG_SCALE = 2.0


class Row(NamedTuple):
  """One sampler of the table: fn(*args) -> Solution, compiled; baseline: the name of the
  row it is compared with (itself for a baseline); cost: evaluations, GFLOPs (and
  blocks) per sample, filled by `network_cost` after the warm-up."""
  name: str
  group: str
  baseline: str
  fn: Callable
  args: tuple
  cost: Callable[[object], dict]


def call_gflops(fn, *args):
  """GFLOPs of one call fn(*args) (XLA's cost analysis of the compiled call)."""
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) / 1e9


def dit_rows(args, n):
  digits = runs.load(args.digits)
  pipeline, path = digits.pipeline, digits.path
  labels = jnp.arange(n) % pipeline.num_classes
  x0 = pipeline.source(jax.random.PRNGKey(0), n)
  group, base = "DiT, 20 DDIM steps", "DiT: plain sampler"

  def plain_with(apply_fn, return_trajectory=False):
    return jax.jit(lambda params, x0: sample("ddim", complete(
        digits.objective.fields(apply_fn, params, labels), path), path, x0,
        num_steps=STEPS, return_trajectory=return_trajectory))

  def per_call(apply_fn, params):
    """GFLOPs of one network call per sample."""
    return call_gflops(lambda p, x: apply_fn(p, x, jnp.full((n,), 0.5), labels),
                       params, x0) / n

  def unguided_cost(apply_fn, params):
    gflops = per_call(apply_fn, params)
    return lambda solution: {"evaluations": float(solution.nfe),
                             "gflops": float(solution.nfe) * gflops}

  model = digits.model
  rows = [Row(base, group, base, plain_with(model.apply), (digits.params, x0),
              unguided_cost(model.apply, digits.params))]

  deediff = runs.load(args.deediff)
  stages = dit_stages(digits.spec.shape, **{k: v for k, v in deediff.config.model.items()
                                            if k != "name"})
  network, exits = deediff.params["network"], deediff.params["exits"]
  ts = time_grid(SAMPLERS.get("ddim").default_grid, STEPS, path)
  full_call = per_call(model.apply, network)
  for threshold in (0.0, 0.4, 0.45):
    apply_fn = early_exit_model(stages, exits, threshold)
    along = jax.jit(lambda network, exits, trajectory, threshold=threshold: layers_along(
        stages, network, exits, trajectory, ts, labels, threshold=threshold))

    def cost(solution, along=along):
      # The exits are deterministic: replayed at the sampler's own states (its trajectory,
      # kept by the timed call too, a negligible copy) they are the sampler's decisions.
      layers, loop = along(network, exits, solution.trajectory)
      per_sample, per_batch = float(jnp.mean(layers)), float(jnp.mean(loop))
      return {"evaluations": float(solution.nfe), "blocks_per_sample": per_sample,
              "blocks_per_batch": per_batch,
              # The network's blocks dominate its cost; the full network's GFLOPs scaled by
              # the blocks each sample ran (exits and uncertainty modules not counted).
              "gflops": float(solution.nfe) * full_call * per_sample / stages.depth}
    rows.append(Row(f"DeeDiff, threshold {threshold:g}", group, base,
                    plain_with(apply_fn, return_trajectory=True), (network, x0), cost))

  for flag in ("ld_pruner", "ld_pruner_blocks"):
    pruned = runs.load(getattr(args, flag))
    pm = pruned.config.model
    label = (f"LD-Pruner ({pruned.config.method.score} score), depth {pm.depth}, "
             f"mlp_ratio {pm.get('mlp_ratio', 4.0):g}")
    rows.append(Row(label, group, base, plain_with(pruned.model.apply),
                    (pruned.params, x0), unguided_cost(pruned.model.apply, pruned.params)))

  weak = runs.load(args.digits, step=args.weak_step, allow_unfinished=True)
  if weak.step != args.weak_step or weak.step >= digits.step:
    raise ValueError(f"--weak_step={args.weak_step}: the run in {args.digits} holds no "
                     f"earlier checkpoint at that step (newest: {digits.step}).")
  strength = args.w2sd_strength
  w2sd_fn = jax.jit(lambda strong, weak, x0: sample(
      "ddim", None, path, x0, num_steps=STEPS, guidance=w2sd_guidance(
          complete(pipeline.fields(strong, labels), path),
          complete(pipeline.fields(weak, labels), path), path, strength, (0.0, 0.5))))
  rows.append(Row(f"W2SD, weak = step {weak.step}, lambda {strength:g}", group, base,
                  w2sd_fn, (digits.params, weak.params, x0),
                  unguided_cost(model.apply, digits.params)))
  return rows, labels


def guidance_rows(args, n):
  digits = runs.load(args.digits)
  pipeline = digits.pipeline.with_sampler("ddim", STEPS)
  labels = jnp.arange(n) % pipeline.num_classes
  key = jax.random.PRNGKey(1)
  count = args.calibration
  calibration = pipeline.conditional_model(digits.params,
                                           jnp.arange(count) % pipeline.num_classes, count)
  coefficients = jax.jit(lambda: fit_linear_ag(
      calibration, pipeline.path, "ddim", pipeline.source(jax.random.PRNGKey(2), count),
      CFG_SCALE, num_steps=STEPS))()
  x = pipeline.source(key, n)
  per_call = call_gflops(lambda p, x: digits.model.apply(p, x, jnp.full((n,), 0.5), labels),
                         digits.params, x) / n
  group, base = "DiT, CFG w = 2, 20 DDIM steps", "CFG"
  sections = {
      # CFG's nfe counts its batched call on [x, x] once: 2 evaluations per example.
      base: (guidance_section(method="cfg", scale=CFG_SCALE), 2),
      "Adaptive Guidance, threshold 0.99": (
          guidance_section(method="adaptive", scale=CFG_SCALE, threshold=0.99), 1),
      "LinearAG, 5 exact steps": (guidance_section(method="linear_ag", scale=CFG_SCALE,
                                                   exact_steps=5), 1)}
  rows = []
  for name, (section, per_nfe) in sections.items():
    section = section.to_dict()
    dynamic = {"coefficients": coefficients} if section["method"] == "linear_ag" else {}
    fn = jax.jit(lambda params, key, dynamic, section=section: pipeline.generate(
        params, key, n, labels, guidance={**section, **dynamic}))
    cost = lambda solution, per_nfe=per_nfe: {
        "evaluations": per_nfe * float(solution.nfe),
        "gflops": per_nfe * float(solution.nfe) * per_call}
    rows.append(Row(name, group, base, fn, (digits.params, key, dynamic), cost))
  return rows, labels


def unet_rows(args, n):
  run = runs.load(args.unet, allow_unfinished=True)
  model, objective, path, pipeline = run.model, run.objective, run.path, run.pipeline
  labels = jnp.arange(n) % max(pipeline.num_classes, 1)
  cond = pipeline.conditional_model(run.params, labels if pipeline.num_classes else None,
                                    n).cond
  x0 = pipeline.source(jax.random.PRNGKey(3), n)
  keys = paper_key_steps(STEPS)
  full, decoder = network_flops(lambda x, t, **kw: model.apply(run.params, x, t, cond, **kw),
                                x0, jnp.asarray(0.5))
  full, decoder = full / n / 1e9, decoder / n / 1e9
  group, base = "small U-Net, 20 Euler steps", "U-Net: plain sampler"
  plain = jax.jit(lambda params, x0: sample("euler", complete(
      objective.fields(model.apply, params, cond), path), path, x0, num_steps=STEPS))
  rows = [Row(base, group, base, plain, (run.params, x0),
              lambda s: {"evaluations": float(s.nfe), "gflops": float(s.nfe) * full})]
  for parallel in (False, True):
    fn = jax.jit(lambda params, x0, parallel=parallel: sample(
        "euler", None, path, x0, num_steps=STEPS, guidance=faster_diffusion(
            model.apply, objective, path, params, cond, keys, parallel=parallel)))
    decoded = len(keys) * parallel_width(keys, STEPS) if parallel else STEPS - len(keys)
    rows.append(Row("Faster Diffusion" + (", parallel decoding" if parallel else ""), group,
                    base, fn, (run.params, x0),
                    lambda s, decoded=decoded: {"evaluations": float(STEPS),
                                                "gflops": len(keys) * full
                                                + decoded * decoder}))
  return rows, labels


def quality(x, labels):
  x = np.clip(np.asarray(x), -1.0, 1.0)
  reference, _ = image_metrics.digits_reference_images("test")
  return {"accuracy": float(image_metrics.digits_class_accuracy(x, np.asarray(labels))),
          "frechet_proxy": float(image_metrics.digits_frechet_distance(x, reference))}


def measure(rows_and_labels, rounds, log, deadline=float("inf")):
  """Warm-up (compile, quality, network cost), then interleaved timing rounds (at most
  `rounds`; after 2 rounds, no round starts that the last one's duration says would end
  past `deadline`, a time.perf_counter() value): a dict per row with seconds per round,
  the median ratio to its baseline, cost and quality."""
  rows = [row for rows, _ in rows_and_labels for row in rows]
  results = {}
  for rows_, labels in rows_and_labels:
    for row in rows_:
      start = time.perf_counter()
      solution = jax.block_until_ready(row.fn(*row.args))
      results[row.name] = dict(group=row.group, baseline=row.baseline,
                               compile_and_first_seconds=time.perf_counter() - start,
                               **quality(solution.x, labels), **row.cost(solution),
                               seconds=[])
      log(f"warm-up {row.name}: {results[row.name]['compile_and_first_seconds']:.1f} s")
  for r in range(rounds):
    began = time.perf_counter()
    order = rows[r % len(rows):] + rows[:r % len(rows)]
    for row in order:
      start = time.perf_counter()
      jax.block_until_ready(row.fn(*row.args).x)
      results[row.name]["seconds"].append(time.perf_counter() - start)
    now = time.perf_counter()
    log(f"round {r + 1}/{rounds} done ({now - began:.1f} s)")
    if r + 1 >= 2 and now + (now - began) > deadline:
      log(f"stopping after {r + 1} rounds: another would end past the time budget")
      break
  for row in rows:
    mine, base = results[row.name], results[row.baseline]
    ratios = np.asarray(mine["seconds"]) / np.asarray(base["seconds"])
    mine.update(median_seconds=float(np.median(mine["seconds"])),
                time_ratio=float(np.median(ratios)), time_ratios=ratios.tolist(),
                gflops_ratio=mine["gflops"] / base["gflops"],
                evaluations_ratio=mine["evaluations"] / base["evaluations"])
  return results


def table(results):
  header = ("method", "baseline", "wall s (median)", "wall ratio (median of rounds)",
            "evaluations / sample", "GFLOPs / sample (ratio)", "blocks / sample, / batch",
            "accuracy", "proxy FD")
  lines = []
  for name, r in results.items():
    blocks = (f"{r['blocks_per_sample']:.2f}, {r['blocks_per_batch']:.2f}"
              if "blocks_per_sample" in r else "-")
    lines.append((name, "-" if r["baseline"] == name else r["baseline"],
                  f"{r['median_seconds']:.3g}", f"{r['time_ratio']:.2f}",
                  f"{r['evaluations']:g}", f"{r['gflops']:.3g} ({r['gflops_ratio']:.2f})",
                  blocks, f"{r['accuracy']:.3f}", f"{r['frechet_proxy']:.2f}"))
  return common.markdown_table(header, lines)


def parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  for flag in ("digits", "deediff", "ld_pruner", "ld_pruner_blocks", "unet"):
    parser.add_argument(f"--{flag}", required=True, help="a trained workdir (docstring)")
  parser.add_argument("--weak_step", type=int, default=2000)
  parser.add_argument("--w2sd_strength", type=float, default=1.0)
  parser.add_argument("--batch", type=int, default=500, help="samples per batch")
  parser.add_argument("--rounds", type=int, default=5,
                      help="timing rounds at most (at least 2 run)")
  parser.add_argument("--budget_s", type=float, default=450.0,
                      help="no round starts that would end later than this many seconds "
                           "after the start (the table must take <= 8 min)")
  parser.add_argument("--calibration", type=int, default=256,
                      help="LinearAG's calibration trajectories")
  parser.add_argument("--quick", action="store_true", help="40 samples, 2 rounds")
  args = parser.parse_args(argv)
  if args.quick:
    args.batch, args.rounds, args.calibration = 40, 2, 16
  if min(args.batch, args.rounds, args.calibration) < 1:
    parser.error("--batch, --rounds and --calibration must be >= 1.")
  return args


def main(argv=None):
  args = parse(argv)
  begin = time.perf_counter()
  log = lambda text: print(f"[{time.perf_counter() - begin:6.1f} s] {text}", flush=True)
  try:
    groups = [build(args, args.batch) for build in (dit_rows, guidance_rows, unet_rows)]
  except (runs.RunError, ValueError) as error:
    print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
    return 2
  log("built (LinearAG fitted)")
  results = measure(groups, args.rounds, log, deadline=begin + args.budget_s)
  total = time.perf_counter() - begin
  rounds = len(next(iter(results.values()))["seconds"])
  command = "python -m benchmarks.acceleration_table " + " ".join(
      (argv if argv is not None else sys.argv[1:]))
  markdown = (f"{args.batch} samples per batch, {rounds} interleaved rounds after a "
              f"warm-up; {total:.0f} s in all. Wall ratio: median over rounds of the row's "
              "seconds over its baseline's in the same round.\n\n" + table(results))
  figures = {f"{name}: {key}": r[key] for name, r in results.items()
             for key in ("time_ratio", "gflops_ratio", "accuracy", "frechet_proxy")}
  common.write_results("acceleration_table" + ("_quick" if args.quick else ""), figures,
                       {"rows": results, "batch": args.batch, "rounds": rounds,
                        "total_seconds": total, "workdirs": {
                            k: getattr(args, k) for k in ("digits", "deediff", "ld_pruner",
                                                          "ld_pruner_blocks", "unet")}},
                       markdown, args.quick, command)
  return 0


if __name__ == "__main__":
  sys.exit(main())
