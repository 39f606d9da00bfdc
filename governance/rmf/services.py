from __future__ import annotations

from django.db import transaction

from governance.accounts.models import User
from governance.audit.services import audit_record, snapshot
from governance.rmf.models import RmfAssessment

EDITABLE = ("status", "owner", "evidence_notes", "evidence_links", "last_reviewed")


@transaction.atomic
def assessment_update(*, actor: User, assessment: RmfAssessment, data: dict) -> RmfAssessment:
    assessment = RmfAssessment.objects.select_for_update().select_related("subcategory", "system").get(pk=assessment.pk)
    before = snapshot(assessment, list(EDITABLE))
    for name in EDITABLE:
        if name in data:
            setattr(assessment, name, data[name])
    assessment.save()
    after = snapshot(assessment, list(EDITABLE))
    if before != after:
        audit_record(
            actor=actor, action="rmf.assess", obj=assessment, system=assessment.system,
            object_repr=f"{assessment.system.name} · {assessment.subcategory.ident}",
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return assessment
