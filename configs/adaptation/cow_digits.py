"""Cyclic One-Way Diffusion (Wang et al., ICLR 2024) against SDEdit: a seed patch of each
held-out digit kept while the digits run generates the rest, learning-free.

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/adaptation/cow_digits.py \
      --workdir=workdirs/cow --config.eval.prior_workdir=workdirs/guided_digits

The seed is the 4x4 top-left patch eval.patch = (top, left, size) of each of
eval.num_restored test digits on a blank canvas; COW (20 DDIM steps, 10 cycles between
t_a = 0.5 and t_b = 0.9, eval.cow) and SDEdit from t_s = 0.4 and 0.6 (eval.sdedit_starts)
generate the whole digit with the prior's unconditional model (`experiments.plug_and_play`,
study cow): PSNR of the patch against the seed and the proxy Fréchet distance to the test
digits. The family's inverse models train 10 steps and are unused by COW. `:tiny` restores
4 digits with 4 steps and one cycle (needs a prior run; the tests train a tiny one). A patch
outside the image is refused in one line, exit 2, nothing written.
"""
from configs.adaptation import steered_digits
from configs.common import parse_arg


def get_config(arg=None):
  _, tiny = parse_arg(arg)
  config = steered_digits.get_config(arg)
  config.eval.studies = ("cow",)
  config.eval.update(num_restored=200)
  config.train.update(num_steps=10, steps_per_call=10, log_every=10, eval_every=10,
                      checkpoint_every=10)
  if tiny:
    config.train.update(num_steps=2, steps_per_call=2, log_every=2, eval_every=2,
                        checkpoint_every=2)
    config.eval.update(num_restored=4, num_steps=4)
    config.eval.cow.cycles = 1
  return config
