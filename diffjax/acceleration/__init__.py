"""Cheaper or better sampling from a trained network, each a transform of a trained run
that reaches the samplers as fields or a stepper wrapper (no new loop):

  w2sd              Weak-to-Strong Diffusion with Reflection (`w2sd`, `w2sd_guidance`)
  faster_diffusion  the U-Net encoder at key steps only, its features propagated, with
                    parallel decoding and prior noise injection (`faster_diffusion`)

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
