"""Helpers for the inventory view tests."""
from __future__ import annotations

import pytest

from governance.audit.models import AuditEvent
from governance.inventory import services
from governance.inventory.models import AIModel, AISystem, Dataset
from tests.conftest import system_data


def form_data(system: AISystem | None = None, **overrides) -> dict:
    """A valid POST for the system form, optionally starting from an existing system's values."""
    data = {
        "name": "Claims Triage", "slug": "claims-triage", "purpose": "Routes insurance claims.",
        "business_owner": "", "technical_owner": "", "business_unit": "Claims",
        "lifecycle_stage": "build", "risk_tier": "medium", "deployment": "internal",
        "design_approach": "classical_ml", "third_party_provider": "", "autonomy": "human_in_loop",
        "human_oversight": "", "data_categories": ["pii"], "code_execution_isolation": "",
    }
    if system is not None:
        data.update({
            "name": system.name, "slug": system.slug, "purpose": system.purpose,
            "business_owner": system.business_owner_id, "technical_owner": system.technical_owner_id or "",
            "business_unit": system.business_unit, "lifecycle_stage": system.lifecycle_stage,
            "risk_tier": system.risk_tier, "deployment": system.deployment,
            "design_approach": system.design_approach, "third_party_provider": system.third_party_provider,
            "autonomy": system.autonomy, "human_oversight": system.human_oversight,
            "data_categories": list(system.data_categories),
            "code_execution_isolation": system.code_execution_isolation,
        })
        if system.uses_generative_ai:
            data["uses_generative_ai"] = "on"
        if system.executes_generated_code:
            data["executes_generated_code"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_system(actor, owner, n: int, **overrides) -> AISystem:
    return services.system_create(actor=actor, data=system_data(owner, name=f"System {n:03d}", slug=f"system-{n:03d}",
                                                                  **overrides))


class Counts:
    """Row counts that must not move when a write is refused."""

    def __init__(self):
        self.value = self.read()

    @staticmethod
    def read():
        return (AISystem.objects.count(), AIModel.objects.count(), Dataset.objects.count(), AuditEvent.objects.count())

    def unchanged(self) -> bool:
        return self.read() == self.value


@pytest.fixture
def counts():
    return Counts
