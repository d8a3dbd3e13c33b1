"""SeisFusion in 3D: held-out velocity volumes restored slice by slice along both axes.

  python -m experiments.main --config=configs/science/seisfusion_3d.py \
      --workdir=workdirs/seisfusion_3d

The model and training of configs/science/seisfusion.py, unchanged (an MLP flow-matching
model of the 16 x 16 inline sections of 256 layered 16^3 volumes with a fault, 6,000
steps), so `--mode=eval` with this config on a trained seisfusion workdir scores that
model in 3D. Evaluation: the 4 held-out 16^3 volumes with 30%, 50% and 70% of their
traces (columns (x, y)) missing at random (--config.data.mask_kind=regular: whole
planes x = const, so a crossline section there records no trace and is left out of the
average), every inline (x) and crossline (y) section restored by input guidance over 100
ancestral steps with its recorded traces renoised, the two volumes averaged trace by trace
(`diffjax.science.reconstruct_volumes`; SeisFusion's 2D-slice option), against the 3D
linear (Delaunay in (x, y)) and nearest-trace interpolations: `snr_volume_<estimate>_<p>`
(pooled over the volumes), `snr_volume_diffusion_mean_<x|y>_<p>` (one axis alone),
`known_change_volume_<p>` (0: recorded traces unchanged), plots/volume_*.png. The
simulated volumes draw their dips and fault azimuth alike in x and y, so a model of
inline sections is also one of crossline sections (eval.volume_axes=(x,) uses inlines
only). `:tiny` runs in seconds.
"""
from configs.common import parse_arg
from configs.science import seisfusion


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = seisfusion.get_config("tiny" if tiny else None)
  config.eval.volume_axes = ("x", "y")
  if tiny:
    config.data.update(shape=(6, 6, 8))
  return config
