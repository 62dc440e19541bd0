"""Training: what only makes new models, never what uses them.

    trainer      the loop every experiment uses (`train`), its config and the pure step
    parallel     the data-parallel wrapper (`DataParallel`: a device mesh, or `pmap`)
    checkpoints  orbax train checkpoints (the last K and the best) and reading them back
    metrics      metrics to stdout, `metrics.jsonl` and TensorBoard
    synthetic    random-EQ curves for base training, and the layouts' sampler
    augment      the classifier's augmentations of spectrogram windows

Inference (`jaxeq.AutoEQ`, the matchers, the classifier, `jaxeq.exported`) never imports
this package, nor optax or orbax: a test asserts that processing a track loads none of it.
"""
