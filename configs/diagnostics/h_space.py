"""h-space directions (Haas et al., FG 2024) and BoundaryDiffusion edits (Zhu et al.,
NeurIPS 2023) on an unconditional digits U-Net.

  python -m experiments.main --config=configs/diagnostics/h_space.py --workdir=workdirs/h_space

Trains a small unconditional U-Net (bottleneck 4 x 4 x 16) on the 8x8 digits by flow
matching on the rectified-flow path, then (`experiments.h_space`) DDIM-inverts digits to
t_c = eval.edit_time, finds directions in h there (class-mean difference, linear-SVM
normal, top principal component, top Jacobian singular vector, random controls of the
same norm) and regenerates held-out eval.source_class digits with h moved along each, at
every strength of eval.strengths: the digits classifier's probability of
eval.target_class along the edit (`p_target_<direction>_<strength>` in metrics.jsonl),
plots/edit_curves_<step>.png and one image grid per direction (rows = strengths). A few
minutes on a 2-core CPU; rerun the study on a trained run with --mode=eval (eval.* may
change, e.g. --config.eval.target_class=4). `:tiny` runs in seconds.
"""
from configs.diagnostics.base import h_space_config
from configs.common import parse_arg, shrink_to_tiny


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = h_space_config()
  if tiny:
    shrink_to_tiny(config, num_steps=20, batch_size=16, num_samples=20, sample_steps=4)
    config.train.update(eval_every=20, checkpoint_every=20)
    config.eval.update(strengths=(0.0, 1.0), num_random=2, num_edited=8)
  return config
