import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")

app = Celery("rampart")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["worker"], related_name="tasks")

from worker.liveness import BrokerConnected  # noqa: E402  (importing it connects the heartbeat to the signals)

app.steps["consumer"].add(BrokerConnected)
