"""Multi-marginal Schrödinger bridges with iterative reference refinement, as engine phases.

"Multi-marginal Schrödinger Bridges with Iterative Reference Refinement" (Shen,
Berlinghieri & Broderick, AISTATS 2025, Alg. 1). Parameters are a dict with "forward" and
"backward" networks of (x, t), shared by all segments. Outer iteration r is IPF between
every pair of adjacent snapshots under the reference of parameters theta_r
(`diffjax.bridges.ipf`; the segments are simulated together by
`diffjax.bridges.multimarginal`):

  sbirr_r_ipf_n_{backward,forward}   n = 1..ipf_iterations
  (multimarginal_r_ipf_n_... for the vanilla method).

The reference enters IPF only through its first cache (paths of the reference from the
left snapshots, on which the first backward fit is made). So the refinement lives in the
prepare of sbirr_r_ipf_1_backward for r >= 2: it simulates the bridge of iteration r - 1
(the forward network from each snapshot across its segment), refits theta_r by maximum
likelihood on the paths' increments (`diffjax.bridges.refinement`, exact Levenberg–
Marquardt from the family's initial parameters), then simulates the reference under
theta_r. That phase trains the backward network only, so the forward network it reads is
frozen and a run resumed inside it refits the same theta_r: the outer loop checkpoints and
resumes like any run, with no reference parameters in the train state. theta_1 is the
family's initial parameters; with refine=False (vanilla multi-marginal SB) every outer
iteration keeps them. The networks are warm-started across outer iterations.

Registered as the bridge methods "sbirr" and "multimarginal" (refine=False) on snapshots
(`diffjax.bridges.methods`).
"""
import functools
from typing import Callable, List

import jax

from diffjax.bridges import multimarginal, refinement
from diffjax.bridges.ipf import check_caches, check_positive_int, ipf_cost, ipf_schedule
from diffjax.bridges.methods import BridgeMethod, BridgePhases, BridgeSetup, register_method
from diffjax.bridges.reference import Reference
from diffjax.train.task import Phase
from diffjax.train.validation import Key


def refit_from_forward(apply_fn: Callable, reference: Reference,
                       data: multimarginal.SnapshotArrays, grids, forward_params, key,
                       num_paths, lm_iterations=20):
  """The maximum-likelihood reference parameters on paths of the forward network from
  every snapshot across its segment (num_paths per segment). Returns (params, nll)."""
  paths = multimarginal.segment_forward_paths(
      lambda x, t: apply_fn(forward_params, x, t), data, grids, key, num_paths,
      reference.diffusion())
  params, _, nll = refinement.refit_reference(
      reference, refinement.path_increments(paths, grids), lm_iterations)
  return params, nll


def sbirr_phases(apply_fn: Callable, reference: Reference,
                 data: multimarginal.SnapshotArrays, *, num_outer: int, ipf_iterations: int,
                 steps_per_phase: int, steps_per_segment: int, cache_size: int,
                 batch_size: int, refine: bool = True, refit_paths: int = 256,
                 lm_iterations: int = 20, caches_per_phase: int = 1,
                 prefix: str = "sbirr") -> List[Phase]:
  """The phases of SBIRR (or of vanilla multi-marginal SB with refine=False).

  Args:
    apply_fn: apply_fn(network_params, x, t) -> drift.
    reference: the reference in bridge time (`Reference.rescaled` to the snapshots'
      span); its params are theta_1 and the refit's starting point.
    data: the training snapshots in bridge time.
    num_outer: outer iterations.
    ipf_iterations: IPF iterations per outer iteration.
    steps_per_phase: regression steps per IPF half-iteration.
    steps_per_segment: Euler–Maruyama steps per segment (paths and caches).
    cache_size: paths per segment in each trajectory cache.
    batch_size: regression pairs per step.
    refine: refit the reference before each outer iteration after the first.
    refit_paths: paths per segment for the likelihood.
    lm_iterations: Levenberg–Marquardt iterations of the refit.
    caches_per_phase: fresh caches per half-iteration.
    prefix: of the phases' names, "<prefix>_<r>_ipf_<n>_<direction>".
  """
  for value, name in ((num_outer, "num_outer"), (ipf_iterations, "ipf_iterations"),
                      (steps_per_segment, "steps_per_segment"), (cache_size, "cache_size"),
                      (refit_paths, "refit_paths")):
    check_positive_int(value, name)
  grids = multimarginal.segment_grids(data.times, steps_per_segment)
  g = reference.diffusion()
  make_cache = functools.partial(multimarginal.segment_caches, data=data, grids=grids,
                                 num_paths=cache_size, diffusion=g)

  def cache(drift, key, direction):
    return make_cache(drift, key=key, direction=direction)

  schedule = ipf_schedule(apply_fn, cache, lambda params: reference.drift,
                          steps_per_phase=steps_per_phase, batch_size=batch_size,
                          caches_per_phase=caches_per_phase)

  def prepare_refined(params, key):
    k_refit, k_cache = jax.random.split(key)
    theta, _ = refit_from_forward(apply_fn, reference, data, grids, params["forward"],
                                  k_refit, refit_paths, lm_iterations)
    return cache(lambda x, t: reference.drift(x, t, theta), k_cache, "forward")

  phases = []
  for r in range(1, num_outer + 1):
    first = prepare_refined if (refine and r > 1) else None
    phases += schedule.phases(range(1, ipf_iterations + 1), prefix=f"{prefix}_{r}_ipf",
                              first_prepare=first)
  return phases


# ----------------------------------------------------------------------------------------
# The registered methods: SBIRR, and vanilla multi-marginal SB (its reference fixed).


def _snapshot_phases(refine: bool, prefix: str) -> Callable[[BridgeSetup], BridgePhases]:
  def phases(setup: BridgeSetup) -> BridgePhases:
    config, problem = setup.config, setup.problem
    cfg, rcfg = config.bridge, config.reference
    return BridgePhases(sbirr_phases(
        setup.apply_fn, problem.reference, problem.arrays, num_outer=rcfg.num_outer,
        ipf_iterations=cfg.num_iterations, steps_per_phase=cfg.steps_per_phase,
        steps_per_segment=cfg.num_steps, cache_size=cfg.cache_size,
        batch_size=config.train.batch_size, refine=refine, refit_paths=rcfg.refit_paths,
        lm_iterations=rcfg.lm_iterations, caches_per_phase=cfg.caches_per_phase,
        prefix=prefix))
  return phases


def _snapshot_cost(refine: bool) -> Callable:
  def cost(config, num_segments=1):
    c, r = config.bridge, config.reference
    cache = 2 * c.cache_size * c.num_steps * num_segments
    refit = r.refit_paths * c.num_steps * num_segments     # One evaluation per path step.
    out = []
    for outer in range(1, r.num_outer + 1):
      out += ipf_cost(c.num_iterations, c.steps_per_phase, c.caches_per_phase,
                      config.train.batch_size, cache, refit if refine and outer > 1 else 0)
    return out
  return cost


def refit_diagnostics(setup: BridgeSetup) -> Callable:
  """fn(params, key) -> the reference the next outer iteration would use: its
  parameters ("reference_<name>"), their relative errors to the truth when the snapshots
  were simulated by the same family, and the refit's negative log-likelihood."""
  problem, rcfg = setup.problem, setup.config.reference
  refit = jax.jit(lambda params, key: refit_from_forward(
      setup.apply_fn, problem.reference, problem.arrays, problem.grids, params["forward"],
      key, rcfg.refit_paths, rcfg.lm_iterations))

  def diagnose(params, key):
    theta, nll = refit(params, key)
    values = {"refit_nll": float(nll)}
    for name, value in theta.items():
      values[f"reference_{name}"] = float(value)
      if problem.truth is not None:
        values[f"reference_{name}_relative_error"] = abs(float(value) / problem.truth[name]
                                                         - 1)
    return values
  return diagnose


def outer_iteration_steps(config):
  """Training steps of one outer iteration: its IPF iterations."""
  return 2 * config.bridge.num_iterations * config.bridge.steps_per_phase


OUTER_KEYS = (
    Key("bridge.num_iterations", "int", 1, meaning="IPF iterations per outer iteration"),
    Key("bridge.cache_size", "int", 1, meaning="paths per segment in each cache"),
    Key("bridge.caches_per_phase", "int", 1, meaning="fresh caches per half-iteration"),
    Key("reference.num_outer", "int", 1, meaning="outer iterations"),
)

SBIRR = register_method(BridgeMethod(
    name="sbirr", label="SBIRR (refined reference)", problem="snapshots",
    keys=OUTER_KEYS + (Key("reference.refit_paths", "int", 1),
                       Key("reference.lm_iterations", "int", 1)),
    phases=_snapshot_phases(True, "sbirr"), cost=_snapshot_cost(refine=True),
    iteration=outer_iteration_steps, check=check_caches, diagnostics=refit_diagnostics))

# Its own entry rather than SBIRR with a flag: it reads no refit keys, costs no refit
# simulation and reports no refitted reference, and it is the baseline of the comparison.
MULTIMARGINAL = register_method(BridgeMethod(
    name="multimarginal", label="vanilla multi-marginal SB (fixed reference)",
    problem="snapshots", keys=OUTER_KEYS, phases=_snapshot_phases(False, "multimarginal"),
    cost=_snapshot_cost(refine=False), iteration=outer_iteration_steps,
    check=check_caches))
