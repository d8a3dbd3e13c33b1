"""Samplers: quality versus NFE on an exact Gaussian-mixture score, and speed against diffrax.

  python -m benchmarks.solvers [--quick]

(1) Every sampler, fed the exact velocity/score of an 8-mode ring mixture pushed through the
    VP path, at budgets of 5, 10, 20, 50 and 100 field evaluations (NFE): W2 between its
    samples and the exact flow of the same source points (whose law is the exact t = 1
    marginal), with the W2 between two independent exact sample sets as the floor that
    stochastic samplers cannot go below. JSON and `benchmarks/results/solvers.png`.
    The target is on the data scale of images ([-1, 1]: modes on the unit circle) with
    modes much narrower than the gaps between them (std 0.02), as image data concentrate
    near a thin set. How much an exponential integrator gains depends on that width: for
    broad, near-Gaussian data of unit variance the VP probability-flow velocity nearly
    vanishes and Euler is almost exact. A sweep of the 10-NFE Euler / DPM-Solver++(2M)
    ratio over mode widths (and the earlier radius-5, std-0.5 ring) is reported too.
(2) Wall time and compile time of our fixed-step Heun and adaptive Dopri5 against diffrax's
    Heun and Dopri5 on the same probability-flow ODE of the same MLP network (a randomly
    initialised velocity-prediction MLP on the VP path): run times in one process,
    compile times as each solver's first compile in fresh processes. Beside them runs
    the floor of any 100-NFE solver: a bare `lax.scan` of 100 network evaluations, each
    followed by x + dt v. With 50 Heun steps at batch 4096 the network is nearly all the
    time, so the Heun ratio is close to 1 by construction; a batch sweep (256, 1024,
    4096) shows where solver overhead matters.
Figures: time_ratio_vs_diffrax_heun, time_ratio_vs_diffrax_dopri5 (ours / diffrax, run
time at equal NFE / equal tolerance), compile_ratio_vs_diffrax (ours / diffrax, both
solvers together) and euler_over_dpmpp_w2_at_10nfe.
"""
import os
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import RESULTS_DIR, markdown_table, parse_args, write_results
from diffjax.data import mixture_oracle, ring_mixture
from diffjax.metrics import wasserstein2
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.core import Fields
from diffjax.solvers import sample, sampler_for
from diffjax.solvers.diffrax_adapter import diffrax_solve

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGETS = (5, 10, 20, 50, 100)
# Options of each sampler in the quality sweep (its steps per budget follow from the
# field evaluations per step that it declares).
SWEEP = {
    "euler": {}, "heun": {}, "midpoint": {}, "rk4": {}, "heun_edm_grid": {"grid": "edm"},
    "ddim": {}, "dpm_solver_pp_1s": {}, "dpm_solver_pp_2m": {}, "dpm_solver_pp_3m": {},
    "exponential_pc": {}, "euler_maruyama": {"eps": "reverse_sde"}, "ancestral": {},
    "pc_langevin": {"snr": 0.05}, "edm_churn": {"s_churn": 10.0},
}
DOPRI5_TOLERANCES = (1e-1, 3e-2, 1e-2, 1e-3, 1e-4)
TARGET = {"radius": 1.0, "std": 0.02}
# (radius, std) of the ring mixtures in the mode-width sweep.
WIDTH_SWEEP = ((1.0, 0.01), (1.0, 0.02), (1.0, 0.05), (1.0, 0.1), (1.0, 0.25), (1.0, 0.5),
               (5.0, 0.5))


def _exact_problem(num_samples, radius, std):
  """Fields, source points and the exact flow of those points for a ring mixture on VP.

  The reference is the exact flow of the same source points (RK4, 4000 steps, converged to
  float32): its law is the target, so deterministic samplers are compared with it without
  a sampling floor."""
  path = build_path("vp")
  target = ring_mixture(radius=radius, std=std)
  fields = mixture_oracle(path, target).fields()
  x0 = mixture_oracle(path, target).marginal(0.0).sample(jax.random.PRNGKey(0), num_samples)
  reference = np.asarray(jax.jit(lambda x: sample("rk4", fields, path, x, None,
                                                  num_steps=4000).x)(x0))
  return path, target, fields, x0, reference


def _w2_at(name, fields, path, x0, reference, steps, options):
  result = jax.jit(lambda x, k: sample(name, fields, path, x, k, num_steps=steps,
                                       **options))(x0, jax.random.PRNGKey(3))
  x = np.asarray(result.x)
  w2 = wasserstein2(x, reference) if np.all(np.isfinite(x)) else float("nan")
  return int(result.nfe), w2


def width_sweep(num_samples):
  """The 10-NFE W2 of Euler and DPM-Solver++(2M), and their ratio, per mode width."""
  out = {}
  for radius, std in WIDTH_SWEEP:
    path, _, fields, x0, reference = _exact_problem(num_samples, radius, std)
    euler = _w2_at("euler", fields, path, x0, reference, 10, {})[1]
    dpm = _w2_at("dpm_solver_pp_2m", fields, path, x0, reference, 10, {})[1]
    out[f"radius={radius:g},std={std:g}"] = {"euler": euler, "dpm_solver_pp_2m": dpm,
                                             "ratio": euler / dpm}
    print("width sweep", radius, std, round(euler / dpm, 2), flush=True)
  return out


def quality_sweep(num_samples):
  path, target, fields, x0, reference = _exact_problem(num_samples, **TARGET)
  law1 = mixture_oracle(path, target).marginal(1.0)
  floor = wasserstein2(np.asarray(law1.sample(jax.random.PRNGKey(2), num_samples)),
                       np.asarray(law1.sample(jax.random.PRNGKey(1), num_samples)))
  rows, table = [], {}
  for label, options in SWEEP.items():
    name = "heun" if label == "heun_edm_grid" else label
    sampler = sampler_for(name, {k: v for k, v in options.items() if k != "grid"})
    per_step = sampler.evaluations
    table[label] = {}
    for budget in BUDGETS:
      nfe, w2 = _w2_at(name, fields, path, x0, reference, max(1, budget // per_step), options)
      table[label][budget] = {"nfe": nfe, "w2": w2}
      rows.append((label, budget, nfe, w2))
    print(label, {b: round(v["w2"], 3) for b, v in table[label].items()}, flush=True)
  table["dopri5"] = {}
  for tol in DOPRI5_TOLERANCES:
    result = jax.jit(lambda x, tol=tol: sample("dopri5", fields, path, x, None,
                                               num_steps=1, rtol=tol, atol=tol))(x0)
    w2 = wasserstein2(np.asarray(result.x), reference)
    table["dopri5"][f"tol={tol:g}"] = {"nfe": int(result.nfe), "w2": w2}
    rows.append((f"dopri5 (tol {tol:g})", "adaptive", int(result.nfe), w2))
  return table, rows, floor


def plot_quality(table, floor, filename):
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(8, 5.5))
  ax = fig.subplots()
  for label, entries in table.items():
    points = sorted((v["nfe"], v["w2"]) for v in entries.values())
    name = "heun" if label == "heun_edm_grid" else label
    style = "--" if sampler_for(name, SWEEP.get(label, {})).stochastic else "-"
    ax.plot(*zip(*points), style, marker="o", markersize=3, label=label)
  ax.axhline(floor, color="gray", linestyle=":", label="floor of independent samples")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("function evaluations (NFE)")
  ax.set_ylabel("W2 to the exact flow of the same source points")
  ax.set_title(f"VP path, exact score of an 8-mode ring mixture (radius {TARGET['radius']:g}, "
               f"std {TARGET['std']:g})")
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(filename, dpi=120)


def _compiled(fn, x):
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(x).compile()
  compile_time = time.perf_counter() - start
  jax.block_until_ready(compiled(x))
  return compiled, compile_time


def _run_time(compiled, x):
  start = time.perf_counter()
  jax.block_until_ready(compiled(x))
  return time.perf_counter() - start


def _network_velocity():
  """The velocity of a randomly initialised velocity-prediction MLP on the VP path."""
  path = build_path("vp")
  model = build_model("mlp", (2,), width=128, depth=3)
  params = model.init(jax.random.PRNGKey(0))
  return path, build_objective("score_matching", path, prediction="velocity").fields(
      model.apply, params).velocity


def _timed_rounds(compiled, x, repeats):
  """Run times of each compiled function in `repeats` interleaved rounds (one after
  another in every round, so slow drifts of the machine hit all alike)."""
  times = {label: [] for label in compiled}
  for _ in range(repeats):
    for label, fn in compiled.items():
      times[label].append(_run_time(fn, x))
  return times


def _round_ratios(times, ours, theirs):
  return [a / b for a, b in zip(times[ours], times[theirs])]


def heun_solvers(velocity, path, heun_steps):
  """Our Heun, diffrax's Heun and the bare-evaluation floor at the same NFE."""
  fields = Fields.of(velocity=velocity)
  dt = 1.0 / (2 * heun_steps)

  def bare_evaluations(x):
    def evaluation(x, t):
      return x + dt * velocity(x, t), None
    return jax.lax.scan(evaluation, x, jnp.linspace(0.0, 1.0, 2 * heun_steps))[0]

  return {
      "ours_heun": lambda x: sample("heun", fields, path, x, None, num_steps=heun_steps).x,
      "diffrax_heun": lambda x: diffrax_solve(velocity, x, solver="Heun",
                                              num_steps=heun_steps).ys[-1],
      "bare_evaluations": bare_evaluations}


def speed_solvers(batch, heun_steps, tol):
  """(x0, {label: fn}) of the speed comparison: ours and diffrax's Heun and Dopri5, and the
  bare-evaluation floor."""
  path, velocity = _network_velocity()
  fields = Fields.of(velocity=velocity)
  solvers = dict(heun_solvers(velocity, path, heun_steps))
  solvers.update({
      "ours_dopri5": lambda x: sample("dopri5", fields, path, x, None, num_steps=1,
                                      rtol=tol, atol=tol),
      "diffrax_dopri5": lambda x: diffrax_solve(velocity, x, solver="Dopri5", rtol=tol,
                                                atol=tol)})
  return jax.random.normal(jax.random.PRNGKey(1), (batch, 2)), solvers


def cold_compile_seconds(label, batch, heun_steps, tol):
  """Compile time of one solver in a fresh process, after an unrelated warm-up compile
  (so start-up costs of JAX and XLA are charged to no solver). Run by `cold_compile_times`."""
  x0, solvers = speed_solvers(batch, heun_steps, tol)
  jax.jit(lambda y: 2 * y).lower(x0).compile()
  return _compiled(solvers[label], x0)[1]


def cold_compile_times(labels, batch, heun_steps, tol, repeats):
  """Median over `repeats` fresh processes of each solver's first compile: the cost a user
  pays, which a second compile in the same process understates (diffrax's second compile
  of the same solver is about 2x faster, from caches inside equinox)."""
  times = {label: [] for label in labels}
  for _ in range(repeats):
    for label in labels:
      code = ("from benchmarks.solvers import cold_compile_seconds; "
              f"print(cold_compile_seconds({label!r}, {batch}, {heun_steps}, {tol}))")
      out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=REPO_ROOT)
      times[label].append(float(out.stdout.strip().splitlines()[-1]))
  return {label: statistics.median(seconds) for label, seconds in times.items()}


def speed_comparison(batch, heun_steps, tol, repeats, compile_repeats):
  """Compile times (medians over fresh processes), and run times as medians over
  `repeats` interleaved rounds; the ratios are medians of the per-round ratios."""
  x0, solvers = speed_solvers(batch, heun_steps, tol)
  compile_times = cold_compile_times(list(solvers), batch, heun_steps, tol, compile_repeats)
  compiled = {label: _compiled(fn, x0)[0] for label, fn in solvers.items()}
  times = _timed_rounds(compiled, x0, repeats)
  results = {}
  for label, fn in compiled.items():
    entry = {"compile_s": compile_times[label], "run_s": statistics.median(times[label])}
    out = fn(x0)
    if label == "ours_dopri5":
      entry["nfe"] = int(out.nfe)
      # Accepted and rejected attempts, after the start and the initial-step probe.
      entry["steps"] = (int(out.nfe) - 2) // sampler_for("dopri5").evaluations
    if label == "diffrax_dopri5":
      entry["steps"] = int(out.stats["num_steps"])
    results[label] = entry
    print(label, entry, flush=True)
  for kind in ("heun", "dopri5"):
    results[f"{kind}_round_ratios"] = _round_ratios(times, f"ours_{kind}", f"diffrax_{kind}")
    # Interference from other processes only adds time: the ratio of the fastest rounds
    # is a second estimate, reported beside the median of per-round ratios.
    results[f"{kind}_ratio_of_fastest"] = (min(times[f"ours_{kind}"])
                                           / min(times[f"diffrax_{kind}"]))
  for label in ("ours_heun", "diffrax_heun"):
    results[f"{label}_over_bare"] = statistics.median(
        _round_ratios(times, label, "bare_evaluations"))
  return results


def heun_batch_sweep(batches, heun_steps, repeats):
  """Median per-round Heun run-time ratios (ours / diffrax, and each over the bare
  evaluations) at several batch sizes."""
  path, velocity = _network_velocity()
  sweep = {}
  for batch in batches:
    x0 = jax.random.normal(jax.random.PRNGKey(1), (batch, 2))
    compiled = {label: _compiled(fn, x0)[0]
                for label, fn in heun_solvers(velocity, path, heun_steps).items()}
    times = _timed_rounds(compiled, x0, repeats)
    sweep[batch] = {
        "ours_over_diffrax": statistics.median(
            _round_ratios(times, "ours_heun", "diffrax_heun")),
        "ours_over_bare": statistics.median(
            _round_ratios(times, "ours_heun", "bare_evaluations")),
        "diffrax_over_bare": statistics.median(
            _round_ratios(times, "diffrax_heun", "bare_evaluations")),
        "ours_heun_s": statistics.median(times["ours_heun"])}
    print("heun batch", batch, sweep[batch], flush=True)
  return sweep


def main(argv=None):
  args = parse_args(__doc__.splitlines()[0], argv)
  quick = args.quick
  num_samples = 500 if quick else 2000
  table, rows, floor = quality_sweep(num_samples)
  widths = width_sweep(num_samples)
  speed = speed_comparison(batch=1000 if quick else 4096, heun_steps=50, tol=1e-4,
                           repeats=5 if quick else 40, compile_repeats=1 if quick else 3)
  batch_sweep = heun_batch_sweep((256, 1024, 4096), heun_steps=50,
                                 repeats=5 if quick else 15)
  dpm = table["dpm_solver_pp_2m"][10]["w2"]
  figures = {
      "time_ratio_vs_diffrax_heun": statistics.median(speed["heun_round_ratios"]),
      "time_ratio_vs_diffrax_dopri5": statistics.median(speed["dopri5_round_ratios"]),
      "time_ratio_vs_diffrax_heun_fastest_rounds": speed["heun_ratio_of_fastest"],
      "time_ratio_vs_diffrax_dopri5_fastest_rounds": speed["dopri5_ratio_of_fastest"],
      "heun_time_over_bare_evaluations": speed["ours_heun_over_bare"],
      "diffrax_heun_time_over_bare_evaluations": speed["diffrax_heun_over_bare"],
      "compile_ratio_vs_diffrax":
          (speed["ours_heun"]["compile_s"] + speed["ours_dopri5"]["compile_s"])
          / (speed["diffrax_heun"]["compile_s"] + speed["diffrax_dopri5"]["compile_s"]),
      "euler_over_dpmpp_w2_at_10nfe": table["euler"][10]["w2"] / dpm,
      "euler_over_exponential_pc_w2_at_10nfe":
          table["euler"][10]["w2"] / table["exponential_pc"][10]["w2"],
  }
  os.makedirs(RESULTS_DIR, exist_ok=True)
  plot_name = "solvers_quick.png" if quick else "solvers.png"
  plot_quality(table, floor, os.path.join(RESULTS_DIR, plot_name))
  speed_rows = [(k, v["compile_s"], v["run_s"], v.get("nfe", v.get("steps", "")))
                for k, v in speed.items() if isinstance(v, dict)]
  width_rows = [(k, v["euler"], v["dpm_solver_pp_2m"], v["ratio"]) for k, v in widths.items()]
  batch_rows = [(b, v["ours_over_diffrax"], v["ours_over_bare"], v["diffrax_over_bare"])
                for b, v in batch_sweep.items()]
  markdown = (f"Target: 8-mode ring mixture, radius {TARGET['radius']:g}, std "
              f"{TARGET['std']:g}, VP path.\n\n"
              f"W2 floor between two exact sample sets of {num_samples}: {floor:.4f}\n\n"
              + markdown_table(("sampler", "NFE budget", "NFE", "W2"), rows)
              + "\n\nMode-width sweep at 10 NFE:\n\n"
              + markdown_table(("ring", "Euler W2", "DPM-Solver++(2M) W2", "ratio"), width_rows)
              + "\n\n" + markdown_table(("solver", "compile s", "run s", "NFE / steps"),
                                        speed_rows)
              + "\n\nHeun (50 steps) run-time ratios by batch size:\n\n"
              + markdown_table(("batch", "ours / diffrax", "ours / bare evaluations",
                                "diffrax / bare evaluations"), batch_rows)
              + f"\n\nPlot: `benchmarks/results/{plot_name}`")
  command = "python -m benchmarks.solvers" + (" --quick" if quick else "")
  write_results("solvers", figures,
                {"quality": table, "target": TARGET, "width_sweep": widths, "w2_floor": floor,
                 "num_samples": num_samples,
                 "speed": speed, "heun_batch_sweep": batch_sweep, "plot": plot_name}, markdown, quick, command)


if __name__ == "__main__":
  main(sys.argv[1:])
