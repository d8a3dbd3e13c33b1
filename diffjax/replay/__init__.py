"""Replay transitions as data: SynthER's upsampling of an offline buffer
(`diffjax.replay.synther`) and the TD3+BC learner that measures what a buffer is worth
(`diffjax.replay.td3_bc`). Buffers, their files and the Pendulum simulator are in
`diffjax.data.replay` and `diffjax.data.pendulum`."""
from diffjax.replay.synther import (action_deviation, coverage_gap, dynamics_error,
                                    gaussian_buffer, synthetic_buffer,
                                    transition_normaliser)
from diffjax.replay.td3_bc import Learner, td3_bc_learner
