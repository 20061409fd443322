"""The parameter documentation the gradient-based learners share, written once."""

from __future__ import annotations

_MODULE = """\
    module : torch.nn.Module instance or class, default=None
        The body: maps ``(n, *sample_shape)`` to features ``(n, ...)``
        (flattened). The learner adds the output layer (the *head*). A class
        is instantiated with the ``module__*`` parameters; an instance is
        copied, never trained in place; its batch-norm layers are replaced in
        the copy by task-wise ones (see Notes). None uses
        :class:`~sklearn_meta.nn.Conv4` for images ``(n, C, H, W)`` and, for
        tabular data, two hidden layers of 40 ReLU units (the MAML paper's
        regression network; ``module__hidden_layer_sizes`` changes them)."""

_TASK_CLS = """\
    n_way : int, default=5
        Classes per episode drawn from a pool.
    k_shot : int, default=1
        Support examples per class.
    n_query : int, default=15
        Query examples per class."""

_TASK_REG = """\
    k_shot : int, default=10
        Support samples per task drawn from a pool (each group is a task).
    n_query : int, default=10
        Query samples per task drawn from a pool."""

_INNER = """\
    inner_lr : float, default={inner_lr}
        Step size of the inner-loop gradient steps{inner_lr_note}.
    inner_steps : int, default={inner_steps}
        Inner-loop steps per task during meta-training.
    adapt_steps : int, default=None
        Inner-loop steps at adaptation (``adapt``, ``score``, ``predict``);
        None means ``inner_steps``. The MAML paper adapts with more steps at
        test time than in training."""

_FIRST_ORDER = """\
    first_order : bool, default=False
        Drop the second-order terms of the meta-gradient (first-order MAML):
        the inner-loop gradients are treated as constants."""

_OUTER = """\
    meta_batch_size : int, default={meta_batch_size}
        Tasks per meta-update.
    task_chunk_size : int, "auto" or None, default={task_chunk_size}
        Tasks adapted in one vectorised call; each chunk's graph is freed by
        its backward pass, so memory grows with the chunk, not the meta-batch.
        None adapts the whole meta-batch at once; "auto" does so on a CUDA
        device (4-6x faster there) and takes chunks of 8 on the CPU.
    max_epochs : int, default=10
        Epochs of meta-training.
    episodes_per_epoch : int, default={episodes_per_epoch}
        Tasks per epoch (rounded down to whole meta-batches).
    lr : float, default={lr}
        {lr_doc}
    optimizer : callable, default={optimizer}
        The meta-optimiser class; ``optimizer__*`` parameters are passed to it.
    max_grad_norm : float, default=None
        Clip the norm of the meta-gradient to this value before each update.
    train_split : float, cross-validator or None, default=None
        Meta-validation: a float holds out that fraction of the {units}; a
        splitter gives the split itself. The history then records
        ``valid_loss`` and ``valid_{score}`` every epoch.
    n_valid_episodes : int, default=100
        Meta-validation episodes per epoch (the same every epoch).
    n_eval_episodes : int, default=600
        Episodes :meth:`score` averages over.
    device : str or torch.device, default="auto"
        Where to train: "auto" takes CUDA when available.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Added to the default ones (epoch timer, loss and score records, and
        with ``verbose`` a progress bar and a printed log).
    verbose : int, default=0
        Print a progress bar and a per-epoch log when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the episodes.
    **kwargs : dict
        ``module__*`` and ``optimizer__*`` parameters."""

_ATTRIBUTES = """\
    module_ : torch.nn.Module
        What is meta-learned: ``module_.body`` (a copy of the module),
        ``module_.head`` and, for Meta-SGD, the step sizes ``module_.lrs``.
    optimizer_ : torch.optim.Optimizer
        The meta-optimiser, with its state (for resuming).
    history_ : skorch.history.History
        Per-epoch and per-batch records.
    callbacks_ : list of (str, callback)
        The initialised callbacks.{pool}
    pool_state_ : dict or None
        The weights adapted to the training pool (at most 2,048 samples of it,
        spread over the {units}), used by :meth:`predict`. ``fit`` does
        not pay for it: the adaptation is made at the first prediction and
        kept.
    n_features_in_ : int
        ``X.shape[1]`` in ``fit`` (channels, for images).
    sample_shape_ : tuple of int
        Shape of one sample.
    device_ : torch.device
        The device in use."""

_NOTES = """\
    Inner loops are stateless: fast weights are a dict of tensors passed to
    :func:`torch.func.functional_call`, and :func:`torch.func.vmap` adapts
    ``task_chunk_size`` tasks in one call. Batch normalisation uses the
    statistics of the current batch in the inner loop, as in the MAML paper;
    queries are normalised with the statistics of their task's support set
    under the adapted weights, so a prediction does not depend on which other
    queries come with it. {head}"""

_HEAD_CLS = (
    "The head starts with the same weights for every class (zero, "
    "meta-learned), so one model adapts to any number of ways and to any "
    "label order."
)
_HEAD_REG = "The head is a linear layer with one output per target."


def learner_doc(
    summary: str,
    *,
    regressor: bool,
    references: str,
    examples: str,
    first_order: bool = True,
    extra_params: str = "",
    inner_lr_note: str = "",
    lr_doc: str = "Learning rate of the meta-optimiser.",
    **defaults,
) -> str:
    """Assemble a learner's numpydoc docstring from the shared blocks.

    ``defaults`` overrides the documented default values (``inner_lr``,
    ``inner_steps``, ``meta_batch_size``, ``task_chunk_size``,
    ``episodes_per_epoch``, ``lr``, ``optimizer``).
    """
    values = {
        "inner_lr": "0.01" if regressor else "0.4",
        "inner_steps": 1,
        "meta_batch_size": 25 if regressor else 8,
        "task_chunk_size": "None" if regressor else '"auto"',
        "episodes_per_epoch": 1000 if regressor else 100,
        "lr": "1e-3",
        "optimizer": "torch.optim.Adam",
        **defaults,
    }
    params = [
        _MODULE,
        _TASK_REG if regressor else _TASK_CLS,
        _INNER.format(
            inner_lr=values["inner_lr"],
            inner_steps=values["inner_steps"],
            inner_lr_note=inner_lr_note,
        ),
    ]
    if first_order:
        params.append(_FIRST_ORDER)
    if extra_params:
        params.append(extra_params.rstrip())
    params.append(
        _OUTER.format(
            meta_batch_size=values["meta_batch_size"],
            task_chunk_size=values["task_chunk_size"],
            episodes_per_epoch=values["episodes_per_epoch"],
            lr=values["lr"],
            lr_doc=lr_doc,
            optimizer=values["optimizer"],
            units="groups (or tasks)" if regressor else "classes (or groups, or tasks)",
            score="r2" if regressor else "acc",
        )
    )
    pool = (
        ""
        if regressor
        else "\n    classes_ : ndarray of shape (n_classes,)\n"
        "        Classes of the training pool (after ``fit(X, y)``)."
    )
    attributes = _ATTRIBUTES.format(
        pool=pool, units="samples" if regressor else "classes"
    )
    notes = _NOTES.format(head=_HEAD_REG if regressor else _HEAD_CLS)
    return (
        f"{summary.strip()}\n\n    Parameters\n    ----------\n"
        + "\n".join(params)
        + f"\n\n    Attributes\n    ----------\n{attributes}\n\n"
        f"    Notes\n    -----\n{notes}\n\n"
        f"    References\n    ----------\n{references.rstrip()}\n\n"
        f"    Examples\n    --------\n{examples.rstrip()}\n    "
    )
