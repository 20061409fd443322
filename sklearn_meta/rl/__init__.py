"""Meta-reinforcement learning: MAML with policy gradients on gymnasium task families.

A task is a :class:`gymnasium.Env`; a task sampler is a callable returning
an environment for a random task. :class:`MAMLPolicy` meta-learns a policy
over a family so that a few policy-gradient steps on a few episodes of a new
environment give a good policy (Finn et al., 2017). Needs the ``rl`` extra
(``pip install sklearn-meta[rl]``, which installs gymnasium).
"""

try:
    import gymnasium  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sklearn_meta.rl needs gymnasium. Install it with "
        "`pip install sklearn-meta[rl]` (or `pip install gymnasium`)."
    ) from exc

from ._adapted import AdaptedPolicy
from ._envs import (
    BernoulliBanditEnv,
    BernoulliBanditTasks,
    BernoulliBanditVectorEnv,
    CartPoleTaskEnv,
    CartPoleTasks,
    CartPoleVectorEnv,
    PointNavigationEnv,
    PointNavigationTasks,
    PointNavigationVectorEnv,
    make_vector_env,
)
from ._maml import MAMLPolicy

__all__ = [
    "AdaptedPolicy",
    "BernoulliBanditEnv",
    "BernoulliBanditTasks",
    "BernoulliBanditVectorEnv",
    "CartPoleTaskEnv",
    "CartPoleTasks",
    "CartPoleVectorEnv",
    "MAMLPolicy",
    "PointNavigationEnv",
    "PointNavigationTasks",
    "PointNavigationVectorEnv",
    "make_vector_env",
]
