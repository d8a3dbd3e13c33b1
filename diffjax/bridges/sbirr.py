"""Multi-marginal Schrödinger bridges with iterative reference refinement, as engine phases.

"Multi-marginal Schrödinger Bridges with Iterative Reference Refinement" (Shen,
Berlinghieri & Broderick, AISTATS 2025, Alg. 1). Parameters are a dict with "forward",
"backward" (networks of (x, t) shared by all segments) and "reference" (the parameters of
the reference's drift family). Outer iteration r is

  sbirr_r_ipf_n_{backward,forward}  n = 1..ipf_iterations: IPF between every pair of
                                    adjacent snapshots under the current reference
                                    (`diffjax.bridges.ipf`, segments simulated together
                                    by `diffjax.bridges.multimarginal`);
  sbirr_r_refit                     prepare: bridged paths of every segment (forward from
                                    each snapshot and backward from the next), and the
                                    maximum-likelihood reference parameters on their
                                    increments (`diffjax.bridges.refinement`, exact
                                    Levenberg–Marquardt from the family's initial
                                    parameters); the phase's steps move
                                    params["reference"] to that optimum by the run's
                                    optimizer on |theta - theta*|^2 / 2 (Adam moves each
                                    parameter by about the learning rate per step, so
                                    refit_steps x learning_rate should exceed the change).

With refine=False (vanilla multi-marginal SB) the refit phases are left out and the
reference stays at its initial parameters; the IPF phases are the same. The networks are
warm-started across outer iterations, and the first half-iteration of each simulates the
new reference.
"""
import functools
from typing import Callable, List

import jax
import jax.numpy as jnp

from diffjax.bridges import multimarginal, refinement
from diffjax.bridges.ipf import check_positive_int, ipf_schedule, only
from diffjax.bridges.reference import Reference
from diffjax.train.task import Phase


def sbirr_phases(apply_fn: Callable, reference: Reference,
                 data: multimarginal.SnapshotArrays, *, num_outer: int, ipf_iterations: int,
                 steps_per_phase: int, steps_per_segment: int, cache_size: int,
                 batch_size: int, refine: bool = True, refit_steps: int = 500,
                 refit_paths: int = 256, lm_iterations: int = 20,
                 caches_per_phase: int = 1) -> List[Phase]:
  """The phases of SBIRR (or of vanilla multi-marginal SB with refine=False).

  Args:
    apply_fn: apply_fn(network_params, x, t) -> drift.
    reference: the reference in bridge time (`Reference.rescaled` to the snapshots'
      span); its params are only the initial value of params["reference"].
    data: the training snapshots in bridge time.
    num_outer: outer iterations (bridges + refit).
    ipf_iterations: IPF iterations per outer iteration.
    steps_per_phase: regression steps per IPF half-iteration.
    steps_per_segment: Euler–Maruyama steps per segment (paths and caches).
    cache_size: paths per segment in each trajectory cache.
    batch_size: regression pairs per step.
    refine: refit the reference after each outer iteration.
    refit_steps: optimizer steps of a refit phase.
    refit_paths: paths per segment and direction for the likelihood.
    lm_iterations: Levenberg–Marquardt iterations of the exact refit.
  """
  for value, name in ((num_outer, "num_outer"), (ipf_iterations, "ipf_iterations"),
                      (steps_per_segment, "steps_per_segment"), (cache_size, "cache_size"),
                      (refit_steps, "refit_steps"), (refit_paths, "refit_paths")):
    check_positive_int(value, name)
  grids = multimarginal.segment_grids(data.times, steps_per_segment)
  g = reference.diffusion()
  make_cache = functools.partial(multimarginal.segment_caches, data=data, grids=grids,
                                 num_paths=cache_size, diffusion=g)
  schedule = ipf_schedule(
      apply_fn, lambda drift, key, direction: make_cache(drift, key=key,
                                                         direction=direction),
      lambda params: (lambda x, t: reference.drift(x, t, params["reference"])),
      steps_per_phase=steps_per_phase, batch_size=batch_size,
      caches_per_phase=caches_per_phase)

  def refit_prepare(params, key):
    paths = multimarginal.segment_paths(
        lambda x, t: apply_fn(params["forward"], x, t),
        lambda x, t: apply_fn(params["backward"], x, t), data, grids, key, refit_paths, g)
    increments = refinement.path_increments(paths, grids)
    # The refit starts from the family's initial parameters: params["reference"] is what
    # this phase trains, so prepare may not read it (a resumed run must prepare the same).
    target, _, nll = refinement.refit_reference(reference, increments, lm_iterations)
    return {"target": target, "nll": nll}

  def refit_loss(params, key, shard, step, batch, context):
    del key, shard, step, batch
    gaps = jax.tree.map(lambda p, q: jnp.sum((p - q) ** 2), params["reference"],
                        context["target"])
    distance = sum(jax.tree.leaves(gaps))
    return 0.5 * distance, {"refit_distance": jnp.sqrt(distance),
                            "refit_nll": context["nll"]}

  phases = []
  for r in range(1, num_outer + 1):
    phases += schedule.phases(range(1, ipf_iterations + 1), prefix=f"sbirr_{r}_ipf")
    if refine:
      phases.append(Phase(f"sbirr_{r}_refit", refit_steps, refit_loss, only("reference"),
                          refit_prepare))
  return phases
