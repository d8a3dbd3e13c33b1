"""The bridges family (`experiments.bridges`): SB-CFM, IPF, IMF, SBIRR and vanilla
multi-marginal SB (`diffjax.bridges.BRIDGE_METHODS`).
"""
import ml_collections

from configs.common import parse_arg
from diffjax.bridges.methods import BRIDGE_METHODS, call_length
from diffjax.errors import ConfigError
from diffjax.train.defaults import engine_config

RUN_TO_PHASES_END = 10 ** 9   # train.num_steps: the phases end the run.
# The snapshot configs' argument: SBIRR, its baseline with the reference fixed, and that
# baseline under the true reference (reference.start "system", an oracle).
SNAPSHOT_VARIANTS = {"refined": "sbirr", "vanilla": "multimarginal",
                     "oracle": "multimarginal"}


def base_config() -> ml_collections.ConfigDict:
  """Defaults of a bridge run (moons -> 8 gaussians by IPF); configs override them."""
  config = engine_config()
  config.experiment = "bridges"
  config.bridge = ml_collections.ConfigDict(dict(
      method="ipf", sigma=1.0, num_steps=20, gamma_min=1.0, gamma_max=1.0,
      num_iterations=10, steps_per_phase=1000,
      cache_size=2048, caches_per_phase=1, initial_coupling="independent",
      initial_steps=0, host_coupling=False, t_margin=1e-3))
  config.data = ml_collections.ConfigDict(dict(
      kind="toy2d", source="moons", target="eight_gaussians", dim=2, seed=0, blocks=(),
      system="lotka_volterra", file="", times_start=0.0, times_stop=6.0, times_step=0.5,
      num_points=1000, hold_out=True))
  config.reference = ml_collections.ConfigDict(dict(
      family="zero", start="family", num_outer=1, refit_paths=256, lm_iterations=20))
  config.model = ml_collections.ConfigDict(dict(
      name="mlp", width=128, depth=3, activation="silu", time_embedding="sinusoidal",
      time_dim=32))
  config.train.update(num_steps=RUN_TO_PHASES_END, batch_size=256, steps_per_call=250,
                      log_every=500, eval_every=2000, checkpoint_every=2000)
  # The targets of mean and bridge matching are noisy (variance sigma^2 / h); a learning
  # rate decaying over the whole run leaves the last iterations' networks well averaged.
  config.optim.update(schedule="cosine", warmup_steps=100, end_lr_factor=0.01,
                      grad_clip=0.0)
  config.eval.update(use_ema=False, num_samples=2000, num_trajectories=200,
                     reference_seed=12345, end_metrics=("w2", "energy_distance"))
  return config


def iteration_steps(config):
  """Training steps of one iteration of the config's method (its declared `iteration`:
  two half-iterations of IPF or IMF, one outer iteration of SBIRR)."""
  return BRIDGE_METHODS.get(config.bridge.method).iteration(config)


def set_intervals(config):
  """Evaluates and checkpoints once per iteration (`iteration_steps`) and logs once per
  phase; train calls run whole phases (`diffjax.bridges.methods.call_length`: the
  greatest common divisor of the phases' lengths), so each kind of phase compiles one
  train call (a call's length is static: a new length compiles anew)."""
  chunk = call_length(config)
  every = iteration_steps(config)
  config.train.update(eval_every=every, checkpoint_every=every, log_every=chunk,
                      steps_per_call=chunk)
  return config


def choose_method(config, arg, variants, default):
  """Sets bridge.method from the config argument's word: variants maps each word to a
  method name (`diffjax.bridges.BRIDGE_METHODS`), default is the word taken when the
  argument has none; two words are refused. Returns the word."""
  words, _ = parse_arg(arg, tuple(variants))
  chosen = sorted(set(words))
  if len(chosen) > 1:
    raise ConfigError(f"Give one of {', '.join(variants)} in the config argument; got "
                      f"{', '.join(chosen)}.")
  word = chosen[0] if chosen else default
  config.bridge.method = variants[word]
  return word


def apply_args(config, arg, allowed=()):
  """Applies a config file's argument ("a,tiny": `configs.common.parse_arg`): "tiny"
  (seconds, for tests) and any of `allowed`, returned as a set; anything else is refused."""
  variants, tiny = parse_arg(arg, allowed)
  words = set(variants) | ({"tiny"} if tiny else set())
  if "tiny" in words:
    c = config.bridge
    # One IPF iteration per outer iteration on snapshots, two iterations otherwise.
    outer = BRIDGE_METHODS.get(c.method).problem == "snapshots"
    c.update(num_steps=min(c.num_steps, 8), steps_per_phase=20, cache_size=128,
             initial_steps=0, num_iterations=min(c.num_iterations, 1 if outer else 2))
    config.reference.update(num_outer=min(config.reference.num_outer, 2), refit_paths=32,
                            lm_iterations=5)
    config.data.num_points = min(config.data.num_points, 200)
    config.model.update(width=32, depth=2)
    config.train.update(batch_size=64, steps_per_call=20, log_every=20)
    config.eval.update(num_samples=256, num_trajectories=16)
  set_intervals(config)
  return words
