"""Pictures of what a network learned and how its training went.

Each `draw_*` function takes a run directory (or a `.keras` file), writes a
PNG and returns its path; for run directories the same image also goes to
the run's TensorBoard logs (`logs/pictures`). The `*_figure` functions
build the matplotlib `Figure` alone, for notebooks and tests.

    filters        first convolution layer's kernels (optionally beside
                   the initial weights `fit` saved)
    feature-maps   activations of conv and pool layers for one image
    curves         loss and accuracy per epoch (span F1 for the tagger)
    confusion      test-set confusion matrix with per-class accuracy
    tags           a sentence with the slot tagger's spans and intent
    explain        why a class: Grad-CAM, Grad-CAM++, integrated gradients
                   or SmoothGrad over the image (the tagger: per-word
                   integrated gradients for its intent and a slot)

`explain(model, images, method=...)` returns the maps as arrays.

matplotlib (Agg canvas, no pyplot state) and TensorFlow are imported inside
the functions, so importing this package is cheap; `train.fit` calls
`save_initial_filters` and `save_run_curves`.
"""

from kerascnn.visualize.confusion import confusion_figure, draw_confusion
from kerascnn.visualize.curves import (
    curves_figure,
    draw_curves,
    read_history,
    save_run_curves,
)
from kerascnn.visualize.explain_methods import (
    METHODS,
    Explainer,
    ExplainOptions,
    Explanation,
    explain,
)
from kerascnn.visualize.explain_pictures import draw_explain
from kerascnn.visualize.explain_tagger import (
    draw_token_attributions,
    token_attributions,
)
from kerascnn.visualize.feature_maps import (
    default_feature_layers,
    draw_feature_maps,
    feature_maps_figure,
)
from kerascnn.visualize.filters import (
    INITIAL_FILTERS_FILENAME,
    draw_filters,
    filters_figure,
    first_conv_layer,
    save_initial_filters,
)
from kerascnn.visualize.tags import (
    draw_tags,
    tag_sentence,
    tags_figure,
    tags_html,
)

__all__ = [
    "INITIAL_FILTERS_FILENAME",
    "METHODS",
    "ExplainOptions",
    "Explainer",
    "Explanation",
    "draw_explain",
    "draw_token_attributions",
    "explain",
    "token_attributions",
    "confusion_figure",
    "curves_figure",
    "default_feature_layers",
    "draw_confusion",
    "draw_curves",
    "draw_feature_maps",
    "draw_filters",
    "draw_tags",
    "feature_maps_figure",
    "filters_figure",
    "first_conv_layer",
    "read_history",
    "save_initial_filters",
    "save_run_curves",
    "tag_sentence",
    "tags_figure",
    "tags_html",
]
