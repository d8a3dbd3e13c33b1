"""Network weights as data (D2NWG): small MLP classifiers as arrays
(`diffjax.weights.classifier`), their fixed flattening and per-layer groups
(`diffjax.weights.layout`), and zoos of trained networks in files (`diffjax.weights.zoo`).
The tasks and their data-set embeddings are in `diffjax.data.classification_tasks`."""
from diffjax.weights.classifier import (classifier_accuracy, classifier_logits,
                                        fit_classifier, init_classifier)
from diffjax.weights.layout import (WeightLayout, flatten_weights, layer_groups,
                                    layout_of_sizes, unflatten_weights, weight_layout)
from diffjax.weights.zoo import Zoo, load_zoo, save_zoo, train_zoo
