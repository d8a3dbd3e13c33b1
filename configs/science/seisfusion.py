"""SeisFusion on simulated 2D seismic sections: missing traces restored by input guidance.

  python -m experiments.main --config=configs/science/seisfusion.py \
      --workdir=workdirs/seisfusion

An MLP flow-matching model (rectified-flow path, 6,000 steps) of the 16 x 16 inline
sections of 256 layered velocity volumes with a dipping fault (`diffjax.data.seismic`);
evaluation on 64 sections of 4 held-out volumes with 30%, 50% and 70% of the traces
missing at random, restored by input guidance over 100 ancestral steps with the recorded
traces renoised (sample.guidance.renoise): `snr_diffusion_<p>` (one draw),
`snr_diffusion_mean_<p>` (mean of 8 draws) against `snr_linear_<p>` and
`snr_nearest_<p>` (dB), `known_change_<p>` (0: the recorded traces unchanged),
plots/section_*.png. --config.data.mask_kind=regular drops whole planes x = const (the same
traces of every inline section); 3D volumes:
configs/science/seisfusion_3d.py; your own data:
--config.data.name=file --config.data.file=volumes.npz (V, nx, ny, nz) and
--config.data.mask_file=mask.npz (nx, ny of 0/1). `:tiny` runs in seconds.
"""
import ml_collections

from configs.common import flow_matching_mlp, parse_arg, shrink_to_tiny
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = engine_config()
  config.experiment = "seismic"
  config.data = ml_collections.ConfigDict(dict(
      name="layered", file="", mask_file="", shape=(16, 16, 16), num_volumes=256,
      test_volumes=4, mask_kind="random"))
  flow_matching_mlp(config, width=512)
  # An MLP of the 256 values of a section: a U-Net (`--config.model.name=unet` with its
  # options) costs ~100x more per step, too much for the shared CPU the README figures
  # were measured on.
  config.train.update(batch_size=64, num_steps=6000, steps_per_call=250, log_every=500,
                      eval_every=6000, checkpoint_every=2000)
  config.optim.update(learning_rate=1e-3, warmup_steps=100)
  # SeisFusion's DDPM-style sampler with the known traces renoised each step (RePaint's
  # replacement); DDIM with renoise=False keeps them on one straight path (worse here).
  config.sample = ml_collections.ConfigDict(dict(solver="ancestral", num_steps=100))
  config.sample.guidance = ml_collections.ConfigDict(dict(method="input", renoise=True))
  # volume_axes: () scores 2D sections; ("x", "y") restores whole volumes slice by slice
  # (configs/science/seisfusion_3d.py).
  config.eval.update(missing=(0.3, 0.5, 0.7), num_sections=64, num_draws=8, volume_axes=())
  if tiny:
    shrink_to_tiny(config, num_steps=10, batch_size=8, sample_steps=3)
    config.data.update(shape=(8, 4, 8), num_volumes=2, test_volumes=1)
    config.eval.update(num_sections=2, num_draws=2)
  return config
