"""The Meta-Learner LSTM (Ravi & Larochelle, 2017): a learned optimiser."""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .._docs import _DEFAULTS, _GRADIENT_VALUES, fill_doc
from .._functional import (
    _ClassHead,
    _map_tasks,
    _MetaModel,
    _named_parameters,
    _replace_batch_norm,
)
from .._sklearn import Interval
from ..base import MetaClassifierMixin
from ..gradient import BaseGradientLearner
from ..tasks import _EpisodeBatch

#: Andrychowicz et al. (2016)'s preprocessing constant, used by the paper.
_PREPROCESS_P = 10.0


def _preprocess(x: torch.Tensor, p: float = _PREPROCESS_P) -> torch.Tensor:
    """Scale-free encoding of gradients and losses: ``(...,)`` to ``(..., 2)``.

    ``(log|x| / p, sign(x))`` when ``|x| >= exp(-p)``, else ``(-1, exp(p) x)``
    (Andrychowicz et al., 2016, appendix A; Ravi & Larochelle, 2017, sec. 3.2).
    Values spanning many orders of magnitude then reach the LSTM on one scale.
    """
    magnitude = x.abs()
    large = magnitude >= math.exp(-p)
    log_part = torch.where(
        large, torch.log(magnitude.clamp_min(math.exp(-p))) / p, torch.full_like(x, -1)
    )
    sign_part = torch.where(large, torch.sign(x), x * math.exp(p))
    return torch.stack([log_part, sign_part], -1)


class _MetaLSTMCell(nn.Module):
    """The meta-learner: a coordinate-wise two-layer LSTM.

    Every coordinate of the learner's parameters is one row, and all rows
    share the weights. The first layer is an ordinary LSTM (``hidden_size``
    units; 0 leaves it out) reading the preprocessed gradient and loss; the
    second is the paper's cell whose state *is* the parameter vector
    (eq. 2-4)::

        i_t = sigmoid(W_I . [x_t, theta_{t-1}, i_{t-1}] + b_I)
        f_t = sigmoid(W_F . [x_t, theta_{t-1}, f_{t-1}] + b_F)
        theta_t = f_t * theta_{t-1} - i_t * grad_t

    where ``x_t`` is the first layer's output (or, without it, the
    preprocessed gradient and loss themselves).
    """

    def __init__(self, hidden_size: int, inner_lr: float):
        super().__init__()
        n_features = 4  # preprocessed gradient (2) and loss (2)
        self.lstm = nn.LSTMCell(n_features, hidden_size) if hidden_size else None
        n_in = hidden_size or n_features
        # Column 0 is the input gate, column 1 the forget gate.
        self.weight_x = nn.Parameter(torch.empty(n_in, 2).uniform_(-0.01, 0.01))
        self.weight_theta = nn.Parameter(torch.empty(2).uniform_(-0.01, 0.01))
        self.weight_prev = nn.Parameter(torch.empty(2).uniform_(-0.01, 0.01))
        # The paper starts with a forget gate near 1 (b_F in [4, 6]) and a small
        # input gate (b_I in [-5, -4]): plain gradient descent with a small step.
        # Here the input gate starts at inner_lr.
        input_bias = math.log(inner_lr / (1 - inner_lr))
        forget_bias = torch.empty(()).uniform_(4.0, 6.0)
        self.bias = nn.Parameter(torch.stack([torch.tensor(input_bias), forget_bias]))

    def initial_state(self, theta: torch.Tensor) -> dict:
        """Zero gates and first-layer state for parameters ``(B, P)``."""
        zeros = torch.zeros_like(theta)
        state = {"i": zeros, "f": zeros}
        if self.lstm is not None:
            h = theta.new_zeros(theta.numel(), self.lstm.hidden_size)
            state["lstm"] = (h, h)
        return state

    def gates(
        self, grad: torch.Tensor, loss: torch.Tensor, theta: torch.Tensor, state: dict
    ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Input and forget gates ``(B, P)`` and the next state.

        ``grad`` and ``theta`` are ``(B, P)`` (one row of coordinates per
        task), ``loss`` is ``(B,)``.
        """
        B, P = grad.shape
        x = torch.cat(
            [_preprocess(grad), _preprocess(loss)[:, None, :].expand(B, P, 2)], -1
        )
        new_state = {}
        if self.lstm is not None:
            h, c = self.lstm(x.reshape(B * P, 4), state["lstm"])
            new_state["lstm"] = (h, c)
            x = h.view(B, P, -1)
        prev = torch.stack([state["i"], state["f"]], -1)
        pre = x @ self.weight_x + theta[..., None] * self.weight_theta
        pre = pre + prev * self.weight_prev + self.bias
        i, f = torch.sigmoid(pre).unbind(-1)
        new_state.update(i=i, f=f)
        return i, f, new_state


class _MetaLSTMModel(_MetaModel):
    """Everything meta-learned: the learner (body and head) and its optimiser."""

    def __init__(self, body: nn.Module, head: nn.Module, update_rule: _MetaLSTMCell):
        super().__init__(body, head)
        self.update_rule = update_rule


class MetaLSTMClassifier(MetaClassifierMixin, BaseGradientLearner):
    __doc__ = fill_doc(
        """Meta-Learner LSTM: a learned optimiser whose cell state is the learner.

    A coordinate-wise LSTM (Ravi & Larochelle, 2017) trains the learner
    network (the ``module`` and a linear head) on each task's support set: at
    every step it reads each parameter's gradient and the support loss
    (preprocessed as in Andrychowicz et al., 2016), and writes the update
    through learned input and forget gates, ``theta_t = f_t * theta_{t-1} -
    i_t * grad_t``. Its cell state starts at the learner's meta-learned
    initial parameters. The LSTM and that initialisation are meta-trained by
    back-propagating the query loss of the trained learner through the
    unrolled steps. As in the paper, the gradient and loss fed to the LSTM
    are treated as constants (no second derivatives of the learner);
    ``truncate_steps`` bounds how many steps the meta-gradient goes back
    through the gates. Any module works: the LSTM sees every parameter by
    name through :func:`torch.func.functional_call`.

    Parameters
    ----------
    %(module)s
    %(episode)s
    inner_steps : int, default=5
        Steps of the learned optimiser per task during meta-training, each on
        the whole support set.
    adapt_steps : int, default=None
        Steps at adaptation (``adapt``, ``score``, ``predict``); None means
        ``inner_steps``, what the optimiser was trained for.
    inner_lr : float, default=0.1
        The input gate's starting value: before meta-training the update is
        gradient descent with this step (and a forget gate near 1). Must be
        in (0, 1).
    hidden_size : int, default=20
        Units of the first, ordinary LSTM layer (the paper's 20); 0 feeds the
        preprocessed gradient and loss to the gates directly.
    truncate_steps : int, default=None
        Truncated back-propagation: the meta-gradient flows through the gates
        of the last ``truncate_steps`` steps only. Earlier steps still pass
        it on through the cell state's linear path (``f_t * theta_{t-1}``),
        with their gates held constant, so the initialisation keeps learning
        while the memory for the LSTM's graph is bounded. None back-propagates
        through every step.
    %(meta_batch_size)s
    task_chunk_size : int, "auto" or None, default=8
        Tasks adapted in one vectorised call; each chunk's graph is freed by
        its backward pass. None adapts the whole meta-batch at once; "auto"
        does so on a CUDA device and takes chunks of 8 on the CPU.
    %(max_epochs)s
    %(episodes_per_epoch)s
    %(lr)s
    %(optimizer)s
    max_grad_norm : float, default=0.25
        Clip the norm of the meta-gradient to this value (the paper's 0.25);
        None does not clip.
    %(validation)s
    %(evaluation)s
    %(runtime)s

    Attributes
    ----------
    module_ : torch.nn.Module
        What is meta-learned: ``module_.body`` and ``module_.head`` (the
        learner's initial parameters, the LSTM's initial cell state) and
        ``module_.update_rule`` (the LSTM).
    %(training_attributes)s
    %(classes_)s
    pool_state_ : dict or None
        The learner trained by the LSTM on the training pool (at most 2,048
        samples of it, spread over the classes), used by :meth:`predict`
        (made at the first prediction and kept).
    %(data_attributes)s

    See Also
    --------
    MAMLClassifier : the same inner loop with plain gradient descent.
    MetaSGDClassifier : learned per-parameter step sizes without a recurrence.

    Notes
    -----
    The tasks of a chunk are trained together: the learner's parameters and
    the LSTM's state carry a task dimension, forward passes run under
    :func:`torch.func.vmap`, and the LSTM updates every coordinate of every
    task in one call. Batch normalisation (sec. 3.4 of the paper) keeps no
    statistics across tasks: the support set is normalised with its own
    batch statistics at every step, and queries with their task's support
    statistics under the trained learner (the paper uses running averages
    collected on the support set for the test set at meta-test time). The
    head starts with the same weights for every class, so one model serves
    any number of ways.

    References
    ----------
    .. [1] S. Ravi and H. Larochelle, "Optimization as a Model for Few-Shot
       Learning", ICLR 2017.
    .. [2] M. Andrychowicz et al., "Learning to learn by gradient descent by
       gradient descent", NeurIPS 2016 (the preprocessing).

    Examples
    --------
    >>> from sklearn_meta import MetaLSTMClassifier
    >>> from sklearn_meta.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X = X.reshape(len(X), -1)
    >>> clf = MetaLSTMClassifier(n_way=3, k_shot=1, n_query=5, inner_steps=3,
    ...                          max_epochs=1, episodes_per_epoch=48,
    ...                          module__hidden_features=16,
    ...                          n_eval_episodes=100, random_state=0)
    >>> clf.fit(X[y < 7], y[y < 7]).score(X[y >= 7], y[y >= 7]) > 0.4
    True
    >>> clf.adapt(X[y >= 8][:10], y[y >= 8][:10]).classes_
    array([8, 9])
    """,
        **{**_GRADIENT_VALUES, "module_default": _DEFAULTS["module_default"]},
        meta_batch_size=8,
        units="classes",
    )

    _parameter_constraints: dict = {
        **BaseGradientLearner._parameter_constraints,
        "inner_lr": [Interval(numbers.Real, 0, 1, closed="neither")],
        "hidden_size": [Interval(numbers.Integral, 0, None, closed="left")],
        "truncate_steps": [None, Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        module=None,
        *,
        n_way=5,
        k_shot=1,
        n_query=15,
        inner_steps=5,
        adapt_steps=None,
        inner_lr=0.1,
        hidden_size=20,
        truncate_steps=None,
        meta_batch_size=8,
        task_chunk_size=8,
        max_epochs=10,
        episodes_per_epoch=100,
        lr=1e-3,
        optimizer=torch.optim.Adam,
        max_grad_norm=0.25,
        train_split=None,
        n_valid_episodes=100,
        n_eval_episodes=600,
        eval_n_way=None,
        eval_k_shot=None,
        eval_n_query=None,
        augment=None,
        num_workers=0,
        distributed="auto",
        device="auto",
        callbacks=None,
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        self.module = module
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.inner_steps = inner_steps
        self.adapt_steps = adapt_steps
        self.inner_lr = inner_lr
        self.hidden_size = hidden_size
        self.truncate_steps = truncate_steps
        self.meta_batch_size = meta_batch_size
        self.task_chunk_size = task_chunk_size
        self.max_epochs = max_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.optimizer = optimizer
        self.max_grad_norm = max_grad_norm
        self.train_split = train_split
        self.n_valid_episodes = n_valid_episodes
        self.n_eval_episodes = n_eval_episodes
        self.eval_n_way = eval_n_way
        self.eval_k_shot = eval_k_shot
        self.eval_n_query = eval_n_query
        self.augment = augment
        self.num_workers = num_workers
        self.distributed = distributed
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self._store_routed_kwargs(kwargs)

    def _wrap_module(self, module: nn.Module, dim: int) -> nn.Module:
        _replace_batch_norm(module)
        return _MetaLSTMModel(
            module, _ClassHead(dim), _MetaLSTMCell(self.hidden_size, self.inner_lr)
        )

    def _meta_params(self) -> dict[str, torch.Tensor]:
        """Return the learner's initial parameters (the LSTM's initial cell state)."""
        params = _named_parameters(self.module_, self.module_.body)
        return {
            name: p for name, p in params.items() if not name.startswith("update_rule.")
        }

    def _task_losses(self, batch: _EpisodeBatch):
        _, out = self._adapt_tasks(
            batch.X_support,
            batch.y_support,
            batch.X_query,
            batch.n_classes,
            self.inner_steps,
            True,
        )
        return self._losses_and_scores(out, batch.y_query)

    def _adapt_tasks(
        self,
        X_s: torch.Tensor,
        y_s: torch.Tensor,
        X_q: torch.Tensor | None,
        n_classes: int,
        steps: int,
        first_order: bool = True,
        batch_size: int | None = None,
    ) -> tuple[dict, torch.Tensor | None]:
        """Train the learner on a batch of support sets with the LSTM.

        ``X_s`` is ``(B, n_support, ...)``, ``X_q`` ``(B, n_query, ...)`` or
        None. Returns the trained parameters (with a leading task dimension)
        and the query outputs ``(B, n_query, n_classes)`` (None without
        queries). The learner's gradients are
        always constants here (the paper's assumption), so ``first_order`` is
        accepted for the shared interface and has no effect; so is
        ``batch_size``, always None here (every step sees the whole support,
        as in the paper).
        """
        track = torch.is_grad_enabled()
        rule = self.module_.update_rule
        meta = self._meta_params()
        if not track:
            meta = {k: v.detach() for k, v in meta.items()}
        start = self._task_params(meta, n_classes)
        names = list(start)
        shapes = [start[k].shape for k in names]
        sizes = [math.prod(s) for s in shapes]
        n_tasks = len(X_s)
        # The cell state: every task's parameters as one row of coordinates.
        theta = torch.cat([start[k].reshape(-1) for k in names]).expand(n_tasks, -1)

        def unflatten(flat: torch.Tensor) -> dict:
            parts = torch.split(flat, sizes, dim=1)
            return {
                k: v.reshape(n_tasks, *s)
                for k, v, s in zip(names, parts, shapes, strict=True)
            }

        def support_loss(params, X, y):
            return self._loss(self._head(params, self._features(params, X, None)), y)

        batched_loss = _map_tasks(support_loss, n_tasks)
        first_tracked = (
            0 if self.truncate_steps is None else steps - self.truncate_steps
        )
        state = rule.initial_state(theta)
        for step in range(steps):
            with torch.enable_grad():
                # Gradients at the current parameters, as constants (sec. 3.2).
                flat = theta.detach().requires_grad_()
                losses = batched_loss(unflatten(flat), X_s, y_s)
                (grad,) = torch.autograd.grad(losses.sum(), flat)
            # Without a graph here, the gates of early steps are constants.
            with torch.set_grad_enabled(track and step >= first_tracked):
                i, f, state = rule.gates(grad, losses.detach(), theta, state)
            theta = f * theta - i * grad  # eq. 2 with c~_t = -grad
        fast = unflatten(theta)
        if X_q is None:
            return fast, None
        out = _map_tasks(self._query_outputs, n_tasks)(fast, X_s, X_q)
        return fast, out
