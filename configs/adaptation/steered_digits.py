"""Steered Diffusion (Nair et al., ICCV 2023) against DPS and reconstruction guidance:
2x super-resolution and centre inpainting of held-out digits with the digits run as prior;
`:colourisation`, the paper's channel mixing: three held-out digits stacked as the R, G, B
channels of one colour image, restored from its luma (`channel_mixing`, 30 images).

  python -m experiments.main --config=configs/guidance/digits.py --workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/adaptation/steered_digits.py \
      --workdir=workdirs/steered --config.eval.prior_workdir=workdirs/guided_digits
  python -m experiments.main --config=configs/adaptation/steered_digits.py:colourisation \
      --workdir=workdirs/steered_colour --config.eval.prior_workdir=workdirs/guided_digits

Trains the learned inverse models (one small perceptron per degradation fitted to pairs
(x, A(x)), 1,000 steps, seconds) and restores eval.num_restored test digits eval.draws
times each with the prior's unconditional model, 20 DDIM steps, per method of
config.methods (`experiments.plug_and_play`): the unguided prior, DPS (zeta), score-form
reconstruction guidance, Steered Diffusion with the known degradation as inverse model (eta
= 2; eta = 5 with the consistency loop, 2 passes per step) and with the learned one.
Reports PSNR (one draw, over draws, of the mean of draws) and the proxy Fréchet distance
per degradation and method, and the unguided prior's. `:tiny` trains 4 steps and restores 4
digits twice with 2 steps (needs a prior run; the tests train a tiny one).
"""
import ml_collections

from configs.common import parse_arg
from diffjax.train.defaults import engine_config


def get_config(arg=None):
  variants, tiny = parse_arg(arg, ("colourisation",))
  config = engine_config()
  config.experiment = "plug_and_play"
  config.data = ml_collections.ConfigDict(dict(name="digits", image_size=8, data_dir=""))
  config.inverse_model = ml_collections.ConfigDict(dict(hidden_dim=256))
  config.train.update(batch_size=128, num_steps=1000, steps_per_call=100, log_every=500,
                      eval_every=1000, checkpoint_every=1000)
  config.optim.update(learning_rate=1e-3, warmup_steps=50)
  config.methods = ml_collections.ConfigDict(dict(
      dps=dict(method="dps", step_size=1.0),
      reconstruction=dict(method="reconstruction", noise_std=0.1, scale=1.0),
      steered=dict(method="steered", step_size=2.0, loops=1),
      steered_loop2=dict(method="steered", step_size=5.0, loops=2),
      steered_learned=dict(method="steered", step_size=2.0, loops=1,
                           inverse_model="learned")))
  config.eval.update(studies=("steered",), patch=(0, 0, 4), sdedit_starts=(0.4, 0.6),
                     prior_workdir="", degradations=("super_resolution", "inpainting"),
                     factor=2, num_restored=50, draws=4, num_steps=20,
                     methods=("dps", "reconstruction", "steered", "steered_loop2",
                              "steered_learned"))
  config.eval.cow = ml_collections.ConfigDict(dict(cycle_start=0.5, cycle_end=0.9, cycles=10))
  if "colourisation" in variants:
    config.eval.update(degradations=("channel_mixing",), num_restored=30)
  if tiny:
    config.train.update(num_steps=4, batch_size=16, steps_per_call=2, log_every=2,
                        eval_every=4, checkpoint_every=4)
    config.optim.warmup_steps = 1
    config.inverse_model.hidden_dim = 16
    config.eval.update(num_restored=4, draws=2, num_steps=2)
  return config
