"""Multi-marginal Schrödinger bridges with iterative reference refinement, as engine phases.

"Multi-marginal Schrödinger Bridges with Iterative Reference Refinement" (Shen,
Berlinghieri & Broderick, AISTATS 2025, Alg. 1). Parameters are a dict with "forward" and
"backward" networks of (x, t), shared by all segments. Outer iteration r is IPF between
every pair of adjacent snapshots under the reference of parameters theta_r
(`diffjax.bridges.ipf`; the segments are simulated together by
`diffjax.bridges.multimarginal`):

  sbirr_r_ipf_n_{backward,forward}   n = 1..ipf_iterations.

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
"""
import functools
from typing import Callable, List

import jax

from diffjax.bridges import multimarginal, refinement
from diffjax.bridges.ipf import check_positive_int, ipf_schedule
from diffjax.bridges.reference import Reference
from diffjax.train.task import Phase


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
                 lm_iterations: int = 20, caches_per_phase: int = 1) -> List[Phase]:
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
    phases += schedule.phases(range(1, ipf_iterations + 1), prefix=f"sbirr_{r}_ipf",
                              first_prepare=first)
  return phases
