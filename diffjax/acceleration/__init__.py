"""Cheaper or better sampling from a trained network, each a transform of a trained run
that reaches the samplers as fields or a stepper wrapper (no new loop):

  w2sd              Weak-to-Strong Diffusion with Reflection (`w2sd`, `w2sd_guidance`)
  faster_diffusion  the U-Net encoder at key steps only, its features propagated, with
                    parallel decoding and prior noise injection (`faster_diffusion`)
  deediff           per-layer exits of a DiT or token transformer with uncertainty
                    estimates, early-exit sampling (`early_exit_apply`, `early_exit_model`)
  ld_pruner         structured pruning of DiT blocks and MLP channels by the change of the
                    output distribution (`ld_prune`), magnitude and random baselines

LinearAG (the unconditional call replaced by a linear combination of past predictions) is
a guidance method: `diffjax.guidance.linear_ag`.
"""
from diffjax.acceleration.w2sd import check_strength
from diffjax.acceleration.w2sd import check_weak_model
from diffjax.acceleration.w2sd import reflection
from diffjax.acceleration.w2sd import w2sd
from diffjax.acceleration.w2sd import w2sd_guidance
from diffjax.acceleration.faster_diffusion import check_key_steps
from diffjax.acceleration.faster_diffusion import encoder_decoder_changes
from diffjax.acceleration.faster_diffusion import encoder_propagation
from diffjax.acceleration.faster_diffusion import faster_diffusion
from diffjax.acceleration.faster_diffusion import network_flops
from diffjax.acceleration.faster_diffusion import paper_key_steps
from diffjax.acceleration.faster_diffusion import parallel_width
from diffjax.acceleration.deediff import BlockTally
from diffjax.acceleration.deediff import check_threshold
from diffjax.acceleration.deediff import deediff_loss
from diffjax.acceleration.deediff import early_exit_apply
from diffjax.acceleration.deediff import early_exit_model
from diffjax.acceleration.deediff import exit_outputs
from diffjax.acceleration.deediff import init_exits
from diffjax.acceleration.deediff import regression_errors
from diffjax.acceleration.deediff import token_errors
from diffjax.acceleration.ld_pruner import check_target
from diffjax.acceleration.ld_pruner import ld_prune
from diffjax.acceleration.ld_pruner import ld_score
from diffjax.acceleration.ld_pruner import mask_params
from diffjax.acceleration.ld_pruner import prune
