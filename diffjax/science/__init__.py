"""Diffusion models for scientific data: simulated markets (TRADES), weather-forecast
ensembles (SEEDS) and seismic reconstruction (SeisFusion).

order_flow   orders as vectors, market history conditions, autoregressive market
             simulation, the resampling baseline, predictive score, stylised facts
             (and their pooling over streams), the no-change reference
order_model  TRADES's transformer denoiser (model "order_transformer")
ensembles    SEEDS's seed conditions, training draws and ensemble scores
seismic      trace interpolation baselines (`TRACE_INTERPOLATORS`), SNR, volume slices
seismic_volume  3D reconstruction of volumes slice by slice along one or both axes, the
             3D interpolation baselines (`VOLUME_INTERPOLATORS`)
plots        figures: seismic sections, rank histograms, stylised facts of markets
SeisFusion's input guidance is `diffjax.guidance.input_guidance` (guidance method
"input"); the data are `diffjax.data.order_book`, `lorenz96` and `seismic`.
"""
from diffjax.science.order_flow import ORDER_DIM
from diffjax.science.order_flow import OrderScaler
from diffjax.science.order_flow import book_dim
from diffjax.science.order_flow import no_change_mae
from diffjax.science.order_flow import pooled_facts
from diffjax.science.order_flow import predictive_score
from diffjax.science.order_flow import resample_orders
from diffjax.science.order_flow import simulate_market
from diffjax.science.order_flow import stylised_facts
from diffjax.science.order_flow import training_pairs
from diffjax.science.order_model import order_transformer  # Registers "order_transformer".
from diffjax.science.ensembles import ensemble_scores
from diffjax.science.ensembles import member_sampler
from diffjax.science.ensembles import seed_condition
from diffjax.science.seismic import SLICE_AXES
from diffjax.science.seismic import TRACE_INTERPOLATORS
from diffjax.science.seismic import interpolate_traces
from diffjax.science.seismic import pooled_snr_db
from diffjax.science.seismic import snr_db
from diffjax.science.seismic import stack_slices
from diffjax.science.seismic import volume_slices
from diffjax.science.seismic_volume import VOLUME_INTERPOLATORS
from diffjax.science.seismic_volume import check_volume_masks
from diffjax.science.seismic_volume import interpolate_volumes
from diffjax.science.seismic_volume import reconstruct_volumes
