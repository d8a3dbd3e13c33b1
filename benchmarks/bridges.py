"""Bridges benchmark: the cost of an IPF half-iteration and of minibatch-OT training steps.

  python -m benchmarks.bridges [--quick]

Figures (ratios of times measured in this run, medians over interleaved rounds; the machine
is shared, so each ratio's rounds are interleaved to see the same load):
- `ipf_half_iteration_over_score_steps`: one IPF half-iteration of the Diffusion
  Schrödinger Bridge (De Bortoli et al. 2021; `diffjax.bridges.ipf`) — simulate the
  trajectory cache with the frozen network (one compiled call, the phase's prepare), then K
  mean-matching regression steps drawn from the device cache (one compiled lax.scan, as
  the engine runs a phase) — over K plain denoising score-matching steps of the same MLP
  and batch. DSB's 2D setting: 20 steps, a cache of 10,000 paths, batch 512. Also the
  simulation's share of the half-iteration. Target <= 1.5.
- `otcfm_step_over_limit`: an OT-CFM training step (exact minibatch OT by POT on the
  host) through the engine, with the pairs prepared by the prefetching host stage
  `diffjax.bridges.host_coupling.coupled_batches` (task `data`), over the larger of the
  exact OT solve alone and an I-CFM step alone (the same train call fed independent pairs
  by the same stage). Both run the engine's compiled train call chunk by chunk from the
  task's data iterator, as `diffjax.train.train` does (its checkpointing and logging left
  out), in interleaved rounds. Target <= 1.2: the solve is off the critical path.
- `speedup_vs_torchcfm_otcfm`: TorchCFM's OT-CFM step (its ExactOptimalTransport matcher,
  POT in the step, the same MLP width and batch, Adam) over ours, in this run (needs torch
  and torchcfm: `pip install torch==2.13.0`, then torchcfm with a constraints file that
  pins torch==2.13.0).
"""
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from diffjax.bridges import mean_matching
from diffjax.bridges.host_coupling import couple_on_host, coupled_batches
from diffjax.bridges.ipf import ipf_schedule
from diffjax.data import get_sampler
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.train import (Task, build_train_call, create_train_state, make_data_mesh,
                           make_train_step, scan_steps)

NAME = "bridges"
MOONS, GAUSSIANS = get_sampler("moons"), get_sampler("eight_gaussians")
NORMAL = get_sampler("standard_normal")


def _median_ratio(numerator, denominator, rounds):
  """Runs both timed functions alternately; returns (median ratio, median times)."""
  times = [], []
  for _ in range(rounds):
    for fn, out in ((numerator, times[0]), (denominator, times[1])):
      start = time.perf_counter()
      fn()
      out.append(time.perf_counter() - start)
  ratios = np.asarray(times[0]) / np.asarray(times[1])
  return float(np.median(ratios)), float(np.median(times[0])), float(np.median(times[1]))


# ---------------------------------------------------------------------------------- IPF


def ipf_half_iteration(quick):
  steps = 500 if quick else 2000
  cache_size = 4096 if quick else 10_000
  batch, num_steps = 512, 20
  model = build_model("mlp", (2,), width=256, depth=3, activation="silu",
                      time_embedding="sinusoidal", time_dim=32)
  ts = jnp.linspace(0.0, 1.0, num_steps + 1)

  def make_cache(drift, key, direction):
    k_start, k_path = jax.random.split(key)
    start = (MOONS if direction == "forward" else GAUSSIANS)(k_start, cache_size)
    return mean_matching.simulate_cache(drift, start, ts, k_path, 1.0, direction)

  schedule = ipf_schedule(model.apply, make_cache,
                          lambda params: (lambda x, t: jnp.zeros_like(x)),
                          steps_per_phase=steps, batch_size=batch)
  optimizer = optax.adam(1e-4)
  prepare = jax.jit(schedule.prepares["backward"])   # Simulates with the forward network.
  loss = schedule.losses["backward"]
  only_backward = lambda params: {"forward": False, "backward": True}
  state = jax.jit(lambda key: create_train_state(
      lambda k: {"forward": model.init(jax.random.fold_in(k, 0)),
                 "backward": model.init(jax.random.fold_in(k, 1))}, optimizer, key))(
                     jax.random.PRNGKey(0))
  params = state.params

  @jax.jit
  def regression(state, cache):
    """K steps of the phase's train step (the engine's: the forward network frozen)."""
    step = make_train_step(lambda p, key, shard, i, data: loss(p, key, shard, i, data, cache),
                           optimizer, trainable=only_backward)
    return scan_steps(step, state, steps)[0]

  objective = build_objective("score_matching", build_path("vp"))

  def score_loss(net, key, shard, step, data):
    del shard, step, data   # Drawn here.
    k0, k1, kl = jax.random.split(key, 3)
    return objective.loss(model.apply, net, kl, NORMAL(k0, batch), GAUSSIANS(k1, batch))

  score_step = make_train_step(score_loss, optimizer)
  score_steps = jax.jit(lambda state: scan_steps(score_step, state, steps)[0])
  net_state = state.replace(params=params["backward"], ema_params=params["backward"],
                            opt_state=optimizer.init(params["backward"]))

  keys = iter(jax.random.split(jax.random.PRNGKey(1), 10_000))
  sim_times = []

  def half_iteration():
    start = time.perf_counter()
    cache = jax.block_until_ready(prepare(params, next(keys)))
    sim_times.append(time.perf_counter() - start)
    jax.block_until_ready(regression(state.replace(key=next(keys)), cache))

  def plain():
    jax.block_until_ready(score_steps(net_state.replace(key=next(keys))))

  half_iteration()     # Compiles.
  plain()
  sim_times.clear()
  rounds = 3 if quick else 7
  ratio, t_half, t_score = _median_ratio(half_iteration, plain, rounds)
  share = float(np.median(sim_times)) / t_half
  return {"ipf_half_iteration_over_score_steps": ratio, "ipf_simulation_share": share}, {
      "ipf": dict(steps=steps, cache_size=cache_size, batch=batch, euler_steps=num_steps,
                  half_iteration_seconds=t_half, score_steps_seconds=t_score,
                  simulation_seconds=float(np.median(sim_times)), rounds=rounds)}


# ------------------------------------------------------------------------------ OT-CFM

BATCH = 256
MODEL = build_model("mlp", (2,), width=64, depth=3, activation="selu",
                    time_embedding="concat")
OBJECTIVE = build_objective("flow_matching", build_path("linear", gamma="constant",
                                                        gamma_scale=0.1))


def _flow_matching_task(coupling, prefetch):
  def loss(params, key, shard, step, batch):
    del step
    return OBJECTIVE.loss(MODEL.apply, params, key, shard(batch["x0"]), shard(batch["x1"]))

  return Task(init_params=MODEL.init, loss=loss,
              evaluate=lambda params, key: ({}, {}), sample=None, batch_size=BATCH,
              data=lambda start: coupled_batches(NORMAL, GAUSSIANS, BATCH, start,
                                                 coupling=coupling, prefetch=prefetch))


class _EngineFeed:
  """The engine's train call (`diffjax.train.build_train_call`) fed chunk by chunk from the
  task's data iterator, as `diffjax.train.train` does: take steps_per_call host batches,
  stack them, run the compiled call, wait for its losses."""

  def __init__(self, coupling, steps_per_call):
    self.task = _flow_matching_task(coupling, prefetch=2 * steps_per_call)
    optimizer = optax.adam(1e-3)
    self.call = build_train_call(self.task, optimizer, 0.0, make_data_mesh())
    # Compiled, so that the parameters and their EMA are distinct buffers (both donated).
    self.state = jax.jit(lambda key: create_train_state(self.task.init_params, optimizer,
                                                        key))(jax.random.PRNGKey(0))
    self.batches = self.task.data(0)
    self.steps_per_call = steps_per_call
    self.chunk()      # Compiles.

  def chunk(self):
    local = [next(self.batches) for _ in range(self.steps_per_call)]
    stacked = jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *local)
    self.state, metrics = self.call(self.state, self.steps_per_call, stacked)
    np.asarray(metrics["loss"])

  def seconds_per_step(self, chunks):
    start = time.perf_counter()
    for _ in range(chunks):
      self.chunk()
    return (time.perf_counter() - start) / (chunks * self.steps_per_call)


def otcfm_steps(quick):
  steps_per_call = 50
  chunks, rounds = (2, 3) if quick else (4, 9)
  feeds = {c: _EngineFeed(c, steps_per_call) for c in ("exact_ot", "independent")}
  for feed in feeds.values():   # Fill the prefetch queues' steady state.
    feed.seconds_per_step(1)
  ratio, ot_step, icfm_step = _median_ratio(
      lambda: feeds["exact_ot"].seconds_per_step(chunks),
      lambda: feeds["independent"].seconds_per_step(chunks), rounds)
  ot_step /= chunks * steps_per_call
  icfm_step /= chunks * steps_per_call
  rng_key = jax.random.PRNGKey(7)
  solve = []
  for i in range(20 if quick else 60):
    x0 = np.asarray(NORMAL(jax.random.fold_in(rng_key, 2 * i), BATCH))
    x1 = np.asarray(GAUSSIANS(jax.random.fold_in(rng_key, 2 * i + 1), BATCH))
    start = time.perf_counter()
    couple_on_host(x0, x1, "exact_ot")
    solve.append(time.perf_counter() - start)
  ot_solve = float(np.median(solve))
  limit = max(ot_solve, icfm_step)
  for feed in feeds.values():
    feed.batches.close()
  figures = {"otcfm_step_over_limit": ot_step / limit}
  details = {"otcfm": dict(batch=BATCH, steps_per_call=steps_per_call, rounds=rounds,
                           otcfm_step_seconds=ot_step, icfm_step_seconds=icfm_step,
                           ot_solve_seconds=ot_solve,
                           otcfm_over_icfm=ratio)}
  return figures, details, ot_step


def torchcfm_otcfm_step(quick):
  """Seconds per TorchCFM OT-CFM step (its exact OT matcher, MLP w = 64, Adam)."""
  # Optional peers, imported here so that the benchmark runs (without them) where they are
  # not installed.
  import torch  # pylint: disable=g-import-not-at-top
  import torchcfm.conditional_flow_matching as cfm  # pylint: disable=g-import-not-at-top
  from torchcfm.models.models import MLP  # pylint: disable=g-import-not-at-top
  from torchcfm.utils import sample_8gaussians  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  model = MLP(dim=2, w=64, time_varying=True)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  matcher = cfm.ExactOptimalTransportConditionalFlowMatcher(sigma=0.1)
  steps, warm = (150, 30) if quick else (600, 50)
  start = None
  for i in range(steps):
    if i == warm:
      start = time.perf_counter()
    optimizer.zero_grad()
    x0, x1 = torch.randn(BATCH, 2), sample_8gaussians(BATCH)
    t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
    loss = torch.mean((model(torch.cat([xt, t[:, None]], -1)) - ut) ** 2)
    loss.backward()
    optimizer.step()
  return (time.perf_counter() - start) / (steps - warm), torch.__version__


def main(argv=None):
  args = common.parse_args(__doc__.split("\n")[0], argv)
  figures, details = {}, {"load_average_at_start": os.getloadavg()}
  f, d = ipf_half_iteration(args.quick)
  figures.update(f)
  details.update(d)
  f, d, ours = otcfm_steps(args.quick)
  figures.update(f)
  details.update(d)
  try:
    theirs, version = torchcfm_otcfm_step(args.quick)
    figures["speedup_vs_torchcfm_otcfm"] = theirs / ours
    details["torchcfm"] = dict(otcfm_step_seconds=theirs, torch=version,
                               threads=int(__import__("torch").get_num_threads()))
  except ImportError as error:
    details["torchcfm"] = f"not measured: {error}"
  details["load_average_at_end"] = os.getloadavg()   # Other jobs share the machine.
  rows = [[name, value] for name, value in figures.items()]
  markdown = common.markdown_table(["figure", "value"], rows)
  markdown += "\n\n" + "\n".join(f"- {k}: {v}" for k, v in details.items())
  command = "python -m benchmarks.bridges" + (" --quick" if args.quick else "")
  common.write_results(NAME + ("_quick" if args.quick else ""), figures, details, markdown,
                       args.quick, command)


if __name__ == "__main__":
  main()
