"""What an audit event's action code means, in words for the people reading the trail (posture's latest changes,
the audit page). The code stays the record; a code missing here is shown as it is."""
from __future__ import annotations

ACTION_LABELS = {
    "decision.request": "sign-off requested", "decision.accept": "risk accepted", "decision.reject": "acceptance refused",
    "decision.withdraw": "sign-off request withdrawn", "decision.expire": "acceptance expired",
    "release.signoff": "release signed off",
    "risk.create": "risk opened", "risk.update": "risk edited", "risk.close": "risk closed",
    "risk.link_findings": "findings linked to a risk",
    "mitigation.add": "mitigation added", "mitigation.status": "mitigation status changed",
    "risk_matrix.update": "risk matrix changed", "gate_policy.update": "release gate policy changed",
    "finding.assign": "finding assigned", "finding.transition": "finding status changed",
    "finding.bulk": "findings triaged in bulk", "finding.comment": "finding commented", "finding.route": "finding routed",
    "mapping_rule.create": "mapping rule added", "mapping_rule.delete": "mapping rule removed",
    "system.create": "AI system registered", "system.update": "AI system edited", "system.archive": "AI system archived",
    "system.restore": "AI system restored", "system.tier_lowered": "risk tier lowered",
    "model.register": "model registered", "model.remove": "model removed",
    "dataset.register": "dataset registered", "dataset.remove": "dataset removed",
    "rmf.assess": "RMF assessment recorded",
    "exercise.create": "exercise planned", "exercise.update": "exercise edited", "exercise.start": "exercise started",
    "exercise.pause": "exercise paused", "exercise.resume": "exercise resumed", "exercise.hot_wash": "hot wash started",
    "exercise.complete": "exercise completed", "exercise.inject_release": "inject released",
    "exercise.response": "exercise response", "exercise.decision": "exercise decision",
    "exercise.observation": "observation noted", "exercise.score": "exercise scored", "exercise.hotwash": "hot wash noted",
    "exercise.participant_add": "participant added", "exercise.participant_change": "participant role changed",
    "exercise.participant_remove": "participant removed", "exercise.improvement_add": "improvement noted",
    "exercise.improvement_promote": "improvement promoted", "exercise.improvement_status": "improvement status changed",
    "scenario.import": "scenario imported", "scenario.replace": "scenario replaced",
    "lineage.connector.create": "lineage connector added", "lineage.connector.update": "lineage connector edited",
    "lineage.connector.delete": "lineage connector removed",
    "user.create": "person added", "user.update": "person edited", "user.deactivate": "person deactivated",
    "user.password_change": "password changed", "user.password_reset": "password reset",
    "user.password_change_required": "password change required",
    "two_factor.enable": "two-factor sign-in turned on", "two_factor.disable": "two-factor sign-in turned off",
    "two_factor.reset": "two-factor sign-in reset", "two_factor.recovery_codes": "recovery codes issued",
    "two_factor.recovery_code_used": "recovery code used", "two_factor.code_failed": "wrong sign-in code",
    "api_token.create": "API token created", "api_token.revoke": "API token revoked", "api_token.rotate": "API token rotated",
    "saved_view.save": "saved view stored", "saved_view.delete": "saved view removed",
}


def action_label(code: str) -> str:
    return ACTION_LABELS.get(code, code)
