"""The documentation the learners share, written once.

Every parameter that several learners take (the backbone ``module``, the
episode shape, the training loop, meta-validation, devices, callbacks and
seeds) and the fitted attributes they have in common are documented here,
once. A learner's docstring names them by placeholder lines, ``%(n_way)s``
alone on its line, and :func:`fill_doc` replaces each with the entry, at the
placeholder's indentation, with the learner's defaults filled in. What is
special to a learner stays written in its own file.

>>> print(fill_doc("    %(meta_batch_size)s", meta_batch_size=4,
...                meta_batch_note=", embedded in one forward pass"))
    meta_batch_size : int, default=4
        Tasks per meta-update, embedded in one forward pass.
"""

from __future__ import annotations

import re
import textwrap
from typing import NamedTuple

__all__ = ["fill_doc", "learner_doc"]

#: Width of a rendered docstring line, indentation included.
_WIDTH = 79


class _Entry(NamedTuple):
    """One documented name: ``name : type`` then a description.

    ``type`` and ``text`` are :meth:`str.format` templates over the learner's
    values (its defaults, and the phrases that differ between learners).
    """

    name: str
    type: str
    text: str


_ENTRIES: dict[str, _Entry] = {
    # -- parameters ------------------------------------------------------------
    "module": _Entry(
        "module",
        "torch.nn.Module instance or class, default=None",
        "{module_role} A class is instantiated with the ``module__*`` parameters; "
        "an instance is copied, never trained in place{module_copy}. None uses "
        "{module_default}. {module_note}",
    ),
    "n_way": _Entry(
        "n_way",
        "int, default={n_way}",
        "Classes per episode drawn from a pool{n_way_note}.",
    ),
    "k_shot": _Entry(
        "k_shot", "int, default={k_shot}", "Support examples per class{k_shot_note}."
    ),
    "n_query": _Entry("n_query", "int, default={n_query}", "Query examples per class."),
    "task_k_shot": _Entry(
        "k_shot",
        "int, default={k_shot}",
        "Support samples per task drawn from a pool (each group is a task).",
    ),
    "task_n_query": _Entry(
        "n_query", "int, default={n_query}", "Query samples per task drawn from a pool."
    ),
    "train_n_way": _Entry(
        "train_n_way",
        "int, default=None",
        "Classes per training episode. None means ``n_way``. {train_n_way_note}",
    ),
    "inner_lr": _Entry(
        "inner_lr",
        "float, default={inner_lr}",
        "Step size of the inner-loop gradient steps{inner_lr_note}.",
    ),
    "inner_steps": _Entry(
        "inner_steps",
        "int, default={inner_steps}",
        "Inner-loop steps per task during meta-training.",
    ),
    "adapt_steps": _Entry(
        "adapt_steps",
        "int, default=None",
        "Inner-loop steps at adaptation (``adapt``, ``score``, ``predict``); None "
        "means ``inner_steps``. The MAML paper adapts with more steps at test time "
        "than in training.",
    ),
    "first_order": _Entry(
        "first_order",
        "bool, default=False",
        "Drop the second-order terms of the meta-gradient (first-order MAML): the "
        "inner-loop gradients are treated as constants.",
    ),
    "meta_batch_size": _Entry(
        "meta_batch_size",
        "int, default={meta_batch_size}",
        "Tasks per meta-update{meta_batch_note}.",
    ),
    "task_chunk_size": _Entry(
        "task_chunk_size",
        'int, "auto" or None, default={task_chunk_size}',
        "Tasks adapted in one vectorised call; each chunk's graph is freed by its "
        "backward pass, so memory grows with the chunk, not the meta-batch. A "
        "chunk of 1 runs the module's native kernels. None adapts the whole "
        'meta-batch at once; "auto" does so on a CUDA device (4-6x faster '
        "there); on the CPU it adapts images one task per call when a task has "
        "30 samples or more (15 for Reptile; more than 30 for both with more "
        "than one torch thread; faster there, and the least memory) and takes "
        "chunks of 8 otherwise.",
    ),
    "max_epochs": _Entry("max_epochs", "int, default=10", "Epochs of {training}."),
    "episodes_per_epoch": _Entry(
        "episodes_per_epoch",
        "int, default={episodes_per_epoch}",
        "Tasks per epoch (rounded down to whole meta-batches).",
    ),
    "lr": _Entry("lr", "float, default={lr}", "Learning rate of the {optimiser}."),
    "optimizer": _Entry(
        "optimizer",
        "callable, default={optimizer}",
        "The {optimiser} class; ``optimizer__*`` parameters are passed to it.",
    ),
    "max_grad_norm": _Entry(
        "max_grad_norm",
        "float, default=None",
        "Clip the norm of the meta-gradient to this value before each update.",
    ),
    "train_split": _Entry(
        "train_split",
        "float, cross-validator or None, default=None",
        "Meta-validation: a float holds out that fraction of the {units}; a "
        "splitter gives the split itself. The history then records "
        "``valid_loss`` and ``valid_{score}`` every epoch{train_split_note}.",
    ),
    "n_valid_episodes": _Entry(
        "n_valid_episodes",
        "int, default=100",
        "Meta-validation episodes per epoch (the same every epoch).",
    ),
    "n_eval_episodes": _Entry(
        "n_eval_episodes", "int, default=600", "Episodes :meth:`score` averages over."
    ),
    "eval_n_way": _Entry(
        "eval_n_way",
        "int, default=None",
        "Classes per evaluation episode: of :meth:`score`, of meta-validation and "
        "of :func:`~sklearn_meta.model_selection.episodic_score`. None means "
        "``n_way``. Fix it to compare learners trained with different ``n_way`` "
        "on one test.",
    ),
    "eval_k_shot": _Entry(
        "eval_k_shot",
        "int, default=None",
        "Support examples per class (per task, for regressors) of evaluation "
        "episodes. None means ``k_shot``. Fix it to search over ``k_shot`` "
        "with one test protocol.",
    ),
    "eval_n_query": _Entry(
        "eval_n_query",
        "int, default=None",
        "Query examples per class (per task, for regressors) of evaluation "
        "episodes. None means ``n_query``.",
    ),
    "augment": _Entry(
        "augment",
        "callable, list of callables or None, default=None",
        "Augmentation of the training episodes' images: a callable taking and "
        "returning a batch ``(n, C, H, W)`` of float images on the device, or a "
        "list of them applied in turn, such as those of "
        ":mod:`sklearn_meta.augment` (random crop, random resized crop, "
        "horizontal flip, colour jitter). It draws from torch's generators, "
        "which ``fit`` seeds from ``random_state``. Meta-validation, ``adapt``, "
        "``predict`` and ``score`` see the images as they are.",
    ),
    "num_workers": _Entry(
        "num_workers",
        "int, default=0",
        "Threads that read (and decode) the next meta-batches of a pool while "
        "one trains, as torch's ``DataLoader`` workers do; 0 reads each "
        "meta-batch when it is needed. The results do not depend on it.",
    ),
    "distributed": _Entry(
        "distributed",
        '"auto" or bool, default="auto"',
        "Data-parallel meta-training over processes started by ``torchrun``: "
        "each process adapts a share of every meta-batch and the "
        "meta-gradients are summed, giving the one-process result. "
        '"auto" uses a torch.distributed process group when one is initialised '
        "or the launcher's environment is present (and initialises it then); "
        "False always trains in this process alone.",
    ),
    "device": _Entry(
        "device",
        'str or torch.device, default="auto"',
        'Where to train: "auto" takes CUDA when available.',
    ),
    "callbacks": _Entry(
        "callbacks",
        "list of skorch callbacks or (name, callback) tuples, default=None",
        "Added to the default ones (epoch timer, loss and score records, and with "
        "``verbose`` a progress bar and a printed log).",
    ),
    "verbose": _Entry(
        "verbose",
        "int, default=0",
        "Print a progress bar and a per-epoch log when positive.",
    ),
    "random_state": _Entry(
        "random_state",
        "int, RandomState instance or None, default=None",
        "Seeds {seeded}.",
    ),
    "kwargs": _Entry(
        "**kwargs", "dict", "``module__*`` and ``optimizer__*`` parameters."
    ),
    # -- fitted attributes ---------------------------------------------------------
    "optimizer_": _Entry(
        "optimizer_",
        "torch.optim.Optimizer",
        "The {optimiser}, with its state (for resuming).",
    ),
    "history_": _Entry(
        "history_",
        "skorch.history.History",
        "Per-epoch and per-batch records{history_note}.",
    ),
    "callbacks_": _Entry(
        "callbacks_", "list of (str, callback)", "The initialised callbacks."
    ),
    "classes_": _Entry(
        "classes_",
        "ndarray of shape (n_classes,)",
        "Classes of the training pool (after ``fit(X, y)``).",
    ),
    "n_features_in_": _Entry(
        "n_features_in_", "int", "``X.shape[1]`` in ``fit`` (channels, for images)."
    ),
    "sample_shape_": _Entry("sample_shape_", "tuple of int", "Shape of one sample."),
    "device_": _Entry("device_", "torch.device", "The device in use."),
}

#: Placeholders that stand for several entries, in this order.
_GROUPS: dict[str, tuple[str, ...]] = {
    "episode": ("n_way", "k_shot", "n_query"),
    "optimisation": (
        "meta_batch_size",
        "max_epochs",
        "episodes_per_epoch",
        "lr",
        "optimizer",
    ),
    "validation": ("train_split", "n_valid_episodes", "n_eval_episodes"),
    "evaluation": ("eval_n_way", "eval_k_shot", "eval_n_query"),
    "task_evaluation": ("eval_k_shot", "eval_n_query"),
    "runtime": (
        "augment",
        "num_workers",
        "distributed",
        "device",
        "callbacks",
        "verbose",
        "random_state",
        "kwargs",
    ),
    "training_attributes": ("optimizer_", "history_", "callbacks_"),
    "data_attributes": ("n_features_in_", "sample_shape_", "device_"),
}

#: What a learner gets unless it says otherwise. ``meta_batch_size`` and
#: ``module_role`` have no default: every learner states them.
_DEFAULTS: dict[str, object] = {
    "n_way": 5,
    "k_shot": 1,
    "n_query": 15,
    "episodes_per_epoch": 100,
    "lr": "1e-3",
    "optimizer": "torch.optim.Adam",
    "module_copy": "",
    "module_default": (
        ":class:`~sklearn_meta.nn.Conv4` for images ``(n, C, H, W)`` and, for "
        "tabular data, a :class:`~sklearn_meta.nn.TabularEmbedding` centred on "
        "the mean of the samples given to ``fit`` (untrained, nearest "
        "centroid's space)"
    ),
    "module_note": "",
    "n_way_note": "",
    "k_shot_note": "",
    "train_n_way_note": "",
    "inner_lr_note": "",
    "meta_batch_note": "",
    "training": "meta-training",
    "optimiser": "meta-optimiser",
    "units": "classes (or groups, or tasks)",
    "score": "acc",
    "train_split_note": "",
    "seeded": "the initialisation and the episodes",
    "history_note": "",
}

_LITERAL = re.compile(r"``.+?``")
_KEEP = "\x00"  # stands for a space that must not break a line
_PLACEHOLDER = re.compile(r"^(?P<indent>[ ]*)%\((?P<key>\w+)\)s[ ]*$", re.MULTILINE)


def _render(key: str, indent: str, values: dict, text: str | None = None) -> str:
    """Render the entry ``key`` at ``indent``: its line, then its description.

    ``text`` replaces the entry's own description template.
    """
    if key in _GROUPS:
        return "\n".join(_render(k, indent, values) for k in _GROUPS[key])
    if key not in _ENTRIES:
        raise KeyError(
            f"There is no shared documentation entry {key!r}; the entries are "
            f"{sorted(_ENTRIES)} and the groups {sorted(_GROUPS)}."
        )
    entry = _ENTRIES[key]
    description = " ".join((text or entry.text).format(**values).split())
    # An inline literal such as ``(n, C, H, W)`` stays on one line.
    description = _LITERAL.sub(lambda m: m[0].replace(" ", _KEEP), description)
    body = textwrap.fill(
        description,
        _WIDTH,
        initial_indent=indent + "    ",
        subsequent_indent=indent + "    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    body = body.replace(_KEEP, " ")
    return f"{indent}{entry.name} : {entry.type.format(**values)}\n{body}"


def fill_doc(doc: str, **values) -> str:
    """Replace each placeholder line of ``doc`` with the shared entry it names.

    A placeholder is ``%(name)s`` alone on its line; ``name`` is a documented
    parameter or attribute (``n_way``, ``optimizer_``), ``kwargs`` for
    ``**kwargs``, or a group of them (``episode``: ``n_way``, ``k_shot``,
    ``n_query``; ``optimisation``: ``meta_batch_size`` to ``optimizer``;
    ``validation``: ``train_split``, ``n_valid_episodes``,
    ``n_eval_episodes``; ``evaluation``: ``eval_n_way``, ``eval_k_shot``,
    ``eval_n_query`` (``task_evaluation``: the last two); ``runtime``:
    ``device`` to ``**kwargs``; ``training_attributes`` and
    ``data_attributes``). ``values`` sets the learner's defaults
    (``meta_batch_size=1``) and the phrases its entries take
    (``module_role``, the ``*_note`` clauses); the rest of ``doc`` is kept
    as written.

    Parameters
    ----------
    doc : str
        The docstring with placeholder lines.
    **values : dict
        The learner's defaults and phrases, over the shared ones.

    Returns
    -------
    doc : str
        The docstring with the entries written out.

    Raises
    ------
    KeyError
        For a placeholder that names no entry, or a value an entry needs that
        is not given.
    """
    values = {**_DEFAULTS, **values}
    return _PLACEHOLDER.sub(lambda m: _render(m["key"], m["indent"], values), doc)


# -- the gradient-based learners ---------------------------------------------------

#: The default module of the gradient classifiers.
_CLASSIFIER_BODY = (
    ":class:`~sklearn_meta.nn.Conv4` for images ``(n, C, H, W)`` and, for "
    "tabular data, a :class:`~sklearn_meta.nn.TabularEmbedding` centred on the "
    "mean of the samples given to ``fit``, with which the head starts at the "
    "support's class prototypes (untrained and without an inner step: nearest "
    "centroid)"
)

_GRADIENT_VALUES = {
    "module_role": (
        "The body: maps ``(n, *sample_shape)`` to features ``(n, ...)`` "
        "(flattened). The learner adds the output layer (the *head*)."
    ),
    "module_copy": (
        "; its batch-norm layers are replaced in the copy by task-wise ones (see Notes)"
    ),
    "module_default": (
        ":class:`~sklearn_meta.nn.Conv4` for images ``(n, C, H, W)`` and, for "
        "tabular data, two hidden layers of 40 ReLU units (the MAML paper's "
        "regression network; ``module__hidden_layer_sizes`` changes them)"
    ),
}

_POOL_STATE = """\
    pool_state_ : dict or None
        The weights adapted to the training pool (at most 2,048 samples of it,
        spread over the {units}), used by :meth:`predict`. ``fit`` does
        not pay for it: the adaptation is made at the first prediction and
        kept."""

_NOTES = """\
    Inner loops are stateless: fast weights are a dict of tensors passed to
    :func:`torch.func.functional_call`, and :func:`torch.func.vmap` adapts
    ``task_chunk_size`` tasks in one call. Batch normalisation uses the
    statistics of the current batch in the inner loop, as in the MAML paper;
    queries are normalised with the statistics of their task's support set
    under the adapted weights, so a prediction does not depend on which other
    queries come with it. {head}"""

_HEAD_CLS = (
    "The head starts with the same weights for every class (zero, and not "
    "meta-learned: a start shared by every class cannot change a "
    "prediction), so one model adapts to any number of ways and to any "
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
    lr_doc: str | None = None,
    **defaults,
) -> str:
    """Assemble a gradient-based learner's numpydoc docstring.

    Parameters
    ----------
    summary : str
        The summary line and the extended summary.
    regressor : bool
        Whether the learner is a regressor (tasks of samples, R² scores)
        rather than a classifier (episodes of classes, accuracies).
    references : str
        The References section's body.
    examples : str
        The Examples section's body.
    first_order : bool, default=True
        Document the ``first_order`` parameter.
    extra_params : str, default=""
        The learner's own parameters, written out, placed after the inner
        loop's.
    inner_lr_note : str, default=""
        A clause completing the ``inner_lr`` sentence.
    lr_doc : str, default=None
        The description of ``lr``; None: the meta-optimiser's learning rate.
    **defaults : dict
        The documented defaults that differ from the family's (``inner_lr``,
        ``inner_steps``, ``meta_batch_size``, ``task_chunk_size``,
        ``episodes_per_epoch``, ``lr``, ``optimizer``).

    Returns
    -------
    doc : str
        The docstring.
    """
    values = {
        **_DEFAULTS,
        **_GRADIENT_VALUES,
        "k_shot": 10 if regressor else 1,
        "n_query": 10 if regressor else 15,
        "inner_lr": "0.01" if regressor else "0.4",
        "inner_steps": 1,
        "meta_batch_size": 25 if regressor else 8,
        "task_chunk_size": "None" if regressor else '"auto"',
        "episodes_per_epoch": 1000 if regressor else 100,
        "units": "groups (or tasks)" if regressor else "classes (or groups, or tasks)",
        "score": "r2" if regressor else "acc",
        "inner_lr_note": inner_lr_note,
        **({} if regressor else {"module_default": _CLASSIFIER_BODY}),
        **defaults,
    }
    indent = "    "
    keys = ["module"]
    keys += ["task_k_shot", "task_n_query"] if regressor else ["episode"]
    keys += ["inner_lr", "inner_steps", "adapt_steps"]
    keys += ["first_order"] if first_order else []
    params = [_render(k, indent, values) for k in keys]
    if extra_params:
        params.append(extra_params.rstrip())
    params += [
        _render(k, indent, values) for k in ("meta_batch_size", "task_chunk_size")
    ]
    params += [_render(k, indent, values) for k in ("max_epochs", "episodes_per_epoch")]
    params.append(_render("lr", indent, values, text=lr_doc))
    params += [_render(k, indent, values) for k in ("optimizer", "max_grad_norm")]
    evaluation = "task_evaluation" if regressor else "evaluation"
    params += [
        _render(k, indent, values) for k in ("validation", evaluation, "runtime")
    ]

    module_ = (
        "    module_ : torch.nn.Module\n"
        "        What is meta-learned: ``module_.body`` (a copy of the module),\n"
        "        ``module_.head`` and, for Meta-SGD, the step sizes ``module_.lrs``."
    )
    attributes = [module_, _render("training_attributes", indent, values)]
    if not regressor:
        attributes.append(_render("classes_", indent, values))
    attributes.append(_POOL_STATE.format(units="samples" if regressor else "classes"))
    attributes.append(_render("data_attributes", indent, values))
    notes = _NOTES.format(head=_HEAD_REG if regressor else _HEAD_CLS)
    return (
        f"{summary.strip()}\n\n    Parameters\n    ----------\n"
        + "\n".join(params)
        + "\n\n    Attributes\n    ----------\n"
        + "\n".join(attributes)
        + f"\n\n    Notes\n    -----\n{notes}\n\n"
        f"    References\n    ----------\n{references.rstrip()}\n\n"
        f"    Examples\n    --------\n{examples.rstrip()}\n    "
    )
