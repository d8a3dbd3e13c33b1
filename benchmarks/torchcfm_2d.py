"""TorchCFM's 2D benchmark side by side ("Improving and generalizing flow-based generative
models with minibatch optimal transport", Tong et al., 2D table).

  python -m benchmarks.torchcfm_2d [--quick]

Tasks N->8gaussians, moons->8gaussians, N->moons, N->scurve; methods I-CFM, OT-CFM, SB-CFM,
FM (Gaussian source only), VP-CFM. Both sides train the same MLP (width 64, three SELU
layers, time concatenated), with Adam (lr 1e-3), the same batch size and step count, in
this run. Ours trains through the library (couplings, path, objective) with its train step
(`diffjax.train.make_train_step`) in a `lax.scan`; TorchCFM's side uses its matchers and
`OTPlanSampler` (POT), exactly as its examples do.

Metrics (means +- std over seeds):
- W2: exact 2-Wasserstein distance (POT) between samples of the learned ODE (adaptive
  Dormand-Prince, rtol = atol = 1e-4) and held-out target samples.
- NPE: normalised path energy |PE - W2^2(rho0, rho1)| / W2^2(rho0, rho1), with
  PE = E int_0^1 |v(x_t, t)|^2 dt along the learned ODE (200 Euler steps) and W2^2 between
  held-out source and target samples.
- NFE of the adaptive solver: ours `sample("dopri5", ...)` (diffjax.solvers.adaptive),
  TorchCFM's torchdyn `NeuralODE(solver="dopri5")`; both rtol = atol = 1e-4 (the two
  controllers measure error differently, so NFE compares each library's own pipeline).
- Per-step training time, and its ratio TorchCFM / ours (`speedup_vs_torchcfm`, I-CFM on
  N->8gaussians; the per-method ratios are in the details).
Data: TorchCFM's own samplers for its side; ours with the same definitions
(8 gaussians radius 5, std 0.1^(1/4); moons with torchdyn's uniform diagonal noise;
scikit-learn's S-curve, noise 0.05, coordinates (0, 2), times 1.5).
"""
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import ot
import torch

from benchmarks import common
from diffjax import metrics
from diffjax.core import Fields
from diffjax.couplings import COUPLINGS
from diffjax.data import get_sampler
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.solvers import sample
from diffjax.train import create_train_state, make_train_step, scan_steps

NAME = "torchcfm_2d"
SIGMA, SB_SIGMA = 0.1, 0.5
TASKS = {"N->8gaussians": ("normal", "8gaussians"), "moons->8gaussians": ("moons", "8gaussians"),
         "N->moons": ("normal", "moons"), "N->scurve": ("normal", "scurve")}
METHODS = ("I-CFM", "OT-CFM", "SB-CFM", "FM", "VP-CFM")
OURS_DATA = {"normal": get_sampler("standard_normal"),
             "8gaussians": get_sampler("eight_gaussians"),
             "moons": get_sampler("moons", noise_type="torchdyn"),
             "scurve": get_sampler("s_curve")}
TOL = 1e-4


# ----------------------------------------------------------------------------- ours

def _our_method(method):
  """(coupling, path) of each method; the objective is flow matching (velocity MSE)."""
  couple = COUPLINGS.get("independent")
  if method == "OT-CFM":
    couple = COUPLINGS.get("exact_ot")
  elif method == "SB-CFM":
    couple = functools.partial(COUPLINGS.get("sinkhorn_ot"), epsilon=2 * SB_SIGMA ** 2)
  path = {"I-CFM": dict(name="linear", gamma="constant", gamma_scale=SIGMA),
          "OT-CFM": dict(name="linear", gamma="constant", gamma_scale=SIGMA),
          "SB-CFM": dict(name="linear", gamma="sqrt", gamma_scale=SB_SIGMA),
          "FM": dict(name="lipman", sigma_min=SIGMA),
          "VP-CFM": dict(name="vp_cfm", gamma="constant", gamma_scale=SIGMA)}[method]
  return couple, build_path(**path)


MODEL = build_model("mlp", (2,), width=64, depth=3, activation="selu",
                    time_embedding="concat")
OPTIMIZER = optax.adam(1e-3)
CHUNK = 50   # Training steps per compiled call.


@functools.lru_cache(maxsize=None)
def _train_chunk(task, method, batch_size):
  """Jitted state -> state after CHUNK steps of the train step (`diffjax.train.step`);
  compiled once per (task, method) and reused across seeds."""
  src, tgt = (OURS_DATA[n] for n in TASKS[task])
  couple, path = _our_method(method)
  objective = build_objective("flow_matching", path)

  def loss(params, key, shard, step, batch):
    del shard, step, batch
    k0, k1, kc, kl = jax.random.split(key, 4)
    x0, x1 = couple(kc, src(k0, batch_size), tgt(k1, batch_size))
    return objective.loss(MODEL.apply, params, kl, x0, x1)

  step = make_train_step(loss, OPTIMIZER)
  return jax.jit(lambda state: scan_steps(step, state, CHUNK)[0], donate_argnums=0)


def train_ours(task, method, seed, num_steps, batch_size):
  """Returns (params, seconds per training step; the first, compiling chunk excluded)."""
  run = _train_chunk(task, method, batch_size)
  state = jax.jit(lambda key: create_train_state(MODEL.init, OPTIMIZER, key))(
      jax.random.PRNGKey(seed))
  state = jax.block_until_ready(run(state))
  start = time.perf_counter()
  for _ in range(2, num_steps // CHUNK + 1):
    state = run(state)
  jax.block_until_ready(state)
  return state.params, (time.perf_counter() - start) / (num_steps - CHUNK)


@jax.jit
def _evaluate_ours(params, x0):
  field = lambda x, t: MODEL.apply(params, x, t)
  result = sample("dopri5", Fields.of(velocity=field), None, x0, None, rtol=TOL, atol=TOL)
  ts = jnp.linspace(0.0, 1.0, 201)

  def euler(x, times):
    v = field(x, times[0])
    return x + (times[1] - times[0]) * v, jnp.mean(jnp.sum(v ** 2, -1))
  _, speeds = jax.lax.scan(euler, x0, (ts[:-1], ts[1:]))
  return result.x, result.nfe, jnp.mean(speeds)


# ----------------------------------------------------------------------------- TorchCFM

def _torch_sampler(name):
  from torchcfm import utils  # pylint: disable=g-import-not-at-top
  if name == "normal":
    return lambda n: torch.randn(n, 2)
  if name == "8gaussians":
    return utils.sample_8gaussians
  if name == "moons":
    return utils.sample_moons
  import sklearn.datasets  # pylint: disable=g-import-not-at-top
  return lambda n: torch.tensor(
      1.5 * sklearn.datasets.make_s_curve(n, noise=0.05)[0][:, [0, 2]], dtype=torch.float32)


def _torch_matcher(method):
  from torchcfm import conditional_flow_matching as cfm  # pylint: disable=g-import-not-at-top
  return {"I-CFM": lambda: cfm.ConditionalFlowMatcher(sigma=SIGMA),
          "OT-CFM": lambda: cfm.ExactOptimalTransportConditionalFlowMatcher(sigma=SIGMA),
          "SB-CFM": lambda: cfm.SchrodingerBridgeConditionalFlowMatcher(
              sigma=SB_SIGMA, ot_method="sinkhorn"),
          "FM": lambda: cfm.TargetConditionalFlowMatcher(sigma=SIGMA),
          "VP-CFM": lambda: cfm.VariancePreservingConditionalFlowMatcher(sigma=SIGMA)}[method]()


def train_torchcfm(task, method, seed, num_steps, batch_size):
  from torchcfm.models.models import MLP  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  np.random.seed(seed)
  src, tgt = (_torch_sampler(n) for n in TASKS[task])
  matcher = _torch_matcher(method)
  model = MLP(dim=2, w=64, time_varying=True)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  warm = min(50, num_steps // 4)
  start = None
  for i in range(num_steps):
    if i == warm:
      start = time.perf_counter()
    optimizer.zero_grad()
    x0, x1 = src(batch_size), tgt(batch_size)
    t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
    vt = model(torch.cat([xt, t[:, None]], dim=-1))
    loss = torch.mean((vt - ut) ** 2)
    loss.backward()
    optimizer.step()
  per_step = (time.perf_counter() - start) / (num_steps - warm)
  return model, per_step


def _evaluate_torchcfm(model, x0):
  from torchdyn.core import NeuralODE  # pylint: disable=g-import-not-at-top
  from torchcfm.utils import torch_wrapper  # pylint: disable=g-import-not-at-top
  calls = [0]

  class Counted(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.inner = torch_wrapper(model)

    def forward(self, t, x, *args, **kwargs):
      calls[0] += 1
      return self.inner(t, x)

  x0 = torch.tensor(np.asarray(x0))
  with torch.no_grad():
    node = NeuralODE(Counted(), solver="dopri5", sensitivity="adjoint", atol=TOL, rtol=TOL)
    traj = node.trajectory(x0, t_span=torch.linspace(0, 1, 2))
    x, energy = x0, 0.0
    for i in range(200):
      t = torch.full((len(x), 1), i / 200)
      v = model(torch.cat([x, t], -1))
      energy += torch.mean(torch.sum(v ** 2, -1)).item() / 200
      x = x + v / 200
  return traj[-1].numpy(), calls[0], energy


# ----------------------------------------------------------------------------- harness

def _w2_sq(x, y):
  cost = ot.dist(np.asarray(x, np.float64), np.asarray(y, np.float64))
  return ot.emd2(ot.unif(len(x)), ot.unif(len(y)), cost, numItermax=10_000_000)


def _trajectory_png(task, fields_by_side, x0, path_png):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(fields_by_side), figsize=(4 * len(fields_by_side), 4))
  for ax, (label, traj) in zip(np.atleast_1d(axes), fields_by_side.items()):
    ax.plot(traj[:, :, 0], traj[:, :, 1], color="olive", alpha=0.2, lw=0.5)
    ax.scatter(traj[0, :, 0], traj[0, :, 1], s=3, c="black")
    ax.scatter(traj[-1, :, 0], traj[-1, :, 1], s=3, c="tab:blue")
    ax.set_title(label, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(task)
  fig.tight_layout()
  fig.savefig(path_png, dpi=90)
  plt.close(fig)


@jax.jit
def _euler_trajectory_ours(params, x0, steps=50):
  def body(x, t):
    x = x + MODEL.apply(params, x, t) / steps
    return x, x
  _, xs = jax.lax.scan(body, x0, jnp.arange(steps) / steps)
  return jnp.concatenate([x0[None], xs])


def _euler_trajectory_torch(model, x0, steps=50):
  x = torch.tensor(np.asarray(x0))
  xs = [x.numpy()]
  with torch.no_grad():
    for i in range(steps):
      t = torch.full((len(x), 1), i / steps)
      x = x + model(torch.cat([x, t], -1)) / steps
      xs.append(x.numpy())
  return np.stack(xs)


def _stats(values):
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std())


def main(argv=None):
  args = common.parse_args(__doc__.splitlines()[0], argv)
  quick = args.quick
  seeds = (0, 1) if quick else (0, 1, 2, 3, 4)
  num_steps = 200 if quick else 1000
  batch_size = 128 if quick else 256
  num_eval = 300 if quick else 1000
  tasks = list(TASKS)
  torch.set_num_threads(1)
  results, figures, plots = {}, {}, {}
  for task in tasks:
    src_name, tgt_name = TASKS[task]
    ref_key = jax.random.PRNGKey(12345)
    x0_eval = np.asarray(OURS_DATA[src_name](jax.random.fold_in(ref_key, 0), num_eval))
    reference = np.asarray(OURS_DATA[tgt_name](jax.random.fold_in(ref_key, 1), num_eval))
    w2_sq_data = _w2_sq(x0_eval, reference)
    for method in METHODS:
      if method == "FM" and src_name != "normal":
        continue
      rows = {"ours": [], "torchcfm": []}
      for seed in seeds:
        params, ours_time = train_ours(task, method, seed, num_steps, batch_size)
        x1, nfe, pe = _evaluate_ours(params, jnp.asarray(x0_eval))
        rows["ours"].append(dict(w2=metrics.wasserstein2(np.asarray(x1), reference),
                                 npe=abs(float(pe) - w2_sq_data) / w2_sq_data,
                                 nfe=int(nfe), step_ms=1e3 * ours_time))
        model, torch_time = train_torchcfm(task, method, seed, num_steps, batch_size)
        x1_t, nfe_t, pe_t = _evaluate_torchcfm(model, x0_eval)
        rows["torchcfm"].append(dict(w2=metrics.wasserstein2(x1_t, reference),
                                     npe=abs(pe_t - w2_sq_data) / w2_sq_data, nfe=nfe_t,
                                     step_ms=1e3 * torch_time))
        if seed == seeds[0]:
          plots[(task, method)] = {
              f"{method} ours": np.asarray(_euler_trajectory_ours(
                  params, jnp.asarray(x0_eval[:200]))),
              f"{method} TorchCFM": _euler_trajectory_torch(model, x0_eval[:200])}
      summary = {}
      for side, side_rows in rows.items():
        summary[side] = {m: _stats([r[m] for r in side_rows])
                         for m in ("w2", "npe", "nfe", "step_ms")}
        slug = task.replace("->", "_to_").replace("N_", "normal_").lower()
        figures[f"w2_{slug}_{method.lower().replace('-', '')}_{side}"] = summary[side]["w2"][0]
      summary["speedup"] = summary["torchcfm"]["step_ms"][0] / summary["ours"]["step_ms"][0]
      results[f"{task} {method}"] = summary
      print(f"{task:18s} {method:7s} ours W2 {summary['ours']['w2'][0]:.3f} "
            f"torchcfm W2 {summary['torchcfm']['w2'][0]:.3f} speedup {summary['speedup']:.1f}x",
            flush=True)
  figures["speedup_vs_torchcfm"] = results["N->8gaussians I-CFM"]["speedup"]
  figures["speedup_vs_torchcfm_median_all_methods"] = float(
      np.median([r["speedup"] for r in results.values()]))
  os.makedirs(common.RESULTS_DIR, exist_ok=True)
  for task in tasks:
    sides = {k: v for (t, _), d in plots.items() if t == task for k, v in d.items()}
    name = task.replace("->", "_to_").replace(" ", "")
    if not quick:   # The quick run's plots would overwrite the full run's.
      _trajectory_png(task, sides, None, os.path.join(common.RESULTS_DIR,
                                                      f"{NAME}_trajectories_{name}.png"))
  fmt = lambda s: f"{s[0]:.3f} ± {s[1]:.3f}"
  tables = []
  for side, title in (("ours", "diffjax"), ("torchcfm", "TorchCFM")):
    rows = [[key.split(" ")[0], key.split(" ")[1], fmt(r[side]["w2"]), fmt(r[side]["npe"]),
             fmt(r[side]["nfe"]), f"{r[side]['step_ms'][0]:.2f}"]
            for key, r in results.items()]
    tables.append(f"## {title}\n\n" + common.markdown_table(
        ["task", "method", "W2", "NPE", "NFE (dopri5)", "ms/step"], rows))
  speed_rows = [[k, f"{r['speedup']:.1f}x"] for k, r in results.items()]
  markdown = (f"{len(seeds)} seeds, {num_steps} steps, batch {batch_size}, "
              f"{num_eval} held-out samples.\n\n" + "\n\n".join(tables)
              + "\n\n## Per-step speed ratio (TorchCFM / diffjax)\n\n"
              + common.markdown_table(["task method", "speedup"], speed_rows)
              + f"\n\nTrajectory plots: `benchmarks/results/{NAME}_trajectories_*.png`.")
  details = {"seeds": list(seeds), "num_steps": num_steps, "batch_size": batch_size,
             "num_eval": num_eval, "results": results}
  command = f"python -m benchmarks.{NAME}" + (" --quick" if quick else "")
  common.write_results(NAME + ("_quick" if quick else ""), figures, details, markdown, quick,
                       command)


if __name__ == "__main__":
  main()
