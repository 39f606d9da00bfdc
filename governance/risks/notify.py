"""E-mail notifications for sign-offs (the console backend in the embedded default)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

log = logging.getLogger(__name__)


def _send(subject: str, body: str, recipients) -> None:
    to = sorted({r.email for r in recipients if r is not None and r.email})
    if not to:
        return
    try:
        send_mail(f"[Rampart] {subject}", body, settings.DEFAULT_FROM_EMAIL, to, fail_silently=False)
    except Exception as exc:  # mail trouble must not undo a decision; the inbox still shows it
        log.warning("Could not send '%s' to %s: %s", subject, to, exc)


def _link(risk) -> str:
    return f"{settings.BASE_URL.rstrip('/')}{risk.get_absolute_url()}"


def decision_requested(decision) -> None:
    risk = decision.risk
    _send(f"Sign-off requested: {risk.ref} {risk.title}",
          f"{decision.requested_by} asks you to decide: {decision.get_kind_display()}.\n\n"
          f"System: {risk.system.name}\nResidual level: {risk.residual_level or 'not rated'}\n\n{decision.request_note}\n\n{_link(risk)}",
          [risk.system.business_owner])


def decision_made(decision) -> None:
    risk = decision.risk
    _send(f"{decision.get_status_display()}: {risk.ref} {risk.title}",
          f"{decision.decided_by} decided: {decision.get_status_display()} ({decision.get_kind_display()}).\n"
          f"Justification: {decision.justification}\n"
          + (f"Expires: {decision.expires_at:%Y-%m-%d}\n" if decision.expires_at else "") + f"\n{_link(risk)}",
          [decision.requested_by, risk.owner])


def acceptance_expiring(decision) -> None:
    risk = decision.risk
    _send(f"Acceptance expires {decision.expires_at:%Y-%m-%d}: {risk.ref} {risk.title}",
          f"The acceptance of {risk.ref} expires on {decision.expires_at:%Y-%m-%d}. Review it before then.\n\n{_link(risk)}",
          [risk.system.business_owner, risk.owner])


def acceptance_expired(decision) -> None:
    risk = decision.risk
    _send(f"Acceptance expired, risk reopened: {risk.ref} {risk.title}",
          f"The acceptance of {risk.ref} expired on {decision.expires_at:%Y-%m-%d}; the risk is open again and the "
          f"release gate of {risk.system.name} counts it.\n\n{_link(risk)}",
          [risk.system.business_owner, risk.owner])
