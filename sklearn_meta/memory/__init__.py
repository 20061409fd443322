"""Model-based meta-learners: a learned update rule or an external memory.

The Meta-Learner LSTM trains a learner network with a learned, coordinate-wise
LSTM optimiser; the memory-augmented neural network binds examples to labels
in an external memory it reads by content.
"""

from ._mann import MANNClassifier
from ._meta_lstm import MetaLSTMClassifier

__all__ = ["MANNClassifier", "MetaLSTMClassifier"]
