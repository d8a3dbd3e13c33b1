"""Training throughput of the quickstart's flow-matching problem, diffjax vs TorchCFM.

  python -m benchmarks.train_throughput [--quick]

Both sides train the same problem: N(0, I) -> moons, I-CFM (linear path, sigma = 0), the
TorchCFM MLP (3 hidden layers of width 64, SELU, time concatenated), batch 256, Adam with
learning rate 1e-3. Steps per second exclude compilation (ours) and warm-up (theirs).

Figures:
  speedup_vs_torchcfm: our steps/s over TorchCFM's, their data pre-sampled into a tensor
    pool (so only the training step itself is timed on their side).
  speedup_vs_torchcfm_with_their_sampler: the same, with TorchCFM's own `sample_moons`
    called every step as in their examples.
  matmul_fraction: FLOP/s of a large-MLP training step (width 1024, batch 1024) over the
    machine's measured float32 matmul FLOP/s (a 2048 x 2048 x 2048 product).
"""
import sys
import time

import jax
import numpy as np

from benchmarks import common
from diffjax.data import get_sampler
from diffjax.models import build_model
from diffjax.objectives import build_objective
from diffjax.paths import build_path
from diffjax.train import Task, build_optimizer, build_train_call, create_train_state
from diffjax.train import make_data_mesh
from diffjax.train.defaults import engine_config

BATCH, WIDTH, LR = 256, 64, 1e-3


def _optim_config():
  optim = engine_config().optim
  optim.update(name="adam", learning_rate=LR, schedule="constant", warmup_steps=0,
               grad_clip=0.0)
  return optim


def flow_matching_task(width, depth, batch, dim=2, activation="selu"):
  source, target = get_sampler("standard_normal"), get_sampler("moons")
  model = build_model("mlp", (dim,), width=width, depth=depth, activation=activation,
                      time_embedding="concat")
  objective = build_objective("flow_matching", build_path("linear"))

  def loss(params, key, shard, step):
    del step
    k0, k1, k = jax.random.split(key, 3)
    x0 = shard(source(k0, batch, dim=dim) if dim != 2 else source(k0, batch))
    x1 = shard(target(k1, batch) if dim == 2 else jax.random.normal(k1, (batch, dim)) + 1)
    return objective.loss(model.apply, params, k, x0, x1)

  return Task(model.init, loss, None, None, batch)


def time_diffjax(task, steps_per_call, repeats):
  """Returns (steps/s, compile seconds) of the engine's train call."""
  optimizer = build_optimizer(_optim_config(), 10**6)
  mesh = make_data_mesh()
  call = build_train_call(task, optimizer, 0.999, mesh)
  state = jax.jit(lambda k: create_train_state(task.init_params, optimizer, k))(
      jax.random.PRNGKey(0))
  start = time.perf_counter()
  state, metrics = call(state, steps_per_call)
  jax.block_until_ready(metrics["loss"])
  compile_seconds = time.perf_counter() - start
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    state, metrics = call(state, steps_per_call)
    jax.block_until_ready(metrics["loss"])
    best = min(best, time.perf_counter() - start)
  assert np.all(np.isfinite(np.asarray(metrics["loss"])))
  return steps_per_call / best, compile_seconds


def time_torchcfm(num_steps, their_sampler):
  """TorchCFM's training step as in its 2D examples: steps/s at its best thread count."""
  import torch  # pylint: disable=g-import-not-at-top
  results = []
  for threads in sorted({1, torch.get_num_threads()}):
    torch.set_num_threads(threads)
    results.append((_time_torchcfm(num_steps, their_sampler), threads))
  rate, threads = max(results)
  return rate, torch.__version__, threads


def _time_torchcfm(num_steps, their_sampler):
  import torch  # pylint: disable=g-import-not-at-top
  from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
  from torchcfm.models.models import MLP
  from torchcfm.utils import sample_moons
  torch.manual_seed(0)
  model = MLP(dim=2, time_varying=True, w=WIDTH)
  optimizer = torch.optim.Adam(model.parameters(), lr=LR)
  matcher = ConditionalFlowMatcher(sigma=0.0)
  pool = torch.tensor(np.array(get_sampler("moons")(jax.random.PRNGKey(1), 100 * BATCH)))

  def step(i):
    optimizer.zero_grad()
    x0 = torch.randn(BATCH, 2)
    if their_sampler:
      x1 = sample_moons(BATCH)
    else:
      x1 = pool[(i % 100) * BATCH:(i % 100 + 1) * BATCH]
    t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
    vt = model(torch.cat([xt, t[:, None]], dim=-1))
    loss = torch.mean((vt - ut) ** 2)
    loss.backward()
    optimizer.step()
    return loss

  for i in range(50):
    step(i)
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    for i in range(num_steps):
      loss = step(i)
    float(loss.detach())
    best = min(best, time.perf_counter() - start)
  return num_steps / best


def matmul_flops(n=2048, repeats=10):
  """Measured float32 matmul throughput of this machine (FLOP/s), n x n x n products."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
  b = jax.random.normal(jax.random.PRNGKey(1), (n, n))
  f = jax.jit(lambda a, b: a @ b)
  f(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    f(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n ** 3 / best


def large_mlp_step_flops(width=1024, depth=4, batch=1024, dim=1024, steps=5):
  """FLOP/s of a training step of a large MLP (matmul FLOPs counted, x3 for backward)."""
  task = flow_matching_task(width, depth, batch, dim=dim, activation="silu")
  steps_per_second, _ = time_diffjax(task, steps, repeats=3)
  layers = [(dim + 1, width)] + [(width, width)] * (depth - 1) + [(width, dim)]
  flops_per_step = 3 * 2 * batch * sum(i * o for i, o in layers)
  return steps_per_second * flops_per_step


def main(argv=None):
  args = common.parse_args(__doc__.splitlines()[0], argv)
  steps = 2000 if args.quick else 10_000
  torch_steps = 200 if args.quick else 2000
  ours, compile_seconds = time_diffjax(flow_matching_task(WIDTH, 3, BATCH), steps, 3)
  theirs_pool, torch_version, threads = time_torchcfm(torch_steps, their_sampler=False)
  theirs_own, _, _ = time_torchcfm(torch_steps // 2, their_sampler=True)
  peak = matmul_flops()
  mlp = large_mlp_step_flops(steps=3 if args.quick else 10)
  figures = {
      "speedup_vs_torchcfm": ours / theirs_pool,
      "speedup_vs_torchcfm_with_their_sampler": ours / theirs_own,
      "diffjax_steps_per_second": ours,
      "torchcfm_steps_per_second": theirs_pool,
      "matmul_fraction": mlp / peak,
  }
  rows = [["diffjax (lax.scan, jit, donated state)", f"{ours:.0f}", "1.0"],
          ["TorchCFM (pre-sampled data)", f"{theirs_pool:.0f}", f"{theirs_pool / ours:.3f}"],
          ["TorchCFM (its sample_moons per step)", f"{theirs_own:.0f}",
           f"{theirs_own / ours:.3f}"]]
  markdown = (
      f"Quickstart flow-matching step (MLP 3x{WIDTH} SELU, batch {BATCH}, Adam):\n\n"
      + common.markdown_table(["implementation", "steps/s", "relative"], rows)
      + f"\n\nspeedup_vs_torchcfm = **{figures['speedup_vs_torchcfm']:.1f}x**"
      f" (torch {torch_version}, {threads} threads; diffjax compile {compile_seconds:.2f}s)"
      f"\n\nMachine float32 matmul: {peak / 1e9:.1f} GFLOP/s; large-MLP training step "
      f"(width 1024, batch 1024): {mlp / 1e9:.1f} GFLOP/s; matmul_fraction = "
      f"**{figures['matmul_fraction']:.2f}**")
  details = {"steps_timed_diffjax": steps, "steps_timed_torch": torch_steps,
             "matmul_gflops": peak / 1e9, "large_mlp_gflops": mlp / 1e9,
             "torch_version": torch_version, "torch_threads": threads,
             "diffjax_compile_seconds": compile_seconds}
  command = "python -m benchmarks.train_throughput" + (" --quick" if args.quick else "")
  common.write_results("train_throughput", figures, details, markdown, args.quick, command)


if __name__ == "__main__":
  main(sys.argv[1:])
