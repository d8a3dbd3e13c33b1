"""The images family (`experiments.images`): the 8x8 digits or a tfds image dataset.
"""
import ml_collections

from diffjax.train.defaults import engine_config

def base_config() -> ml_collections.ConfigDict:
  """Defaults for image runs: the 8x8 digits, linear-path flow matching, a small DiT.

  On a CPU the DiT (matmuls) trains about 3x faster per step than a U-Net of similar
  quality (XLA's CPU convolutions are slow); on accelerators prefer the U-Net configs.
  """
  config = engine_config()
  config.experiment = "images"
  config.data = ml_collections.ConfigDict(dict(
      name="digits", image_size=8, data_dir="", random_flip=False))
  config.path = ml_collections.ConfigDict(dict(name="linear"))
  config.objective = ml_collections.ConfigDict(dict(name="flow_matching",
                                                    time_sampler="uniform"))
  config.model = ml_collections.ConfigDict(dict(
      name="dit", patch_size=2, hidden_dim=96, depth=4, num_heads=4, num_classes=10))
  config.train.update(batch_size=128, num_steps=3000, steps_per_call=50, log_every=250,
                      eval_every=1500, checkpoint_every=500)
  config.train.label_dropout = 0.1
  config.optim.update(learning_rate=2e-3, warmup_steps=200, ema_decay=0.999)
  config.sample = ml_collections.ConfigDict(dict(solver="heun", num_steps=20,
                                                 num_images=50))
  config.eval.update(num_samples=500, bpd_examples=64, bpd_steps=20)
  # InceptionV3 weights file (.npz or pytorch-fid's .pth; see diffjax/inception.py, never
  # downloaded): "" = off; else Inception FID of the num_samples samples against as many
  # test images (bin centres).
  config.eval.inception_weights = ""
  return config
