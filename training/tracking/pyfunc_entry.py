"""MLflow "models from code" entry point for the decision model.

MLflow copies this file into the logged model and runs it when the model is loaded
(``mlflow.pyfunc.load_model``); it is not imported by smartretry itself. Logging the
model as code instead of a pickled object means no pickle of our classes is stored.
"""

from mlflow.models import set_model

from training.tracking.pyfunc import DecisionModel

set_model(DecisionModel())
