"""What every config file shares: its argument ("a,b,tiny"), the "tiny" variant and the
vector-data flow-matching sections (`flow_matching_mlp`).

Every config accepts the argument "tiny" (a seconds-long run for tests and smoke checks),
alone or after its own variants: `get_config("tiny")`, `get_config("unet,tiny")`.
"""
from typing import Optional, Sequence, Tuple

import ml_collections

from diffjax.errors import ConfigError


def parse_arg(arg: Optional[str], variants: Sequence[str] = ()) -> Tuple[Tuple[str, ...], bool]:
  """A config argument "a,b,tiny" -> ((a, b), tiny). Every config accepts "tiny" (a
  seconds-long run for tests and smoke checks) besides its own `variants`; anything else
  is refused with the valid choices."""
  parts = tuple(p for p in (arg or "").split(",") if p)
  unknown = [p for p in parts if p != "tiny" and p not in variants]
  if unknown:
    valid = ", ".join(tuple(variants) + ("tiny",))
    raise ConfigError(f"Unknown config argument {arg!r}; valid: {valid}, combined with "
                      "commas (or none).")
  return tuple(p for p in parts if p != "tiny"), "tiny" in parts


# Small versions of each model for `shrink_to_tiny`.
TINY_MODELS = {
    "mlp": dict(width=32, depth=2),
    "stacked_fields": dict(width=32, depth=2),
    "dit": dict(hidden_dim=16, depth=1, num_heads=2),
    "unet": dict(channels=8, channel_mults=(1, 2), num_res_blocks=1,
                 attention_resolutions=(), dropout=0.0),
}


def shrink_to_tiny(config, num_steps=200, batch_size=64, num_samples=256, sample_steps=10):
  """The "tiny" variant of any config: `num_steps` training steps in two chunks with an
  evaluation and a checkpoint after each, a small model, few sampler steps and samples."""
  chunk = max(num_steps // 2, 1)
  config.train.update(num_steps=num_steps, batch_size=batch_size, steps_per_call=chunk,
                      log_every=chunk, eval_every=chunk, checkpoint_every=chunk)
  config.optim.warmup_steps = min(config.optim.warmup_steps, num_steps // 8)
  config.model.update(TINY_MODELS.get(config.model.name, {}))
  config.sample.num_steps = min(config.sample.num_steps, sample_steps)
  for key, value in (("num_trajectories", 16), ("num_images", 10)):
    if key in config.sample:
      config.sample[key] = min(config.sample[key], value)
  if "num_samples" in config.eval:   # families with their own evaluation may have none
    config.eval.num_samples = min(config.eval.num_samples, num_samples)
  return config


def flow_matching_mlp(config, width: int = 512):
  """Sets path, objective and model to flow matching on the rectified-flow path with
  uniform times and a SiLU MLP (depth 3, sinusoidal time features of dimension 32) of
  `width`: the vector-data setting of the time-series and science configs."""
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.objective = ml_collections.ConfigDict(dict(name="flow_matching",
                                                    time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(name="mlp", width=width, depth=3,
                                                activation="silu",
                                                time_embedding="sinusoidal", time_dim=32))
  return config
