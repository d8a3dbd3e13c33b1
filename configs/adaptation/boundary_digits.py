"""BoundaryDiffusion's automatic critical step (Zhu et al., NeurIPS 2023, Sec. 3.2) beside
the hand-picked t_c on the digits U-Net of configs/diagnostics/h_space.py.

  python -m experiments.main --config=configs/adaptation/boundary_digits.py \
      --workdir=workdirs/boundary

The h-space study (`experiments.h_space`) with eval.search_critical_time: the training
digits of eval.source_class and eval.target_class DDIM-inverted to the source, the least
noisy time from which their mean norm stays in the Gaussian annulus
(`diffjax.diagnostics.boundary.critical_time`; eval.critical_tolerance, 0: two annulus
widths) is `critical_time_found`; the boundary-crossing edit is run at the hand-picked
eval.edit_time (`p_target_boundary_crossing_<lambda>`) and at the found time
(`p_target_found_<lambda>`), the digits classifier's probability of the target class at
each strength. Same training as configs/diagnostics/h_space.py (a run of it can be
evaluated with --mode=eval and this config's eval keys). `:tiny` runs in seconds.
"""
from configs.diagnostics import h_space


def get_config(arg=None):
  config = h_space.get_config(arg)
  config.eval.search_critical_time = True
  return config
