"""The toy-2D family (`experiments.toy2d`): flow matching or score models on on-device
vector samplers, scored by W2 and energy distance.
"""
import ml_collections

from diffjax.train.defaults import engine_config

def base_config() -> ml_collections.ConfigDict:
  """Defaults for a toy-2D flow-matching run; configs override what they need."""
  config = engine_config()
  config.experiment = "toy2d"
  config.data = ml_collections.ConfigDict(dict(
      source="standard_normal", target="moons", dim=2))
  config.coupling = ml_collections.ConfigDict(dict(name="independent"))
  config.path = ml_collections.ConfigDict(dict(name="linear"))
  config.objective = ml_collections.ConfigDict(dict(
      name="flow_matching", time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(
      name="mlp", width=128, depth=3, activation="silu", time_embedding="sinusoidal",
      time_dim=32))
  config.sample = ml_collections.ConfigDict(dict(
      solver="heun", num_steps=50, num_trajectories=200))
  config.eval.metrics = ("w2", "energy_distance")
  config.eval.num_samples = 2000
  config.eval.reference_seed = 12345
  return config
