from django.apps import AppConfig


class RisksConfig(AppConfig):
    name = "governance.risks"
    label = "risks"
