#!/bin/sh
# The MLflow sync test starts a real MLflow tracking server. mlflow pins gunicorn<27 (we run 27), so it
# lives in its own virtualenv, .venv-mlflow, beside the project's .venv. Idempotent.
set -e
cd "$(dirname "$0")/.."
VENV=.venv-mlflow
if [ -x "$VENV/bin/mlflow" ] && [ "$VENV/.installed" -nt requirements-mlflow.txt ]; then exit 0; fi
echo "Installing MLflow into $VENV for the lineage tests…"
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r requirements-mlflow.txt
touch "$VENV/.installed"
