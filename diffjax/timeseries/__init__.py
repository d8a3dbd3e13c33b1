"""Time series with diffusion models: forecasting scores, base forecasters, TSDiff's refine
and synthesize, and PaD-TS's population-level training and metric.

metrics     CRPS (ensemble, fair, Gaussian closed form), spread-skill, rank histograms
forecasters `BASE_FORECASTERS`: seasonal naive, linear (ridge)
refine      TSDiff refinement by Langevin sampling or maximum likelihood (`REFINERS`)
            on the denoising energy or the ELBO (`ENERGIES`)
synthesize  train-on-synthetic-test-on-real
population  channel correlations, the cross-correlation distribution shift, PaD-TS's
            population aware loss
TSDiff's "predict" (observation self-guidance) is `diffjax.guidance.self_guidance`.
"""
from diffjax.timeseries.metrics import crps_ensemble
from diffjax.timeseries.metrics import crps_gaussian
from diffjax.timeseries.metrics import mean_absolute_error
from diffjax.timeseries.metrics import rank_histogram
from diffjax.timeseries.metrics import spread_skill
from diffjax.timeseries.forecasters import BASE_FORECASTERS
from diffjax.timeseries.forecasters import fit_forecaster
from diffjax.timeseries.refine import ENERGIES
from diffjax.timeseries.refine import REFINERS
from diffjax.timeseries.refine import REGULARIZERS
from diffjax.timeseries.refine import check_refinement
from diffjax.timeseries.refine import denoising_energy
from diffjax.timeseries.refine import elbo_energy
from diffjax.timeseries.refine import refine
from diffjax.timeseries.synthesize import train_on_synthetic_test_on_real
from diffjax.timeseries.population import channel_correlations
from diffjax.timeseries.population import correlation_shift
from diffjax.timeseries.population import mmd_squared
from diffjax.timeseries.population import population_aware_loss
from diffjax.timeseries.population import population_loss
from diffjax.timeseries.population import value_shift
