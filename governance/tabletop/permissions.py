"""Who may do what in an exercise. Every view and API endpoint asks these; templates only hide buttons.

The role permission `tabletop.run_exercises` (Facilitator, CISO, Admin) lets someone plan exercises; running one
also takes being its facilitator (or a CISO). Players and observers are participants of that one exercise.
"""
from __future__ import annotations

from governance.accounts.models import Role
from governance.tabletop.models import Exercise, Participant, ParticipantRole


def can_plan(user) -> bool:
    return user.has_perm("tabletop.run_exercises")


def can_run(user, exercise: Exercise) -> bool:
    return can_plan(user) and (exercise.facilitator_id == user.id or user.has_role(Role.CISO))


def participation(user, exercise: Exercise) -> Participant | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Participant.objects.filter(exercise=exercise, user=user).first()


def can_play(participant: Participant | None) -> bool:
    return participant is not None and participant.role == ParticipantRole.PLAYER


def can_observe(participant: Participant | None) -> bool:
    return participant is not None and participant.role in (ParticipantRole.OBSERVER, ParticipantRole.FACILITATOR)


def can_view_report(user, exercise: Exercise, participant: Participant | None) -> bool:
    """The facilitator and CISOs always; participants once play has stopped."""
    return can_run(user, exercise) or (participant is not None and exercise.is_over)
