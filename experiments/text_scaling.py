"""IsoFLOP sweep: masked diffusion against its autoregressive twin on the GNU manuals
characters ("Scaling up Masked Diffusion Models on Text", Nie et al., section 3).

  python -m experiments.text_scaling --workdir=workdirs/text_scaling [--grid=quick|medium|full]

Every (objective, model size, compute budget) is an ordinary run of
configs/discrete/chars.py (`:ar` for the twin) in its own subdirectory (rerunning resumes
or skips it): the same data order (the batch stream is a function of the step and the
seed), tokenizer, sequence length 64, batch 32, optimiser and cosine schedule (decayed
over each run's length), with as many steps as the budget buys. Compute is XLA's count of
one training step's loss and gradient (`diffjax.scaling.xla_flops`), the same for both
objectives; 6 N D is reported beside it. Each objective's best validation bits per
character at each budget is fitted by a power law of compute, and the compute multiple
at which masked diffusion reaches the autoregressive model's bits per character is read
off the two fits. The largest budget's best masked model also gives its validation NELBO
against the number of time samples of the Monte Carlo estimate and against the number of
steps of the discrete-time bound (`diffjax.objectives.masked.discrete_time_nelbo`), and
samples of both models.

Writes <out>/text_scaling.json (every run, the fits, the multiple), text_scaling.md and
text_scaling.png (bits per character against compute), suffixed by the grid unless it is
`full`; --out defaults to benchmarks/results. Grids (`GRIDS`): `quick` (`--quick`), two
tiny sizes x two budgets, a smoke test; `medium`, three sizes x three budgets up to 1.8e11
FLOPs, the smallest IsoFLOP table (about 15 minutes of a 2-core CPU); `full`, three sizes
up to d = 96 x budgets 0.5-4.5e12 FLOPs (about 120x the quick grid).
"""
import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import experiments
from configs.discrete import chars
from diffjax import runs, scaling
from diffjax.data import text as text_data
from diffjax.objectives.masked import discrete_time_nelbo
from diffjax.pipeline import DataSpec, build_pipeline
from diffjax.text_plots import compute_figure
from diffjax.train import storage
from diffjax.train.workdir import read_metrics
from diffjax.train.writer import figure_to_png

OBJECTIVES = {"masked_diffusion": None, "autoregressive": "ar"}  # name -> chars.py arg
# Grid name -> (model sizes as (hidden_dim, depth), 4 heads from d = 32; budgets in XLA
# FLOPs of training).
GRIDS = {"quick": (((16, 1), (32, 1)), (2e10, 6e10)),
         "medium": (((16, 1), (32, 1), (48, 2)), (2e10, 6e10, 1.8e11)),
         "full": (((32, 2), (64, 2), (96, 3)), (0.5e12, 1.5e12, 4.5e12))}
RESULTS = "benchmarks/results"   # Relative to the repository root, where it runs.


def run_config(objective, size, steps, quick=False):
  """chars.py for `objective` with the model `size` trained `steps` steps, evaluated at
  the end only."""
  config = chars.get_config(OBJECTIVES[objective])
  hidden_dim, depth = size
  config.model.update(hidden_dim=hidden_dim, depth=depth, num_heads=4 if hidden_dim >= 32
                      else 2)
  config.train.update(num_steps=steps, steps_per_call=min(50, steps), log_every=0,
                      eval_every=0, checkpoint_every=0, keep_checkpoints=1)
  config.optim.warmup_steps = min(200, steps // 10)
  config.eval.update(num_samples=8, num_shown=8, nelbo_samples=16, num_sequences=256)
  if quick:
    config.eval.update(num_sequences=16, nelbo_samples=2, fast_compile=True)
  return config


def step_flops(config):
  """XLA FLOPs of one training step's loss and gradient, and the non-embedding N."""
  pipeline = build_pipeline(config, DataSpec((config.data.sequence_length,), vocab_size=96))
  shapes = jax.eval_shape(pipeline.model.init, jax.random.PRNGKey(0))
  step = jax.value_and_grad(lambda params, key, x: pipeline.loss(params, key, lambda a: a,
                                                                  x)[0])
  flops = scaling.xla_flops(step, shapes, jax.ShapeDtypeStruct((2,), jnp.uint32),
                            jax.ShapeDtypeStruct((config.train.batch_size,
                                                  config.data.sequence_length), jnp.int32))
  return flops, scaling.non_embedding_parameters(shapes)


def train(config, workdir):
  """Trains (or finds finished) the run in `workdir`: its last evaluation and wall time."""
  records = read_metrics(workdir) if storage.workdir_path(workdir).is_dir() else []
  if records and records[-1]["step"] == config.train.num_steps:
    return records[-1], None
  start = time.time()
  config.lock()
  experiments.run(config, workdir)
  return read_metrics(workdir)[-1], time.time() - start


def nelbo_studies(workdir, validation, seeds=4):
  """The best masked run's validation NELBO (bits per character) against the number of
  time samples of the estimate (mean and spread over seeds) and against the number of
  steps of the discrete-time bound."""
  run = runs.load(workdir)
  x = jnp.asarray(validation)
  per_char = lambda nats: float(jnp.mean(nats)) / x.shape[1] / np.log(2)
  nll = jax.jit(lambda key, k: run.objective.sequence_nll(run.model.apply, run.params, key,
                                                           x, num_samples=k),
                static_argnums=1)
  samples = {}
  for k in (1, 4, 16, 64):
    values = [per_char(nll(jax.random.PRNGKey(s), k)) for s in range(seeds)]
    samples[k] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
  bound = jax.jit(lambda key, steps: discrete_time_nelbo(
      run.path, run.model.apply, run.params, key, x, num_steps=steps, num_samples=16),
                  static_argnums=1)
  steps = {t: per_char(bound(jax.random.PRNGKey(0), t)) for t in (1, 4, 16, 64, 256, 1024)}
  return samples, steps


def decoded_samples(workdir, count=6):
  run = runs.load(workdir)
  tokens = np.asarray(run.sample(jax.random.PRNGKey(0), count))
  return [text_data.CharTokenizer().decode(row) for row in tokens]


def sweep(workdir, grid="full", objectives=tuple(OBJECTIVES)):
  sizes, budgets = GRIDS[grid]
  quick = grid == "quick"
  record = []
  for objective in objectives:
    for size in sizes:
      flops, params = step_flops(run_config(objective, size, 1, quick))
      for budget in budgets:
        steps = max(1, int(round(budget / flops)))
        config = run_config(objective, size, steps, quick)
        name = f"{objective}_d{size[0]}_l{size[1]}_c{budget:.1e}"
        last, wall = train(config, str(storage.workdir_path(workdir) / name))
        tokens = steps * config.train.batch_size * config.data.sequence_length
        entry = dict(objective=objective, hidden_dim=size[0], depth=size[1],
                     budget=budget, steps=steps, flops=steps * flops,
                     flops_per_step=flops, non_embedding_parameters=params,
                     six_nd=scaling.six_nd(params, tokens), tokens=tokens,
                     bits_per_char=last["validation_bits_per_token"], wall_s=wall,
                     workdir=name)
        record.append(entry)
        print(json.dumps(entry), flush=True)
  return record


def analyse(record):
  """Power-law fits of each objective's compute frontier and the compute multiple."""
  fits, frontiers = {}, {}
  for objective in OBJECTIVES:
    runs_of = [r for r in record if r["objective"] == objective]
    budgets, best = scaling.frontier([r["budget"] for r in runs_of],
                                     [r["bits_per_char"] for r in runs_of])
    compute = [min(r["flops"] for r in runs_of if r["budget"] == b) for b in budgets]
    frontiers[objective] = (np.asarray(compute), best)
    fits[objective] = scaling.fit_power_law(compute, best)
  ar, md = fits["autoregressive"], fits["masked_diffusion"]
  ar_compute, ar_best = frontiers["autoregressive"]
  multiples = scaling.compute_multiple(ar, md, ar_best)
  return fits, frontiers, multiples


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True, help="Folder of the sweep's runs.")
  parser.add_argument("--out", default=RESULTS, help="Folder of the results.")
  parser.add_argument("--grid", choices=tuple(GRIDS), default="full",
                      help="Model sizes x compute budgets (see GRIDS).")
  parser.add_argument("--quick", action="store_true", help="The same as --grid=quick.")
  parser.add_argument("--only", choices=tuple(OBJECTIVES),
                      help="Train this objective's runs only (e.g. one process per "
                           "objective), without the analysis; a later run without --only "
                           "finds them finished and analyses.")
  args = parser.parse_args(argv)
  grid = "quick" if args.quick else args.grid
  quick = grid == "quick"
  start = time.time()
  if args.only:
    sweep(args.workdir, grid, (args.only,))
    return
  record = sweep(args.workdir, grid)
  fits, frontiers, multiples = analyse(record)
  md_runs = [r for r in record if r["objective"] == "masked_diffusion"]
  best_md = min((r for r in md_runs if r["budget"] == max(r["budget"] for r in md_runs)),
                key=lambda r: r["bits_per_char"])
  ar_runs = [r for r in record if r["objective"] == "autoregressive"]
  best_ar = min((r for r in ar_runs if r["budget"] == best_md["budget"]),
                key=lambda r: r["bits_per_char"])
  md_dir = str(storage.workdir_path(args.workdir) / best_md["workdir"])
  corpus = text_data.load_text_corpus("gnu_manuals", tokenizer="chars")
  frequencies = np.bincount(corpus.train, minlength=corpus.vocab_size) / len(corpus.train)
  unigram = float(-np.sum(frequencies[frequencies > 0] * np.log2(frequencies[frequencies > 0])))
  validation = text_data.validation_windows(corpus.validation, 64,
                                            16 if quick else 256)
  samples_k, steps_t = nelbo_studies(md_dir, validation, seeds=2 if quick else 4)
  texts = {r["objective"]: decoded_samples(str(storage.workdir_path(args.workdir) /
                                               r["workdir"]))
           for r in (best_md, best_ar)}
  summary = {
      "figures": {
          "compute_multiple_md_over_ar": float(np.median(multiples)),
          "md_best_bits_per_char": best_md["bits_per_char"],
          "unigram_entropy_bits": unigram,
          "ar_best_bits_per_char_same_budget": best_ar["bits_per_char"],
          "md_power_law_exponent": fits["masked_diffusion"].exponent,
          "ar_power_law_exponent": fits["autoregressive"].exponent},
      "compute_multiples_at_ar_frontier": [float(m) for m in multiples],
      "fits": {k: f._asdict() for k, f in fits.items()},
      "runs": record, "nelbo_vs_time_samples": samples_k,
      "discrete_time_nelbo_vs_steps": steps_t, "samples": texts,
      "command": "python -m experiments.text_scaling --workdir=workdirs/text_scaling"
                 + ("" if grid == "full" else f" --grid={grid}"),
      "wall_s": time.time() - start}
  out = storage.workdir_path(args.out)
  storage.makedirs(out)
  name = "text_scaling" if grid == "full" else f"text_scaling_{grid}"
  storage.write_text(out / f"{name}.json", json.dumps(summary, indent=2, default=float))
  figure = compute_figure({o: (np.asarray([r["flops"] for r in record if r["objective"] == o]),
                               np.asarray([r["bits_per_char"] for r in record
                                           if r["objective"] == o]))
                           for o in OBJECTIVES}, fits,
                          {f"unigram entropy ({unigram:.2f})": unigram})
  storage.write_bytes(out / f"{name}.png", figure_to_png(figure))
  storage.write_text(out / f"{name}.md", markdown(summary))
  print(markdown(summary))


def markdown(summary) -> str:
  lines = [f"# text_scaling\n\nCommand: `{summary['command']}`\n",
           "| objective | d | layers | budget (FLOPs) | steps | 6ND | bits/char |",
           "|---|---|---|---|---|---|---|"]
  for r in summary["runs"]:
    lines.append(f"| {r['objective']} | {r['hidden_dim']} | {r['depth']} | "
                 f"{r['flops']:.3g} | {r['steps']} | {r['six_nd']:.3g} | "
                 f"{r['bits_per_char']:.3f} |")
  fits = summary["fits"]
  lines += ["", "Frontier fits bits/char = A C^-alpha: " + "; ".join(
      f"{k}: A = {v['scale']:.3g}, alpha = {v['exponent']:.4f}" for k, v in fits.items()),
            "Compute multiple (masked over autoregressive, at the autoregressive frontier's "
            "bits/char): " + ", ".join(
                f"{m:.1f}" for m in summary["compute_multiples_at_ar_frontier"]),
            "", "Validation NELBO (bits/char) against time samples per sequence: " + ", ".join(
                f"{k}: {v['mean']:.4f} ± {v['std']:.4f}"
                for k, v in summary["nelbo_vs_time_samples"].items()),
            "Discrete-time NELBO (bits/char) against steps: " + ", ".join(
                f"{k}: {v:.3f}" for k, v in summary["discrete_time_nelbo_vs_steps"].items()),
            "", "Samples:"]
  for objective, texts in summary["samples"].items():
    lines += [f"- {objective}:"] + [f"  - `{t!r}`" for t in texts]
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  main()
