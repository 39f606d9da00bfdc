"""Pause and resume shift timed injects: the exercise clock excludes paused time (controlled clock, no sleeping)."""
from __future__ import annotations

import pytest

from governance.tabletop import services
from governance.tabletop.models import InjectRelease
from tests.tabletop.conftest import at


def released(exercise) -> list[int]:
    return list(InjectRelease.objects.filter(exercise=exercise).order_by("inject__order").values_list("inject__order", flat=True))


def test_pause_and_resume_shift_timed_injects(exercise, facilitator):
    # offsets in the pickle scenario: 0, 10, 20, 35, by hand
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    services.exercises_release_due(now=at(0))
    assert released(exercise) == [1]
    services.exercise_transition(actor=facilitator, exercise=exercise, action="pause", now=at(5))
    assert services.exercises_release_due(now=at(30)) == 0  # paused: nothing moves, however long
    exercise.refresh_from_db()
    assert exercise.clock_minutes(at(30)) == pytest.approx(5)
    services.exercise_transition(actor=facilitator, exercise=exercise, action="resume", now=at(25))  # 20 min paused
    exercise.refresh_from_db()
    assert exercise.paused_seconds == pytest.approx(20 * 60)
    assert services.exercises_release_due(now=at(29.9)) == 0  # clock 9.9: inject 2 (T+10) not yet
    assert services.exercises_release_due(now=at(30)) == 1  # clock 10
    assert released(exercise) == [1, 2]
    release = InjectRelease.objects.get(exercise=exercise, inject__order=2)
    assert release.clock_minute == pytest.approx(10) and release.released_at == at(30)
    # a second pause, then the T+20 inject comes 20 + 5 + 3 wall minutes after the start
    services.exercise_transition(actor=facilitator, exercise=exercise, action="pause", now=at(32))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="resume", now=at(35))
    assert services.exercises_release_due(now=at(42.9)) == 0
    assert services.exercises_release_due(now=at(43)) == 1
    assert released(exercise) == [1, 2, 3]
    # the manual inject (no offset) is never released by the clock
    assert services.exercises_release_due(now=at(500)) == 1  # only the T+35 one
    assert released(exercise) == [1, 2, 3, 4]


def test_release_is_idempotent_and_manual_release_works(exercise, facilitator):
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    manual = exercise.scenario.injects.get(offset_minutes__isnull=True)
    first = services.inject_release(actor=facilitator, exercise=exercise, inject=manual, now=at(1))
    again = services.inject_release(actor=facilitator, exercise=exercise, inject=manual, now=at(2))
    assert first.pk == again.pk and first.released_by == facilitator
    assert services.exercises_release_due(now=at(0.5)) == 1 and services.exercises_release_due(now=at(0.6)) == 0


def test_hot_wash_during_a_pause_freezes_the_clock(exercise, facilitator):
    services.exercise_transition(actor=facilitator, exercise=exercise, action="start", now=at(0))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="pause", now=at(10))
    services.exercise_transition(actor=facilitator, exercise=exercise, action="hot_wash", now=at(40))
    exercise.refresh_from_db()
    assert exercise.clock_minutes(at(90)) == pytest.approx(10)
    assert services.exercises_release_due(now=at(90)) == 0


def test_beat_task_releases(exercise, facilitator, settings):
    from worker.tasks import exercises_release_due

    services.exercise_transition(actor=facilitator, exercise=exercise, action="start")
    assert exercises_release_due.apply().get() == 1
    assert released(exercise) == [1]
    assert "exercises-release-due" in settings.CELERY_BEAT_SCHEDULE
