"""Schrödinger bridges: SB-CFM, IPF (DSB), IMF (DSBM) between two distributions, and
multi-marginal bridges through snapshots with iterative reference refinement (SBIRR).

Config sections read here: bridge, data, reference, model, eval (and the engine's). The
method's phases (`diffjax.bridges`) define the run; train.num_steps only stops it early.
Data kinds: "gaussian" (two Gaussians of dimension data.dim drawn from data.seed, with the
closed-form bridge as the oracle), "toy2d" (data.source -> data.target samplers),
"snapshots" (a simulated system or an .npz file; method sbirr).

The studies that combine several runs into one table are `experiments.bridge_studies`.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from diffjax import metrics as metrics_lib
from diffjax import plotting
from diffjax.bridges import (bridge_matching, evaluation, gaussian, imf, ipf, mean_matching,
                             multimarginal, plots, sbirr)
from diffjax.bridges.host_coupling import HOST_COUPLINGS, coupled_batches
from diffjax.bridges.metrics import earth_movers_distance
from diffjax.bridges.reference import (DRIFT_FAMILIES, brownian, check_sigma,
                                       reference_process)
from diffjax.couplings import COUPLINGS
from diffjax.data import get_sampler
from diffjax.data.snapshots import (SNAPSHOT_SYSTEMS, load_snapshots, simulate_snapshots,
                                    split_alternate)
from diffjax.errors import ConfigError
from diffjax.models import build_model
from diffjax.train import Task, parallel
from diffjax.train.validation import Key, check_keys
from diffjax.pipeline import PIPELINE_KEYS, component_options

METHODS = ("sbcfm", "ipf", "imf", "sbirr")
DATA_KINDS = ("gaussian", "toy2d", "snapshots")

# Values this family reads, checked before anything is built (bridge.sigma by the
# library's check_sigma, names of samplers / metrics / families by their registries).
BRIDGE_KEYS = (
    Key("bridge.method", "name", names=lambda: METHODS),
    Key("data.kind", "name", names=lambda: DATA_KINDS),
    Key("bridge.num_steps", "int", 1, meaning="Euler–Maruyama steps (per segment)"),
    Key("bridge.gamma_min", "float", 0.0, open_low=True),
    Key("bridge.gamma_max", "float", 0.0, open_low=True),
    Key("bridge.num_iterations", "int", 1, meaning="IPF / IMF iterations"),
    Key("bridge.steps_per_phase", "int", 1, meaning="regression steps per half-iteration"),
    Key("bridge.cache_size", "int", 1, meaning="paths per trajectory cache"),
    Key("bridge.caches_per_phase", "int", 1),
    Key("bridge.initial_steps", "int", 0, meaning="0: bridge.steps_per_phase"),
    Key("bridge.initial_coupling", "name", names=COUPLINGS.names),
    Key("bridge.host_coupling", "bool"),
    Key("bridge.t_margin", "float", 0.0, 0.5, open_low=True, open_high=True),
    Key("data.dim", "int", 1, meaning="dimension of the Gaussians"),
    Key("data.seed", "int", 0, 2 ** 31 - 1),
    Key("data.num_points", "int", 1, meaning="points per simulated snapshot"),
    Key("data.times_step", "float", 0.0, open_low=True),
    Key("data.hold_out", "bool"),
    Key("reference.family", "name", names=DRIFT_FAMILIES.names),
    Key("reference.refine", "bool"),
    Key("reference.num_outer", "int", 1, meaning="outer iterations of SBIRR"),
    Key("reference.refit_paths", "int", 1),
    Key("reference.lm_iterations", "int", 1),
    Key("eval.num_trajectories", "int", 0),
    Key("eval.reference_seed", "int", 0, 2 ** 31 - 2),
) + tuple(k for k in PIPELINE_KEYS if k.path == "eval.num_samples")


def _choice(value, valid, key):
  if value not in valid:
    raise ConfigError(f"{key}={value!r} is not valid; choose one of {', '.join(valid)}.")
  return value


def gaussian_endpoints(dim, seed, blocks=()):
  """Two Gaussians in dimension dim: (mean0, cov0, mean1, cov1), float32, from seed. With
  `blocks` (sizes summing to dim) both covariances are block-diagonal: independent blocks,
  whose bridges are independent too (the Brownian reference factorises)."""
  rng = np.random.default_rng(seed)
  blocks = tuple(blocks) or (dim,)
  if sum(blocks) != dim:
    raise ConfigError(f"data.blocks={blocks} must sum to data.dim={dim}.")
  out = []
  for scale in (1.0, 2.0):
    cov = np.zeros((dim, dim))
    start = 0
    for size in blocks:
      m = rng.normal(size=(size, size))
      cov[start:start + size, start:start + size] = scale * (m @ m.T / size
                                                             + 0.3 * np.eye(size))
      start += size
    out += [rng.normal(size=dim).astype(np.float32), cov.astype(np.float32)]
  return tuple(out)


def _gaussian_sampler(mean, cov):
  root = np.linalg.cholesky(np.asarray(cov, np.float64)).astype(np.float32)
  mean, root = jnp.asarray(mean), jnp.asarray(root)
  return lambda key, n: mean[None] + jax.random.normal(key, (n, mean.shape[0])) @ root.T


def gaussian_oracle(config):
  """The closed-form bridge between a "gaussian" config's two Gaussians."""
  if not isinstance(config.data.dim, int) or config.data.dim < 1:
    raise ConfigError(f"data.dim={config.data.dim!r} must be a positive integer.")
  a, cov_a, b, cov_b = gaussian_endpoints(config.data.dim, config.data.seed,
                                          config.data.blocks)
  return gaussian.gaussian_bridge(a, cov_a, b, cov_b, brownian(config.bridge.sigma))


def _endpoints(config):
  """(dim, source sampler, target sampler, closed-form bridge or None)."""
  if config.data.kind == "gaussian":
    oracle = gaussian_oracle(config)
    return (config.data.dim, _gaussian_sampler(oracle.mean0, oracle.cov0),
            _gaussian_sampler(oracle.mean1, oracle.cov1), oracle)
  return 2, get_sampler(config.data.source), get_sampler(config.data.target), None


def _networks(config, dim):
  model = build_model(config.model.name, (dim,), **component_options(config.model))

  def init_params(key):
    return {"forward": model.init(jax.random.fold_in(key, 0)),
            "backward": model.init(jax.random.fold_in(key, 1))}
  return model, init_params


def build_task(config) -> Task:
  """Builds the task; invalid values fail here, before any workdir is touched."""
  check_keys(config, BRIDGE_KEYS)
  method, kind = config.bridge.method, config.data.kind
  check_sigma(config.bridge.sigma, "bridge.sigma")
  if (method == "sbirr") != (kind == "snapshots"):
    raise ConfigError(f"bridge.method={method!r} with data.kind={kind!r}: snapshot data "
                      "go with method 'sbirr', and 'sbirr' needs data.kind='snapshots'.")
  if kind == "snapshots":
    return _snapshot_task(config)
  return _two_marginal_task(config)


# ----------------------------------------------------------------------------------------
# Two marginals: SB-CFM, IPF, IMF


def _two_marginal_task(config) -> Task:
  cfg = config.bridge
  sigma = float(cfg.sigma)
  dim, source, target, oracle = _endpoints(config)
  model, init_params = _networks(config, dim)
  ts = ipf.dsb_time_grid(cfg.num_steps, cfg.gamma_min, cfg.gamma_max)
  batch_size = config.train.batch_size
  data = None
  draw = {"forward": source, "backward": target}

  if cfg.method == "ipf":
    def make_cache(drift, key, direction):
      k_start, k_path = jax.random.split(key)
      start = draw[direction](k_start, cfg.cache_size)
      return mean_matching.simulate_cache(drift, start, ts, k_path, sigma, direction)

    phases = ipf.ipf_phases(model.apply, make_cache,
                            lambda params: (lambda x, t: jnp.zeros_like(x)),
                            num_iterations=cfg.num_iterations,
                            steps_per_phase=cfg.steps_per_phase, batch_size=batch_size,
                            caches_per_phase=cfg.caches_per_phase)
  else:
    initial_steps = cfg.initial_steps or cfg.steps_per_phase
    # SB-CFM (Tong et al.): the entropic OT coupling with epsilon = 2 sigma^2, no iteration.
    coupling = "sinkhorn_ot" if cfg.method == "sbcfm" else cfg.initial_coupling
    iterations = 0 if cfg.method == "sbcfm" else cfg.num_iterations
    options = {"epsilon": 2 * sigma ** 2} if coupling == "sinkhorn_ot" else {}
    couple = functools.partial(COUPLINGS.get(coupling), **options)
    if cfg.host_coupling:
      _choice(coupling, HOST_COUPLINGS, "bridge.initial_coupling (with host_coupling)")
      # Two train calls' worth of batches ahead: the next call's pairs are solved while
      # the device runs the current one.
      data = lambda start: coupled_batches(source, target, batch_size, start,
                                           seed=config.seed, coupling=coupling,
                                           prefetch=2 * config.train.steps_per_call,
                                           active=lambda step: step < initial_steps)

      def initial_pairs(key, shard, batch):
        del key
        return shard(batch["x0"]), shard(batch["x1"])
    else:
      def initial_pairs(key, shard, batch):
        del batch
        k0, k1, kc = jax.random.split(key, 3)
        return couple(kc, shard(source(k0, batch_size)), shard(target(k1, batch_size)))

    def make_pairs(drift, key, direction):
      k_start, k_path = jax.random.split(key)
      start = draw[direction](k_start, cfg.cache_size)
      return bridge_matching.simulate_pairs(drift, start, ts, k_path, sigma, direction)

    schedule = imf.imf_schedule(model.apply, make_pairs, initial_pairs, sigma=sigma,
                                steps_per_phase=cfg.steps_per_phase, batch_size=batch_size,
                                t_margin=cfg.t_margin)
    phases = schedule.phases(iterations, initial_steps)

  for name in config.eval.end_metrics:
    metrics_lib.METRICS.get(name)    # Unknown names fail before the run.
  num_eval = config.eval.num_samples
  held_key = jax.random.PRNGKey(config.eval.reference_seed)
  x0_eval = source(jax.random.fold_in(held_key, 0), num_eval)
  x1_eval = target(jax.random.fold_in(held_key, 1), num_eval)
  x0_ref = np.asarray(source(jax.random.fold_in(held_key, 2), num_eval))
  x1_ref = np.asarray(target(jax.random.fold_in(held_key, 3), num_eval))

  @jax.jit
  def paths(params, key):
    return evaluation.simulate_ends(lambda x, t: model.apply(params["forward"], x, t),
                                    lambda x, t: model.apply(params["backward"], x, t),
                                    x0_eval, x1_eval, ts, key, sigma)

  def draw_paths(params, key):
    forward, backward = paths(params, key)
    return parallel.to_host(forward), parallel.to_host(backward)

  def figures(forward, backward):
    count = min(config.eval.num_trajectories, num_eval)
    title = f"{cfg.method}: {_describe(config)}"
    return {"forward_paths": plotting.trajectory_figure(forward[:, :count, :2],
                                                        title + " (forward)"),
            "backward_paths": plotting.trajectory_figure(backward[:, :count, :2],
                                                         title + " (backward)")}

  def evaluate(params, key):
    forward, backward = draw_paths(params, key)
    values = {}
    for name in config.eval.end_metrics:
      metric = metrics_lib.METRICS.get(name)
      values[f"forward_end_{name}"] = metric(forward[-1], x1_ref)
      values[f"backward_end_{name}"] = metric(backward[0], x0_ref)
    if oracle is not None:
      values.update(evaluation.gaussian_report(oracle, forward, ts, "forward_"))
      values.update(evaluation.gaussian_report(oracle, backward, ts, "backward_"))
      values["cov_error_floor"] = evaluation.standard_error_floor(oracle, num_eval)
    return values, figures(forward, backward)

  def sample(params, key):
    forward, backward = draw_paths(params, key)
    return ({"forward_paths": forward, "backward_paths": backward},
            figures(forward, backward))

  return Task(init_params=init_params, loss=None, evaluate=evaluate, sample=sample,
              batch_size=batch_size, data=data, phases=phases)


def _describe(config):
  if config.data.kind == "gaussian":
    return f"N(a, A) -> N(b, B) in {config.data.dim}D, sigma {config.bridge.sigma:g}"
  return f"{config.data.source} -> {config.data.target}, sigma {config.bridge.sigma:g}"


# ----------------------------------------------------------------------------------------
# Snapshots: SBIRR and vanilla multi-marginal SB


def load_study_snapshots(config):
  """The configured snapshots: (all, training, held-out or None, true params or None)."""
  d = config.data
  if d.file:
    snaps = load_snapshots(d.file)
    truth = None
  else:
    system = SNAPSHOT_SYSTEMS.get(d.system)
    times = np.arange(d.times_start, d.times_stop + 1e-9, d.times_step)
    snaps = simulate_snapshots(jax.random.PRNGKey(d.seed), system, times, d.num_points)
    truth = system.params if system.family == config.reference.family else None
  if d.hold_out:
    train, held = split_alternate(snaps)
  else:
    train, held = snaps, None
  return snaps, train, held, truth


def _snapshot_task(config) -> Task:
  cfg, rcfg = config.bridge, config.reference
  family = DRIFT_FAMILIES.get(rcfg.family)
  _, train, held, truth = load_study_snapshots(config)
  t0, span = float(train.times[0]), float(train.times[-1] - train.times[0])
  reference = reference_process(family, cfg.sigma, None, train.dim).rescaled(t0, span)
  data = multimarginal.snapshot_arrays(train, t0, span)
  model, init_params = _networks(config, train.dim)
  phases = sbirr.sbirr_phases(
      model.apply, reference, data, num_outer=rcfg.num_outer,
      ipf_iterations=cfg.num_iterations, steps_per_phase=cfg.steps_per_phase,
      steps_per_segment=cfg.num_steps, cache_size=cfg.cache_size,
      batch_size=config.train.batch_size, refine=rcfg.refine, refit_paths=rcfg.refit_paths,
      lm_iterations=rcfg.lm_iterations, caches_per_phase=cfg.caches_per_phase)
  g = reference.diffusion()
  grids = multimarginal.segment_grids(data.times, cfg.num_steps)
  num_paths = max(config.eval.num_samples // 2, config.eval.num_trajectories)

  def drifts(params):
    return (lambda x, t: model.apply(params["forward"], x, t),
            lambda x, t: model.apply(params["backward"], x, t))

  @jax.jit
  def paths(params, key):   # (K, N + 1, 2 num_paths, D): forward and backward halves.
    return multimarginal.segment_paths(*drifts(params), data, grids, key, num_paths, g)

  @jax.jit
  def refit(params, key):   # The reference the next outer iteration would use.
    return sbirr.refit_from_forward(model.apply, reference, data, grids, params["forward"],
                                    key, rcfg.refit_paths, rcfg.lm_iterations)

  def evaluate(params, key):
    k_paths, k_refit = jax.random.split(key)
    segment_paths = parallel.to_host(paths(params, k_paths))
    values = {}
    if held is not None:
      emds = []
      for tau, points in zip(held.times, held.points):
        k, j = multimarginal.grid_position(data.times, (tau - t0) / span, cfg.num_steps)
        emds.append(earth_movers_distance(segment_paths[k, j], points))
        values[f"emd_t{tau:g}"] = emds[-1]
      values["emd_mean"] = float(np.mean(emds))
    if rcfg.refine:
      theta, nll = refit(params, k_refit)
      values["refit_nll"] = float(nll)
      for name, value in theta.items():
        values[f"reference_{name}"] = float(value)
        if truth is not None:
          values[f"reference_{name}_relative_error"] = abs(float(value) / truth[name] - 1)
    return values, {"paths": paths_figure(segment_paths)}

  def paths_figure(segment_paths):
    reference_text = (f"refined {rcfg.family} reference" if rcfg.refine else
                      f"{rcfg.family} reference at its initial parameters")
    title = (f"{'SBIRR' if rcfg.refine else 'vanilla SB'}, {reference_text}: "
             f"{config.data.file or config.data.system}")
    count = config.eval.num_trajectories // 2
    shown = np.concatenate([segment_paths[:, :, :count],
                            segment_paths[:, :, num_paths:num_paths + count]], 2)
    return plots.snapshot_paths_figure(shown, train,
                                       held if held is not None else train.select([]),
                                       title=title)

  def sample(params, key):
    segment_paths = parallel.to_host(paths(params, key))
    return {"paths": segment_paths}, {"paths": paths_figure(segment_paths)}

  return Task(init_params=init_params, loss=None, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, phases=phases)


# ----------------------------------------------------------------------------------------
# Configs










# ----------------------------------------------------------------------------------------
# Network evaluations (the cost model of the IPF / IMF comparison)


def network_evaluations(config, step):
  """(simulation, regression) per-example network evaluations used by `step`: caches or
  pairs simulated by phases begun by then (IPF: two evaluations per path step, none with
  the reference's drift; IMF: one) and one evaluation per regression example (both
  networks' examples at IMF's phase 0). Backward passes are not counted (they scale the
  regression count alike for both methods)."""
  c = config.bridge
  batch, steps = config.train.batch_size, c.steps_per_phase
  simulation = regression = 0
  start = 0
  if c.method in ("imf", "sbcfm"):
    first = c.initial_steps or steps
    done = min(step, first)
    regression += 2 * done * batch
    start = first
    per_path, iterations = 1, (c.num_iterations if c.method == "imf" else 0)
    plan = [(start + i * steps, True) for i in range(2 * iterations)]
  else:
    per_path = 2
    plan = [(i * steps, i > 0) for i in range(2 * c.num_iterations)]
  for begin, networked in plan:
    if step <= begin:
      break
    if networked:
      simulation += per_path * c.cache_size * c.num_steps * c.caches_per_phase
    regression += min(step - begin, steps) * batch
  return simulation, regression
