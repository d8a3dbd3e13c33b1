"""SEEDS: more forecast-ensemble members generated from a few seed members.

"SEEDS: Emulation of Weather Forecast Ensembles with Diffusion Models" (Li et al., Science
Advances 2024, Sec. 2): a diffusion model learns p(member | K seed members of the same
forecast) over many forecast dates; from K = 2 physics-based seeds it draws as many
members as wanted (generative ensemble emulation). Trained with condition dropout, the
same network with the condition dropped is an unconditional emulator of the
climatological distribution of members. The condition of K seeds (K, N) is their mean
and standard deviation per variable (2 N numbers, invariant to the seeds' order).
Evaluated against the verifying truth by CRPS, spread-skill ratio and rank histograms
(`diffjax.timeseries.metrics`).
"""
import jax
import jax.numpy as jnp
import numpy as np

from diffjax.timeseries.metrics import crps_ensemble, rank_histogram, spread_skill


def seed_condition(seeds):
  """(B, K, N) seed members -> (B, 2 N): their mean and (population) std per variable."""
  seeds = jnp.asarray(seeds, jnp.float32)
  return jnp.concatenate([jnp.mean(seeds, 1), jnp.std(seeds, 1)], -1)


def member_sampler(members, num_seeds):
  """draw(key, n) -> (member (n, N), condition (n, 2 N)): a random date of members
  (D, M, N), K = num_seeds seeds and one further member of it, all distinct."""
  members = jnp.asarray(members, jnp.float32)
  dates, size = members.shape[:2]

  def draw(key, n):
    k_date, k_pick = jax.random.split(key)
    d = jax.random.randint(k_date, (n,), 0, dates)
    order = jnp.argsort(jax.random.uniform(k_pick, (n, size)), 1)[:, :num_seeds + 1]
    picked = members[d[:, None], order]
    return picked[:, -1], seed_condition(picked[:, :-1])
  return draw


def ensemble_scores(ensemble, truth):
  """{"crps", "fair_crps", "spread_skill", "spread", "rmse"} of ensembles (D, M, N)
  against truths (D, N), averaged over dates and variables, and the rank histogram."""
  members_first = np.moveaxis(np.asarray(ensemble), 1, 0)
  ratio, spread, skill = spread_skill(members_first, truth)
  scores = {"crps": float(np.mean(crps_ensemble(members_first, truth))),
            "spread_skill": ratio, "spread": spread, "rmse": skill}
  if members_first.shape[0] > 1:
    scores["fair_crps"] = float(np.mean(crps_ensemble(members_first, truth, fair=True)))
  return scores, rank_histogram(members_first, truth)
