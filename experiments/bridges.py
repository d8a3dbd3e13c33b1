"""Schrödinger bridges: SB-CFM, IPF (DSB), IMF (DSBM) between two distributions, and
multi-marginal bridges through snapshots (SBIRR, vanilla multi-marginal SB).

Config sections read here: bridge, data, reference, model, eval (and the engine's). The
method (`diffjax.bridges.BRIDGE_METHODS`, bridge.method) builds the phases that define
the run; train.num_steps only stops it early. The data kind
(`diffjax.bridges.BRIDGE_DATA`, data.kind) builds what the method bridges and how it is
evaluated: "gaussian" (two Gaussians with the closed-form bridge as the oracle), "toy2d"
(data.source -> data.target) or "snapshots" (a simulated system or an .npz file).

The studies that combine several runs into one table are `experiments.bridge_studies`.
"""
import jax

from diffjax.bridges import BridgeSetup, build_problem, check_bridge_config
from diffjax.bridges.methods import two_networks
from diffjax.models import build_model
from diffjax.pipeline import component_options
from diffjax.train import Task, parallel


def build_task(config) -> Task:
  """Builds the task; invalid values fail here, before any workdir is touched."""
  method, _ = check_bridge_config(config)
  problem = build_problem(config)
  model = build_model(config.model.name, (problem.dim,), **component_options(config.model))
  setup = BridgeSetup(config, model.apply, problem)
  plan = method.phases(setup)
  evaluation = problem.evaluation(config.eval)
  diagnostics = method.diagnostics(setup)
  title = f"{method.label}: {problem.description}"
  paths = jax.jit(lambda params, key: evaluation.paths(*method.drifts(model.apply, params),
                                                       key))

  def draw(params, key):
    return {name: parallel.to_host(value) for name, value in paths(params, key).items()}

  def evaluate(params, key):
    k_paths, k_method = jax.random.split(key)
    drawn = draw(params, k_paths)
    values = {**evaluation.report(drawn), **diagnostics(params, k_method)}
    return values, evaluation.figures(drawn, title)

  def sample(params, key):
    drawn = draw(params, key)
    return drawn, evaluation.figures(drawn, title)

  return Task(init_params=two_networks(model), loss=None, evaluate=evaluate, sample=sample,
              batch_size=config.train.batch_size, data=plan.data, phases=plan.phases)
