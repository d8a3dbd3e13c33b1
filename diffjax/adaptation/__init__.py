"""Adapting a trained run: few-shot fine-tuning to a new style (plain, DomainStudio, phasic
content fusing; `FEW_SHOT_METHODS`), its target domains and diversity metrics; ProSpect's
prompt spectrum; CatVTON-style conditioning by spatial concatenation."""
from diffjax.adaptation import concat, domainstudio, phasic, prospect
from diffjax.adaptation.diversity import intra_cluster_distance, mean_pairwise_distance
from diffjax.adaptation.few_shot import (FEW_SHOT_METHODS, FewShotContext, FewShotMethod,
                                         classifier_encoder, few_shot_context, few_shot_loss)
from diffjax.adaptation.intervals import check_intervals, interval_index
from diffjax.adaptation.styles import TARGET_STYLES, few_shot_set, styled_digits
