"""Guidance demos (placeholder while the family is written)."""
import ml_collections

from experiments import images


def guidance_section(**overrides) -> ml_collections.ConfigDict:
  section = ml_collections.ConfigDict(dict(method="none", scale=1.0))
  section.update(overrides)
  return section


def guided_images_config():
  config = images.base_config()
  config.experiment = "guided_images"
  config.path = ml_collections.ConfigDict(dict(name="rectified_flow"))
  config.train.label_dropout = 0.15
  config.sample = ml_collections.ConfigDict(dict(solver="ddim", num_steps=20, num_images=50))
  config.sample.guidance = guidance_section(sweep_methods=("cfg", "cfgpp"),
                                            sweep_scales=(0.0, 1.0, 2.0, 4.0))
  return config


def build_guided_images(config):
  return images.build_task(config)
