"""Plug-and-play conditioning and editing of a trained model at sampling time: the inverse
models Steered Diffusion steers with (`inverse_models`; the guidance itself is
`diffjax.guidance.steered`), Cyclic One-Way Diffusion and SDEdit (`cow`), Diffusion with
Forward Models (`forward_models`)."""
from diffjax.plug_and_play.inverse_models import DEGRADATIONS
from diffjax.plug_and_play.inverse_models import Degradation
from diffjax.plug_and_play.inverse_models import LUMA_WEIGHTS
from diffjax.plug_and_play.inverse_models import LearnedInverseModel
from diffjax.plug_and_play.inverse_models import average_pool
from diffjax.plug_and_play.inverse_models import channel_mix
from diffjax.plug_and_play.inverse_models import inverse_model_fit_loss
from diffjax.plug_and_play.inverse_models import stack_views
from diffjax.plug_and_play.inverse_models import unstack_views
from diffjax.plug_and_play.cow import check_cycle
from diffjax.plug_and_play.cow import check_patch
from diffjax.plug_and_play.cow import cyclic_one_way
from diffjax.plug_and_play.cow import patch_mask
from diffjax.plug_and_play.cow import sdedit
from diffjax.plug_and_play.forward_models import dfm_loss
from diffjax.plug_and_play.forward_models import dfm_sample
from diffjax.plug_and_play.forward_models import half_masks
