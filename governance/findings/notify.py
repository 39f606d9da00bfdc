"""E-mail about findings (sent as the sign-off notices are: after commit, by Django's mail; a failure is logged)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

log = logging.getLogger(__name__)


def mentioned(comment, people) -> None:
    finding = comment.finding
    to = sorted({p.email for p in people if p.email})
    if not to:
        return
    title = " ".join(finding.title.split())[:120]  # scanner text: one line in a subject
    link = f"{settings.BASE_URL.rstrip('/')}{finding.get_absolute_url()}"
    try:
        send_mail(f"[Rampart] {comment.author} mentioned you on finding #{finding.pk}: {title}",
                  f"{comment.author} wrote on finding #{finding.pk} “{title}”:\n\n{comment.body}\n\n{link}",
                  settings.DEFAULT_FROM_EMAIL, to, fail_silently=False)
    except Exception as exc:  # mail trouble must not undo the comment; it is on the finding's page
        log.warning("Could not send the mention of comment %s to %s: %s", comment.pk, to, exc)
