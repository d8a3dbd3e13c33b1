"""Bridge studies: several runs of `experiments.bridges` and one table in --workdir.

  python -m experiments.bridge_studies gaussian --workdir=DIR   # learned vs closed form
      [--dims=8]
  python -m experiments.bridge_studies toy --workdir=DIR        # IPF vs IMF, NFE
  python -m experiments.bridge_studies snapshots --workdir=DIR  # SBIRR vs vanilla, 3 seeds
      [--system=repressilator] [--oracle]

Each run is an ordinary run in its own subdirectory (rerunning resumes it); --tiny runs the
configs' seconds-long versions. Tables: <study>.md (and .json with every run's last
evaluation), plus the toy study's convergence plots.
"""
import argparse
import json

import experiments
from configs.bridges import gaussian as gaussian_config
from configs.bridges import lotka_volterra, repressilator, toy
from diffjax.bridges import plots, studies
from diffjax import tables
from diffjax.train import storage
from diffjax.train import workdir as workdir_lib
from diffjax.train.writer import figure_to_png


def _read_metrics(workdir):
  return workdir_lib.read_metrics(workdir, null_as_nan=True)   # Non-finite metrics: NaN.


def _run(config, workdir):
  config.lock()
  experiments.run(config, workdir)
  return _read_metrics(workdir)


def gaussian_study(workdir, tiny=False, dims=(2, 8)):
  """SB-CFM, IPF and IMF between two 2D and two 8D Gaussians against the closed form."""
  rows, record = [], {}
  for dim in dims:
    for method in ("sbcfm", "ipf", "imf"):
      config = gaussian_config.get_config(method + (",tiny" if tiny else ""))
      config.data.dim = dim
      last = _run(config, str(storage.workdir_path(workdir) / f"{method}_{dim}d"))[-1]
      record[f"{method}_{dim}d"] = {k: last[k] for k in studies.GAUSSIAN_STUDY_KEYS}
      rows.append([f"{dim}D", method] + [f"{last[k]:.3f}"
                                         for k in studies.GAUSSIAN_STUDY_KEYS])
  _write_table(workdir, "gaussian_study",
               ["dim", "method"] + list(studies.GAUSSIAN_STUDY_KEYS.values()), rows, record,
               "Relative Frobenius errors of the learned bridge's moments (forward SDE "
               "from N(a, A); the backward column: the backward SDE from N(b, B)) against "
               "the closed form.")


def toy_study(workdir, tiny=False):
  """IPF and IMF on moons -> 8 gaussians: end-marginal errors per iteration and NFE.

  The end errors are W2 and energy distances between 2000 simulated and 2000 held-out
  samples at t = 1 (forward SDE, 8 gaussians) and t = 0 (backward SDE, moons). W2 between
  two independent 2000-sample draws is 0.31-0.65 for the 8 gaussians (the draws' mode
  counts differ) and 0.22-0.25 for the moons, so W2 saturates early; the energy distance
  keeps falling. The summary says when IMF first reaches IPF's final errors at both ends.
  """
  metrics = ("w2", "energy_distance")
  curves = {}
  for method in ("ipf", "imf"):
    config = toy.get_config(method + (",tiny" if tiny else ""))
    records = _run(config, str(storage.workdir_path(workdir) / method))
    curves[method] = studies.end_error_curve(config, records, metrics)
  summary = {"ipf_nfe": curves["ipf"][-1]["nfe"], "imf_nfe": curves["imf"][-1]["nfe"]}
  for m in metrics:
    final = curves["ipf"][-1]
    summary[f"ipf_final_{m}"] = {end: final[f"{end}_{m}"] for end in studies.ENDS}
    summary[f"imf_nfe_to_reach_ipf_final_{m}"] = studies.first_reaching(curves["imf"],
                                                                        final, m)
  rows = [[m, i + 1, r["step"], r["nfe"]] + [f"{r[k]:.4f}" for k in
                                            ("forward_w2", "backward_w2",
                                             "forward_energy_distance",
                                             "backward_energy_distance")]
          for m in ("ipf", "imf") for i, r in enumerate(curves[m])]
  header = ["method", "evaluation", "step", "network evaluations", "W2 t=1 (forward)",
            "W2 t=0 (backward)", "energy t=1", "energy t=0"]
  _write_table(workdir, "toy_study", header, rows, {**curves, "summary": summary},
               "End-marginal errors per iteration (see the module docstring for the "
               "sampling floors); summary: " + json.dumps(summary))
  for m in metrics:
    fig = plots.convergence_figure(
        {f"{method} {end}": ([r["nfe"] for r in curves[method]],
                             [r[f"{end}_{m}"] for r in curves[method]])
         for method in ("ipf", "imf") for end in studies.ENDS},
        "network evaluations", f"{m} to the end marginal",
        "IPF vs IMF, moons -> 8 gaussians")
    storage.write_bytes(storage.workdir_path(workdir) / f"toy_study_{m}.png",
                        figure_to_png(fig))


# The snapshot study's columns: its config variants and their headers.
SNAPSHOT_COLUMNS = {"vanilla": "vanilla SB", "refined": "SBIRR (refined)",
                    "oracle": "SB under the true reference"}


def snapshot_study(workdir, tiny=False, seeds=(0, 1, 2), system="lotka_volterra",
                   oracle=False):
  """SBIRR vs vanilla multi-marginal SB on held-out snapshots over seeds (and, with
  `oracle`, vanilla SB under the simulating system's true reference)."""
  module = {"lotka_volterra": lotka_volterra, "repressilator": repressilator}[system]
  variants = ("vanilla", "refined") + (("oracle",) if oracle else ())
  results = {}
  for variant in variants:
    for seed in seeds:
      config = module.get_config(variant + (",tiny" if tiny else ""))
      config.seed = seed
      config.data.seed = seed
      last = _run(config, str(storage.workdir_path(workdir) / f"{variant}_seed{seed}"))[-1]
      results[(variant, seed)] = last
  rows = studies.snapshot_rows(results, variants, seeds, refined="refined")
  record = {f"{v}_seed{s}": r for (v, s), r in results.items()}
  _write_table(workdir, f"{system}_study", ["held-out time (EMD) / parameter"]
               + [SNAPSHOT_COLUMNS[v] for v in variants], rows, record,
               f"Earth mover's distance to held-out snapshots, mean ± std over seeds "
               f"{list(seeds)}; the refined reference's parameters' relative errors.")


def _write_table(workdir, name, header, rows, record, caption):
  print(tables.write_table(workdir, name, header, rows, record, caption))


STUDIES = {"gaussian": gaussian_study, "toy": toy_study, "snapshots": snapshot_study}


def main(argv=None):
  parser = argparse.ArgumentParser(description="Bridge studies (several runs, one table).")
  parser.add_argument("study", choices=sorted(STUDIES))
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--tiny", action="store_true")
  parser.add_argument("--system", default="lotka_volterra",
                      help="snapshots study: lotka_volterra or repressilator")
  parser.add_argument("--oracle", action="store_true",
                      help="snapshots study: also vanilla SB under the true reference")
  parser.add_argument("--dims", default="2,8",
                      help="gaussian study: the dimensions, comma-separated")
  args = parser.parse_args(argv)
  options = {"snapshots": {"system": args.system, "oracle": args.oracle},
             "gaussian": {"dims": tuple(int(d) for d in args.dims.split(","))}
             }.get(args.study, {})
  STUDIES[args.study](args.workdir, tiny=args.tiny, **options)


if __name__ == "__main__":
  main()
