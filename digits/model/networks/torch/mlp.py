"""A multilayer perceptron for generic (tabular) data: Linear, ReLU and dropout per hidden layer, then a Linear
head with one output per class (classification) or one value (regression).

Edit freely. The training loop calls build_model(num_features=..., num_outputs=...) with the dataset's numbers;
the features it gets are normalized by the training split's mean and standard deviation.
"""

from torch import nn

BATCH_SIZE = 64
# The New Model form's "Hidden layer sizes" and "Dropout" are passed to build_model for this network.
HIDDEN_SIZES = (64, 64)
DROPOUT = 0.0


def build_model(
    *, num_features: int, num_outputs: int, hidden_sizes=HIDDEN_SIZES, dropout: float = DROPOUT
) -> nn.Module:
    layers: list[nn.Module] = []
    width = num_features
    for size in hidden_sizes:
        layers += [nn.Linear(width, int(size)), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(float(dropout)))
        width = int(size)
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)
