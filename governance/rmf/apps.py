from django.apps import AppConfig


class RmfConfig(AppConfig):
    name = "governance.rmf"
    label = "rmf"
