"""Run by .venv-mlflow's python (not pytest): log a training run with a dataset and register a model version.

usage: python mlflow_log.py TRACKING_URI MODEL_NAME DATASET_NAME COUNT
Registers COUNT new versions (one training run each) and prints one JSON line per version:
{name, version, run_id}.
"""
from __future__ import annotations

import json
import sys

import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def main(uri: str, model_name: str, dataset_name: str, count: str = "1") -> None:
    for _ in range(int(count)):
        train_and_register(uri, model_name, dataset_name)


def train_and_register(uri: str, model_name: str, dataset_name: str) -> None:
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("fraud-training")
    frame = pd.DataFrame({"amount": np.array([10.0, 250.0, 3.5, 999.0]), "country": ["FR", "US", "FR", "NG"],
                          "label": [0, 1, 0, 1]})
    with mlflow.start_run(run_name="train-logreg") as run:
        mlflow.log_input(mlflow.data.from_pandas(frame, name=dataset_name, targets="label"), context="training")
        model = LogisticRegression().fit(frame[["amount"]], frame["label"])
        mlflow.log_param("C", 1.0)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    version = mlflow.register_model(info.model_uri, model_name)
    print(json.dumps({"name": version.name, "version": version.version, "run_id": run.info.run_id}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
