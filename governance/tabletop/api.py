"""GET /api/v1/exercises/<id>/injects: the injects released to the caller, never the facilitator's notes."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from governance.tabletop import permissions as tperms
from governance.tabletop import selectors
from governance.tabletop.models import Exercise, ParticipantRole


class ReleasedInjectSerializer(serializers.Serializer):
    """Deliberately lists its fields: facilitator notes and expected actions are not among them."""

    id = serializers.IntegerField(source="inject.id")
    order = serializers.IntegerField(source="inject.order")
    title = serializers.CharField(source="inject.title")
    channel = serializers.CharField(source="inject.channel")
    audience = serializers.CharField(source="inject.audience")
    body = serializers.CharField(source="inject.body")
    attachments = serializers.JSONField(source="inject.attachments")
    questions = serializers.JSONField(source="inject.questions")
    released_at = serializers.DateTimeField()
    clock_minute = serializers.FloatField()


@extend_schema(responses=inline_serializer("ExerciseInjects", {
    "exercise": serializers.IntegerField(), "state": serializers.CharField(), "clock_minutes": serializers.FloatField(),
    "role": serializers.CharField(), "function": serializers.CharField(),
    "injects": ReleasedInjectSerializer(many=True)}))
@api_view(["GET"])
def exercise_injects(request: Request, pk: int) -> Response:
    exercise = get_object_or_404(Exercise, pk=pk)
    participant = tperms.participation(request.user, exercise)
    if participant is None and not tperms.can_run(request.user, exercise):
        raise PermissionDenied("You are not taking part in this exercise.")
    role = participant.role if participant else ParticipantRole.FACILITATOR
    releases = selectors.releases_for(exercise, participant or _Everything())  # players: their function's only
    return Response({
        "exercise": exercise.pk, "state": exercise.state, "clock_minutes": round(exercise.clock_minutes(), 2),
        "role": role, "function": participant.function if participant else "",
        "injects": ReleasedInjectSerializer(releases, many=True).data,
    })


class _Everything:
    role = ParticipantRole.FACILITATOR
    function = ""
