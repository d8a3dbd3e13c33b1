"""The evaluation table of a graph generator: squared MMDs (`diffjax.graphs.mmd`) to the
test graphs of several sets of generated graphs, beside as many sets of an Erdős–Rényi
baseline fitted to the training graphs and of training graphs (the train-vs-test floor: what
an ideal generator of as many graphs scores), and the figures a paper reports.
"""
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from diffjax.graphs.erdos_renyi import ErdosRenyi
from diffjax.graphs.mmd import graph_mmd_over_seeds

# The flat metric names' prefixes of the table's measured rows.
ROW_PREFIXES = {"GDSS (this run)": "", "Erdős–Rényi": "erdos_renyi_",
                "train vs test": "train_vs_test_"}


def mmd_table(train: Sequence, test: Sequence, generated: Sequence, num_sets: int,
              rng: np.random.Generator, reported: Optional[Mapping[str, float]] = None
              ) -> Tuple[Dict[str, float], Dict[str, dict]]:
  """(metrics, rows) for `generated`, a list of 0/1 adjacency matrices cut into `num_sets`
  equal sets.

  rows maps a label to {statistic: (mean, std) over the sets} ("GDSS (reported)":
  {statistic: value} first when `reported` is given); metrics flattens the measured rows
  ("degree", "degree_std", "erdos_renyi_degree", ..., "train_vs_test_orbit_std") and adds
  num_seeds, erdos_renyi_p, mean_edges and test_mean_edges. `rng` draws the baseline's
  graphs and the training subsets (each the size of the test split).
  """
  size = len(generated) // num_sets
  sets = [list(generated[i * size:(i + 1) * size]) for i in range(num_sets)]
  er = ErdosRenyi.fit(train)
  rows = {} if reported is None else {"GDSS (reported)": dict(reported)}
  rows["GDSS (this run)"] = graph_mmd_over_seeds(test, sets)
  rows["Erdős–Rényi"] = graph_mmd_over_seeds(
      test, [er.sample(rng, size) for _ in range(num_sets)])
  rows["train vs test"] = graph_mmd_over_seeds(
      test, [[train[i] for i in rng.choice(len(train), len(test), replace=False)]
             for _ in range(num_sets)])
  metrics = {}
  for label, prefix in ROW_PREFIXES.items():
    for name, (mean, std) in rows[label].items():
      metrics.update({prefix + name: mean, f"{prefix}{name}_std": std})
  metrics.update(num_seeds=num_sets, erdos_renyi_p=er.p,
                 mean_edges=float(np.mean([g.sum() / 2 for g in generated])),
                 test_mean_edges=float(np.mean([g.sum() / 2 for g in test])))
  return metrics, rows


def pool_over_runs(records: Sequence[Mapping[str, float]],
                   statistics=("degree", "clustering", "orbit")) -> Dict[str, dict]:
  """Rows of the MMD table pooled over several runs (e.g. training seeds), from each run's
  evaluation record (`mmd_table`'s metrics, as metrics.jsonl holds them).

  Each run holds num_seeds sets with mean m_i and population std s_i per statistic; the
  pooled mean and population std over all the sets are mean_i m_i and
  sqrt(mean_i (s_i^2 + m_i^2) - (mean_i m_i)^2) (runs with equal num_seeds). Returns
  {label: {statistic: (mean, std)}} for the measured rows of `ROW_PREFIXES`.
  """
  if len({r["num_seeds"] for r in records}) != 1:
    raise ValueError("Pooling needs runs with the same num_seeds; got "
                     f"{[r['num_seeds'] for r in records]}.")
  rows = {}
  for label, prefix in ROW_PREFIXES.items():
    row = {}
    for name in statistics:
      means = np.array([r[prefix + name] for r in records])
      stds = np.array([r[f"{prefix}{name}_std"] for r in records])
      mean = float(means.mean())
      row[name] = (mean, float(np.sqrt(max(np.mean(stds ** 2 + means ** 2) - mean ** 2, 0.0))))
    rows[label] = row
  return rows
