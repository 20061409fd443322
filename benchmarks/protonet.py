"""Speed of Prototypical and Matching Networks episodes: sklearn_meta against easyfsl.

Both libraries run in the same process, on the same 28x28 Omniglot pools, with
the same 4-block convolutional backbone starting from the same weights, on
5-way 5-shot 15-query episodes drawn by
:class:`~sklearn_meta.tasks.EpisodeSampler`. ``--method`` picks the method:
``prototypical`` (the default) compares
:class:`~sklearn_meta.PrototypicalClassifier` with easyfsl's
``PrototypicalNetworks``; ``matching`` compares
:class:`~sklearn_meta.MatchingNetworkClassifier` with easyfsl's
``MatchingNetworks`` (see "Matching Networks" below). What follows says
"PrototypicalClassifier" and "PrototypicalNetworks"; with ``--method
matching`` read the Matching Networks classes instead.

What is measured
----------------
Training, seconds per episode:

- ours: :class:`~sklearn_meta.PrototypicalClassifier` ``fit(X, y)`` with
  ``max_epochs=1, episodes_per_epoch=N`` on the "background" characters, for
  each ``meta_batch_size``. The time is the epoch duration that skorch's
  ``EpochTimer`` records (``history_[-1, "dur"]``): episode sampling, gathering,
  forward, backward and Adam steps. It leaves out what ``fit`` does once
  (validation, building the module) and the embedding of the whole pool at the
  end (``_fit_pool``), which are not per-episode work.
- easyfsl: the training loop its documentation gives, one episode per step:
  ``model.process_support_set(support_images, support_labels)``,
  ``scores = model(query_images)``, cross-entropy (negative log-likelihood for
  Matching Networks, whose scores are log-probabilities, as easyfsl's
  documentation says), backward, Adam step, the episode's images gathered
  from the same float32 tensor inside the loop. Episode indices are drawn
  before the loop (its sampling is not timed).

With ``meta_batch_size=B`` ours embeds B episodes in one forward pass and takes
one optimiser step per B episodes, so B > 1 is faster per episode but is also
a different training schedule (fewer, averaged steps); B = 1 is the
like-for-like row.

Evaluation, seconds per episode on the "evaluation" characters, for M
episodes (M = 1, 10 and ``--eval-episodes``):

- ours: ``episodic_score(clf, X, y, n_way=5, k_shot=5, n_query=15,
  n_episodes=M)`` (:func:`sklearn_meta.model_selection.episodic_score`, what
  ``score`` runs, with the accuracy of every episode). It embeds every image the M
  episodes use once, then builds the episodes by index arithmetic, so its cost
  per episode falls as M grows; M=1 and M=10 show the price when few episodes
  are asked. It includes validating the whole pool once per call.
- easyfsl: per episode, in eval mode under ``torch.no_grad()``,
  ``process_support_set`` then ``forward`` on the query images, on the same
  episodes (``EpisodeSampler(y, 5, 5, 15).sample(M, random_state=0)``).

Every time is the median of ``--repeats`` runs after a warm-up run of each
shape. Ratios are ours / easyfsl (below 1: ours is faster). The tables also
give episodes per second, the inverse of the seconds per episode.

With ``--accuracy`` both are also trained for ``--train-episodes`` episodes
(ours with ``meta_batch_size=1``; easyfsl on the very episodes ours trained on,
recorded by a callback) and evaluated on the same ``--eval-episodes`` episodes,
to check that they reach the same accuracy. The two are not numerically
identical: ours scores with squared Euclidean distances (as in the paper) and
embeds support and query in one batch-norm batch; easyfsl uses
``-torch.cdist`` (Euclidean distances) and embeds them in two calls.

Backbones
---------
Ours is :class:`sklearn_meta.nn.Conv4` (channels-last memory format, pooling
before the ReLU; same outputs). easyfsl ships no conv4 (``easyfsl.modules``
has ResNets), so easyfsl gets the standard conv4 written inline: four blocks
of 3x3 convolution with 64 filters, batch normalisation, ReLU and 2x2
max-pooling, in PyTorch's default (NCHW) memory format, which is what easyfsl
users run. The memory format is part of what is compared: an easyfsl user
could convert a backbone to channels-last too.
Both have the same layers and parameter names; easyfsl's copy is loaded with
the state of ours before training, so both start from the same weights.

Matching Networks
-----------------
easyfsl's ``MatchingNetworks`` always uses full context embeddings, so ours
runs with ``fce=True``. The two then have the same parts, which easyfsl's
copy loads from ours before training (so they start from the same weights,
LSTMs included): a bidirectional ``LSTM(64, 64)`` over the support set, with
g(x_i, S) = h_forward_i + h_backward_i + g'(x_i), and an attention
``LSTMCell(128, 64)`` for the queries, started at h = f'(x), c = 0, reading
r = sum_i softmax(h . g_i) g_i, then h, c = LSTM([f'(x), r], (h, c)) and h = h +
f'(x) at each step (``feature_dimension=64``: conv4's output on 28x28
images). easyfsl takes one read step per support example; ours takes
``fce_steps``, set to the same number (N_WAY * K_SHOT = 25 steps). They differ
in:

- the final attention: ours is a softmax of cosine similarities divided by
  ``temperature`` (its default, 0.1); easyfsl's is a softmax of the dot
  products of the (unnormalised) refined queries with the normalised support
  embeddings, without a temperature;
- the log-probabilities: ours clamps at the smallest positive float before the
  log, easyfsl adds 1e-6;
- the loss: ours takes the cross-entropy of the log-probabilities (equal to
  their negative log-likelihood, since they sum to one), easyfsl the negative
  log-likelihood;
- batch normalisation: ours embeds support and query in one batch, easyfsl in
  two (as for Prototypical Networks);
- batching: ours runs the LSTMs over all episodes of a meta-batch at once,
  and in evaluation over many episodes at once (their embeddings computed
  once, as above); easyfsl over one episode at a time.

easyfsl without torchvision
---------------------------
``import easyfsl.methods`` imports torchvision (``easyfsl/modules/resnet.py``,
``predesigned_modules.py`` and ``feat_resnet12.py`` take ``BasicBlock``,
``Bottleneck``, ``conv1x1`` and ``conv3x3`` from ``torchvision.models.resnet``)
and torchvision has no build beside this CPU-only torch. When torchvision is
missing, this script puts a stand-in ``torchvision.models.resnet`` module in
``sys.modules`` for the duration of that import only, inside this process; its
members raise if called. Only easyfsl's ResNets use them, and they are never
built here.

Without the Omniglot zips (``--data-home``) the script says so and runs on
random images of the same shape (timings stay meaningful, accuracies do not).

Run ``python benchmarks/protonet.py`` (``--help`` for the options), and
``python benchmarks/protonet.py --method matching`` for Matching Networks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import itertools
import statistics
import sys
import types
from collections.abc import Callable

import numpy as np
import torch
from _common import (
    argument_parser,
    machine,
    plus_minus,
    print_table,
    timed,
    write_record,
)
from skorch.callbacks import Callback
from torch import nn
from torch.nn import functional as F

from sklearn_meta import MatchingNetworkClassifier, PrototypicalClassifier
from sklearn_meta.datasets import load_omniglot
from sklearn_meta.model_selection import episodic_score
from sklearn_meta.nn import Conv4
from sklearn_meta.tasks import EpisodeSampler

N_WAY, K_SHOT, N_QUERY = 5, 5, 15
LR = 1e-3
#: Size of conv4's flattened output on 28x28 images (64 channels of 1x1).
CONV4_DIM = 64


@dataclasses.dataclass(frozen=True)
class Method:
    """One method as both libraries implement it.

    Parameters
    ----------
    title : str
        Its name, for the printed tables.
    ours : type
        Our learner's class.
    ours_params : dict
        Parameters of our learner beyond the episode and training ones.
    easyfsl : str
        The class's name in ``easyfsl.methods``.
    easyfsl_params : dict
        Keyword arguments of that class beyond the backbone.
    state_prefixes : dict
        Prefixes of our module's state names and the ones they take in
        easyfsl's model, to load our initial weights into it.
    loss : callable
        easyfsl's training loss, ``loss(scores, labels)``.
    """

    title: str
    ours: type
    ours_params: dict
    easyfsl: str
    easyfsl_params: dict
    state_prefixes: dict
    loss: Callable


METHODS = {
    "prototypical": Method(
        title="Prototypical Networks",
        ours=PrototypicalClassifier,
        ours_params={},
        easyfsl="PrototypicalNetworks",
        easyfsl_params={},
        state_prefixes={"": "backbone."},
        loss=F.cross_entropy,
    ),
    "matching": Method(
        title="Matching Networks (full context embeddings)",
        ours=MatchingNetworkClassifier,
        # easyfsl's query LSTM reads once per support example.
        ours_params={"fce": True, "fce_steps": N_WAY * K_SHOT},
        easyfsl="MatchingNetworks",
        easyfsl_params={"feature_dimension": CONV4_DIM},
        state_prefixes={
            "backbone.": "backbone.",
            "support_lstm.": "support_features_encoder.",
            "query_cell.": "query_features_encoding_cell.",
        },
        # Its scores are log-probabilities.
        loss=F.nll_loss,
    ),
}


# -- easyfsl -------------------------------------------------------------------


def _unavailable(*args, **kwargs):
    raise RuntimeError(
        "torchvision is not installed: this is the stand-in the protonet benchmark "
        "puts in place so that easyfsl imports; easyfsl's ResNets cannot be built."
    )


@contextlib.contextmanager
def _torchvision_stand_in():
    """Make ``torchvision.models.resnet`` importable while the block runs."""
    resnet = types.ModuleType("torchvision.models.resnet")
    for name in ("BasicBlock", "Bottleneck"):
        # Classes, because easyfsl's ResNet annotates with Type[Union[...]].
        stand_in = type(name, (), {"expansion": 1, "__init__": _unavailable})
        setattr(resnet, name, stand_in)
    resnet.conv1x1 = resnet.conv3x3 = _unavailable
    models = types.ModuleType("torchvision.models")
    models.resnet = resnet
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    stand_ins = {m.__name__: m for m in (torchvision, models, resnet)}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)


def import_easyfsl(name: str = "PrototypicalNetworks"):
    """Return the class ``easyfsl.methods.<name>`` and whether a stand-in was needed."""
    if importlib.util.find_spec("torchvision") is not None:
        from easyfsl import methods

        return getattr(methods, name), False
    with _torchvision_stand_in():
        from easyfsl import methods
    return getattr(methods, name), True


def standard_conv4() -> nn.Sequential:
    """Build the usual conv4: (conv 3x3, BN, ReLU, max-pool 2x2) x 4, NCHW."""
    channels = [1, 64, 64, 64, 64]
    return nn.Sequential(
        *(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            for c_in, c_out in itertools.pairwise(channels)
        ),
        nn.Flatten(),
    )


def easyfsl_state(method: Method, state: dict) -> dict:
    """Our module's ``state`` under the names of easyfsl's model."""
    renamed = {}
    for name, value in state.items():
        prefix = next(p for p in method.state_prefixes if name.startswith(p))
        renamed[method.state_prefixes[prefix] + name[len(prefix) :]] = value
    return renamed


def easyfsl_model(method: Method, model_cls, state: dict) -> nn.Module:
    """Build easyfsl's model of ``method`` on a conv4, from our module's ``state``."""
    model = model_cls(standard_conv4(), **method.easyfsl_params)
    model.load_state_dict(easyfsl_state(method, state))
    return model


def easyfsl_train(model, episodes, loss=F.cross_entropy) -> float:
    """Train on ``episodes`` the way easyfsl documents; return seconds per episode.

    ``episodes`` yields ``(X_support, y_support, X_query, y_query)``; when it
    gathers them lazily (:func:`gather`), the gathering is timed too. ``loss``
    takes the model's scores and the query labels.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()

    def train() -> int:
        n_episodes = 0
        for X_support, y_support, X_query, y_query in episodes:
            optimizer.zero_grad()
            model.process_support_set(X_support, y_support)
            scores = model(X_query)
            value = loss(scores, y_query)
            value.backward()
            optimizer.step()
            value.item()  # what a training loop logs; ours records it too
            n_episodes += 1
        return n_episodes

    n_episodes, seconds = timed(train)
    return seconds / n_episodes


def easyfsl_eval(model, episodes) -> tuple[float, np.ndarray]:
    """Evaluate on ``episodes``; return seconds per episode and the accuracies."""
    model.eval()

    def evaluate() -> list[float]:
        accuracies = []
        with torch.no_grad():
            for X_support, y_support, X_query, y_query in episodes:
                model.process_support_set(X_support, y_support)
                scores = model(X_query)
                accuracies.append((scores.argmax(1) == y_query).float().mean().item())
        return accuracies

    accuracies, seconds = timed(evaluate)
    return seconds / len(accuracies), np.array(accuracies)


def index_episodes(y, n_episodes: int) -> list[tuple]:
    """Episodes of ``y``'s pool: support indices, labels, query indices, labels."""
    sampler = EpisodeSampler(y, N_WAY, K_SHOT, N_QUERY)
    support, query = sampler.sample(n_episodes, random_state=0)
    y_support = torch.as_tensor(sampler.support_labels())
    y_query = torch.as_tensor(sampler.query_labels())
    return [
        (torch.as_tensor(s), y_support, torch.as_tensor(q), y_query)
        for s, q in zip(support, query)
    ]


def gather(X: torch.Tensor, episodes):
    """Gather each episode's images from ``X`` when the consumer asks for it."""
    return ((X[s], y_s, X[q], y_q) for s, y_s, q, y_q in episodes)


# -- ours ------------------------------------------------------------------------


class RecordEpisodes(Callback):
    """Keep the training episodes a learner sees, to replay them elsewhere."""

    def initialize(self):
        """Start with no episodes."""
        self.episodes_ = []
        return self

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        """Store every episode of a training meta-batch."""
        if training:
            for b in batch:
                self.episodes_ += zip(b.X_support, b.y_support, b.X_query, b.y_query)


def ours(method: Method, template, meta_batch_size: int, n_episodes: int, **kwargs):
    """Build our learner of ``method`` on a copy of ``template``, for one epoch."""
    params = dict(
        n_way=N_WAY,
        k_shot=K_SHOT,
        n_query=N_QUERY,
        meta_batch_size=meta_batch_size,
        max_epochs=1,
        episodes_per_epoch=n_episodes,
        lr=LR,
        device="cpu",
        random_state=0,
    )
    return method.ours(template, **{**params, **method.ours_params, **kwargs})


def initial_state(method: Method, template, X, y) -> dict:
    """Our learner's module state before training.

    It depends on ``template`` and ``random_state`` only (the parts a learner
    adds are seeded from it), so every learner :func:`ours` builds starts from
    it: a fit without epochs on a few classes gives it.
    """
    few = np.isin(y, np.unique(y)[:N_WAY])
    clf = ours(method, template, 1, 1, max_epochs=0).fit(X[few], y[few])
    return {k: v.clone() for k, v in clf.module_.state_dict().items()}


def ours_train(clf, X, y) -> float:
    """Fit ``clf``; return its training seconds per episode (epoch time only)."""
    clf.fit(X, y)
    n_episodes = sum(clf.history_[-1, "batches", :, "train_batch_size"])
    return clf.history_[-1, "dur"] / n_episodes


def ours_eval(clf, X, y, n_episodes: int) -> tuple[float, np.ndarray]:
    """Score ``n_episodes`` episodes; return seconds per episode and the accuracies."""
    result, seconds = timed(
        lambda: episodic_score(
            clf,
            X,
            y,
            n_way=N_WAY,
            k_shot=K_SHOT,
            n_query=N_QUERY,
            n_episodes=n_episodes,
            random_state=0,
        )
    )
    return seconds / n_episodes, result.scores


# -- the benchmark ------------------------------------------------------------------


def load_pools(data_home):
    """Omniglot background/evaluation pools, or random images if missing."""
    try:
        return (
            "omniglot",
            *load_omniglot(
                "background", data_home=data_home, download=False, return_X_y=True
            ),
            *load_omniglot(
                "evaluation", data_home=data_home, download=False, return_X_y=True
            ),
        )
    except OSError as exc:
        print(
            f"Omniglot is not available ({exc}).\n"
            "Timing on random 1x28x28 images instead (accuracies are meaningless)."
        )
        rng = np.random.default_rng(0)

        def pool(n_classes):
            X = rng.random((n_classes * 20, 1, 28, 28), dtype=np.float32)
            return X, np.repeat([f"c{i}" for i in range(n_classes)], 20)

        return ("random", *pool(964), *pool(659))


def median_time(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def time_training(args, method, template, model_cls, state, X, y):
    """Seconds per training episode: ours per meta_batch_size, then easyfsl.

    Returns the rows and the last trained model of each library.
    """
    X_t = torch.from_numpy(X)
    episodes = index_episodes(y, args.train_episodes)
    # Warm-up: every shape once (oneDNN builds its kernels per shape), ours on
    # 20 classes so that fit's final embedding of the pool stays short.
    small = np.isin(y, np.unique(y)[:20])
    for b in args.meta_batch_sizes:
        ours_train(ours(method, template, b, 2 * b), X[small], y[small])
    easyfsl_train(
        easyfsl_model(method, model_cls, state),
        gather(X_t, episodes[:3]),
        method.loss,
    )

    rows = []
    for b in args.meta_batch_sizes:
        times = []
        for _ in range(args.repeats):
            clf = ours(method, template, b, args.train_episodes)
            times.append(ours_train(clf, X, y))
        rows.append(
            {
                "learner": "ours",
                "meta_batch_size": b,
                "s_per_episode": statistics.median(times),
            }
        )
    times = []
    for _ in range(args.repeats):
        model = easyfsl_model(method, model_cls, state)
        times.append(easyfsl_train(model, gather(X_t, episodes), method.loss))
    rows.append(
        {
            "learner": "easyfsl",
            "meta_batch_size": 1,
            "s_per_episode": statistics.median(times),
        }
    )
    for row in rows:
        row["episodes_per_s"] = 1 / row["s_per_episode"]
    return rows, clf, model


def time_evaluation(args, clf, model, X, y):
    """Seconds per evaluation episode for M = 1, 10 and --eval-episodes."""
    X_t = torch.from_numpy(X)
    ours_eval(clf, X, y, 10)  # warm-up
    easyfsl_eval(model, gather(X_t, index_episodes(y, 3)))
    rows = []
    for m in sorted({1, 10, args.eval_episodes}):
        episodes = index_episodes(y, m)
        rows.append(
            {
                "n_episodes": m,
                "ours": median_time(
                    lambda m=m: ours_eval(clf, X, y, m)[0], args.repeats
                ),
                "easyfsl": median_time(
                    lambda e=episodes: easyfsl_eval(model, gather(X_t, e))[0],
                    args.repeats,
                ),
            }
        )
    for row in rows:
        row["ours_episodes_per_s"] = 1 / row["ours"]
        row["easyfsl_episodes_per_s"] = 1 / row["easyfsl"]
    return rows


def compare_accuracy(args, method, template, model_cls, state, X, y, X_eval, y_eval):
    """Accuracy of both after the same training episodes, on the same test episodes."""
    recorder = RecordEpisodes()
    clf = ours(
        method, template, 1, args.train_episodes, callbacks=[("record", recorder)]
    )
    clf.fit(X, y)
    model = easyfsl_model(method, model_cls, state)
    easyfsl_train(model, recorder.episodes_, method.loss)
    X_eval_t = torch.from_numpy(X_eval)
    episodes = gather(X_eval_t, index_episodes(y_eval, args.eval_episodes))
    result = {}
    for name, accuracies in [
        ("ours", ours_eval(clf, X_eval, y_eval, args.eval_episodes)[1]),
        ("easyfsl", easyfsl_eval(model, episodes)[1]),
    ]:
        ci95 = 1.96 * accuracies.std(ddof=1) / np.sqrt(len(accuracies))
        result[name] = {"accuracy": float(accuracies.mean()), "ci95": float(ci95)}
    return result


def print_tables(train_rows, eval_rows, accuracy, args):
    easyfsl_train_s = train_rows[-1]["s_per_episode"]
    print_table(
        train_rows,
        [
            (
                "learner",
                lambda r: (
                    f"ours (meta_batch_size={r['meta_batch_size']})"
                    if r["learner"] == "ours"
                    else "easyfsl (1 episode per step)"
                ),
            ),
            ("s / episode", "s_per_episode", ".5f"),
            ("episodes / s", "episodes_per_s", ".1f"),
            ("ours / easyfsl", lambda r: r["s_per_episode"] / easyfsl_train_s, ".2f"),
        ],
        title=f"{METHODS[args.method].title}: training, {N_WAY}-way {K_SHOT}-shot "
        f"{N_QUERY}-query, {args.train_episodes} episodes, median of {args.repeats}",
    )
    print_table(
        eval_rows,
        [
            ("M", "n_episodes"),
            ("ours", "ours", ".5f"),
            ("easyfsl", "easyfsl", ".5f"),
            ("ours ep/s", "ours_episodes_per_s", ".1f"),
            ("easyfsl ep/s", "easyfsl_episodes_per_s", ".1f"),
            ("ours / easyfsl", lambda r: r["ours"] / r["easyfsl"], ".2f"),
        ],
        title="Evaluation, seconds per episode (and episodes per second) when M "
        f"episodes are asked, median of {args.repeats}",
    )
    if accuracy:
        print_table(
            [{"learner": name, **acc} for name, acc in accuracy.items()],
            [
                ("learner", "learner"),
                (
                    "accuracy (%)",
                    lambda r: plus_minus((100 * r["accuracy"], 100 * r["ci95"])),
                ),
            ],
            title=f"Accuracy on {args.eval_episodes} evaluation episodes after "
            f"{args.train_episodes} training episodes (same episodes, same start)",
        )


def main(argv=None) -> dict:
    parser = argument_parser(__doc__, "data_home", "json")
    parser.add_argument(
        "--method",
        choices=sorted(METHODS),
        default="prototypical",
        help="the method both libraries run",
    )
    parser.add_argument("--train-episodes", type=int, default=200)
    parser.add_argument("--eval-episodes", type=int, default=600)
    parser.add_argument(
        "--meta-batch-sizes",
        default="1,4,16",
        help="comma-separated meta_batch_size values for ours",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's default)",
    )
    parser.add_argument(
        "--accuracy",
        action="store_true",
        help="also compare accuracy after the same training",
    )
    args = parser.parse_args(argv)
    args.meta_batch_sizes = [int(b) for b in args.meta_batch_sizes.split(",")]
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    method = METHODS[args.method]
    model_cls, stand_in = import_easyfsl(method.easyfsl)
    if stand_in:
        print(
            "torchvision is not installed: easyfsl was imported with a stand-in "
            "torchvision.models.resnet (its ResNets are not used here)."
        )
    source, X, y, X_eval, y_eval = load_pools(args.data_home)
    print(
        f"{source}: {len(X)} training images ({len(np.unique(y))} classes), "
        f"{len(X_eval)} evaluation images ({len(np.unique(y_eval))} classes); "
        f"{torch.get_num_threads()} torch threads"
    )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        template = Conv4()

    state = initial_state(method, template, X, y)
    train_rows, clf, model = time_training(
        args, method, template, model_cls, state, X, y
    )
    eval_rows = time_evaluation(args, clf, model, X_eval, y_eval)
    accuracy = (
        compare_accuracy(args, method, template, model_cls, state, X, y, X_eval, y_eval)
        if args.accuracy
        else None
    )
    print_tables(train_rows, eval_rows, accuracy, args)

    figures = {
        "method": args.method,
        "easyfsl_model": method.easyfsl,
        "ours_params": method.ours_params,
        "data": source,
        "episode": {"n_way": N_WAY, "k_shot": K_SHOT, "n_query": N_QUERY},
        "train": train_rows,
        "eval": eval_rows,
        "accuracy": accuracy,
        "easyfsl_torchvision_stand_in": stand_in,
        "versions": {**machine()["versions"], "easyfsl": _version("easyfsl")},
    }
    return write_record(args.json, figures, benchmark="protonet", args=args)


def _version(package: str):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
