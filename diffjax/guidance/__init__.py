"""Guidance: functions from fields to fields, or steppers wrapping a stepper.

Scale convention everywhere: p_u + w (p_c - p_u) (w = 0 unconditional, w = 1 conditional;
`diffjax.guidance.model`). One method per module: `cfg` (with a guidance interval),
`cfgpp`, `adaptive`, `linear_ag` (LinearAG), `classifier` (noise-aware and EluCD's off-the-shelf;
`noisy_classifier` trains the noise-aware one),
`reconstruction` (DPS), `steered` (Steered Diffusion), `ppap` (PPAP's noise-range
experts, guiding through `classifier`), `tsdiff` (self-guidance), `svdd`, `input_guidance`
(SeisFusion's re-imposed known entries, method "input"), `negative` (away from a class);
each registers its declaration (`method.GuidanceMethod`), `build` maps a config section to
any of them, and
`diffjax.solvers.sample(..., guidance=...)` runs it.
"""
from diffjax.guidance.model import ConditionalModel
from diffjax.guidance.model import mix
from diffjax.guidance.model import scale_from_conditional_convention
from diffjax.guidance.cfg import check_interval
from diffjax.guidance.cfg import classifier_free
from diffjax.guidance.cfg import interval_from_noise_levels
from diffjax.guidance.cfgpp import cfgpp
from diffjax.guidance.cfgpp import cfgpp_fields
from diffjax.guidance.adaptive import adaptive_guidance
from diffjax.guidance.adaptive import saved_fraction
from diffjax.guidance.linear_ag import fit_linear_ag
from diffjax.guidance.linear_ag import linear_ag
from diffjax.guidance.classifier import calibrated_log_prob
from diffjax.guidance.classifier import classifier_guidance
from diffjax.guidance.classifier import off_the_shelf_guidance
from diffjax.guidance.classifier import softplus_relu
from diffjax.guidance.noisy_classifier import classifier_log_prob
from diffjax.guidance.noisy_classifier import noisy_classifier
from diffjax.guidance.noisy_classifier import noisy_classifier_loss
from diffjax.guidance.reconstruction import blur
from diffjax.guidance.reconstruction import check_operator
from diffjax.guidance.reconstruction import dps
from diffjax.guidance.reconstruction import inpainting
from diffjax.guidance.reconstruction import reconstruction_guidance
from diffjax.guidance.reconstruction import subsample
from diffjax.guidance.steered import steered
from diffjax.guidance.ppap import expert_log_prob
from diffjax.guidance.ppap import expert_logits
from diffjax.guidance.ppap import transfer_loss
from diffjax.guidance.tsdiff import observation_energy
from diffjax.guidance.tsdiff import self_guidance
from diffjax.guidance.svdd import posterior_mean_value
from diffjax.guidance.svdd import svdd
from diffjax.guidance.method import GUIDANCE_METHODS
from diffjax.guidance.method import Cost
from diffjax.guidance.method import GuidanceContext
from diffjax.guidance.method import GuidanceMethod
from diffjax.guidance.build import build_guidance
from diffjax.guidance.build import check_guidance_section
from diffjax.guidance.build import guidance_cost
from diffjax.guidance.input_guidance import input_guidance
from diffjax.guidance.negative import negative_guidance
from diffjax.solvers import Guidance
