"""Cheaper or better sampling from a trained network, each a transform of a trained run
that reaches the samplers as fields or a stepper wrapper (no new loop):

  w2sd              Weak-to-Strong Diffusion with Reflection (`w2sd`, `w2sd_guidance`)

LinearAG (the unconditional call replaced by a linear combination of past predictions) is
a guidance method: `diffjax.guidance.linear_ag`.
"""
from diffjax.acceleration.w2sd import check_strength
from diffjax.acceleration.w2sd import check_weak_model
from diffjax.acceleration.w2sd import reflection
from diffjax.acceleration.w2sd import w2sd
from diffjax.acceleration.w2sd import w2sd_guidance
