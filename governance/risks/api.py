from __future__ import annotations

from datetime import datetime

from django.contrib.auth.decorators import login_not_required
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from governance.accounts import permissions as perms
from governance.api_schema import ERROR_RESPONSE as ERROR
from governance.accounts.models import User
from governance.findings.models import Finding
from governance.inventory.models import AISystem
from governance.risks import gate, selectors, services
from governance.risks.matrix import get_matrix
from governance.risks.models import Decision, ReleaseSignoff, Risk, RiskSource, Treatment
from governance.rmf.models import ReferenceItem, RmfSubcategory


class RiskSerializer(serializers.ModelSerializer):
    system = serializers.SlugRelatedField(slug_field="slug", queryset=AISystem.objects.active())
    owner = serializers.SlugRelatedField(slug_field="email", queryset=User.objects.filter(is_active=True), required=False, allow_null=True)
    rmf_subcategories = serializers.SlugRelatedField(slug_field="ident", many=True, required=False,
                                                     queryset=RmfSubcategory.objects.filter(version="1.0"))
    references = serializers.SlugRelatedField(slug_field="ident", many=True, required=False, queryset=ReferenceItem.objects.all())
    findings = serializers.PrimaryKeyRelatedField(many=True, required=False, queryset=Finding.objects.all())
    source = serializers.ChoiceField(choices=RiskSource.choices, required=False)
    treatment = serializers.ChoiceField(choices=Treatment.choices, required=False, allow_blank=True)
    status = serializers.SerializerMethodField(help_text="What holds now (RiskQuerySet.with_standing): open, "
                                               "awaiting_decision, accepted (an acceptance in force), rejected, closed.")
    accepted_until = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Risk
        fields = [
            "ref", "title", "description", "system", "owner", "due_date", "source", "source_ref",
            "inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact",
            "inherent_level", "residual_level", "treatment", "treatment_plan", "status", "accepted_until",
            "rmf_subcategories", "references", "findings", "created_at", "updated_at", "url",
        ]
        read_only_fields = ["ref", "inherent_level", "residual_level", "status", "created_at", "updated_at"]

    def get_status(self, obj) -> str:
        return obj.status_now

    def get_accepted_until(self, obj) -> datetime | None:
        if not hasattr(obj, "accepted_until"):
            obj.accepted_until = (Decision.objects.in_force(timezone.now()).filter(risk=obj)
                                  .values_list("expires_at", flat=True).first())
        return obj.accepted_until

    def get_url(self, obj) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(obj.get_absolute_url()) if request else obj.get_absolute_url()

    def validate(self, attrs):
        rows, cols = get_matrix().size
        errors = {}
        for name, top in (("inherent_likelihood", rows), ("residual_likelihood", rows),
                          ("inherent_impact", cols), ("residual_impact", cols)):
            value = attrs.get(name)
            if value is not None and not 1 <= value <= top:
                errors[name] = f"Must be between 1 and {top} on the current matrix (empty means not rated)."
        for side in ("inherent", "residual"):  # as the form: both or neither, else a half-rated risk looks unrated
            lk, im = f"{side}_likelihood", f"{side}_impact"
            if lk in errors or im in errors:
                continue
            merged = {n: attrs[n] if n in attrs else getattr(self.instance, n, None) for n in (lk, im)}
            if (merged[lk] is None) != (merged[im] is None):
                missing = im if merged[im] is None else lk
                errors[missing] = f"Rate both likelihood and impact of the {side} risk, or neither (not rated)."
        if errors:
            raise ValidationError(errors)
        return attrs


def _split(data: dict) -> tuple[dict, dict]:
    relations = {k: data.pop(k) for k in ("rmf_subcategories", "references", "findings") if k in data}
    return data, relations


RiskPage = inline_serializer("RiskPage", {
    "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
    "previous": serializers.URLField(allow_null=True), "results": RiskSerializer(many=True)})


@extend_schema(methods=["GET"], responses=RiskPage, parameters=[
    OpenApiParameter(name, str, description=text) for name, text in (
        ("system", "a system's slug"), ("level", "a residual level key, or 'unrated'"),
        ("min_level", "this residual level or above"), ("status", "'all', or a status as shown"),
        ("awaiting", "'1': with a sign-off request nobody answered"), ("unaccepted", "'1': no acceptance in force"),
        ("expiring", "days: with an acceptance in force ending within them"), ("overdue", "'1'"),
        ("archived", "'1': also risks of archived systems"), ("q", "text in the title, description or ref"))] + [
    OpenApiParameter("limit", int), OpenApiParameter("offset", int)])
@extend_schema(methods=["POST"], request=RiskSerializer, responses={201: RiskSerializer})
@login_not_required
@api_view(["GET", "POST"])
def risk_list(request: Request) -> Response:
    if request.method == "GET":
        from governance.risks.views import register_filters

        matrix = SimpleLazyObject(get_matrix)  # read only if a level filter asks for it
        qs = selectors.register_queryset(register_filters(request.query_params, matrix), matrix).prefetch_related(
            "rmf_subcategories", "references", "findings")
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request)
        return paginator.get_paginated_response(RiskSerializer(page, many=True, context={"request": request}).data)
    if not perms.can_create_risks(request.user):
        raise PermissionDenied("Your role cannot create risks.")
    serializer = RiskSerializer(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    data, relations = _split(dict(serializer.validated_data))
    system = data.pop("system")
    if not perms.can_manage_risks(request.user, system):
        raise PermissionDenied("You may not add risks to this system.")
    try:
        risk = services.risk_create(actor=request.user, system=system, data=data, relations=relations)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return Response(RiskSerializer(risk, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema(request=RiskSerializer, responses={200: RiskSerializer, 409: ERROR})
@login_not_required
@api_view(["GET", "PATCH"])
def risk_detail(request: Request, ref: str) -> Response:
    risk = get_object_or_404(Risk.objects.select_related("system", "owner"), ref=ref)
    if request.method == "GET":
        return Response(RiskSerializer(risk, context={"request": request}).data)
    if not perms.can_manage_risks(request.user, risk.system):
        raise PermissionDenied("You may not edit risks of this system.")
    serializer = RiskSerializer(risk, data=request.data, partial=True, context={"request": request})
    serializer.is_valid(raise_exception=True)
    data, relations = _split(dict(serializer.validated_data))
    if "system" in data and data.pop("system") != risk.system:
        raise ValidationError({"system": "A risk cannot move to another system; create a new one."})
    try:
        risk = services.risk_update(actor=request.user, risk=risk, data=data, relations=relations)
    except services.RiskClosed as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return Response(RiskSerializer(risk, context={"request": request}).data)


class DecisionInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accept", "reject"])
    justification = serializers.CharField(max_length=4000)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=Decision.Kind.choices, default=Decision.Kind.RESIDUAL_RISK)


@extend_schema(request=DecisionInput, responses={201: inline_serializer("DecisionOut", {
    "status": serializers.CharField(), "risk_status": serializers.CharField(),
    "expires_at": serializers.DateTimeField(allow_null=True), "snapshot_sha256": serializers.CharField()}),
    409: ERROR})
@login_not_required
@api_view(["POST"])
def risk_decision(request: Request, ref: str) -> Response:
    risk = get_object_or_404(Risk.objects.select_related("system"), ref=ref)
    if not perms.can_decide(request.user, risk.system):
        raise PermissionDenied("Only the product owner of this system or a CISO can decide.")
    body = DecisionInput(data=request.data)
    body.is_valid(raise_exception=True)
    v = body.validated_data
    try:
        decision = services.decision_decide(actor=request.user, risk=risk, accept=v["decision"] == "accept",
                                            justification=v["justification"], expires_at=v.get("expires_at"), kind=v["kind"])
    except services.RiskClosed as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return Response({"status": decision.status, "risk_status": decision.risk.status_now, "expires_at": decision.expires_at,
                     "snapshot_sha256": decision.snapshot_sha256}, status=status.HTTP_201_CREATED)


GateReasons = inline_serializer("GateReason", {
    "code": serializers.CharField(), "message": serializers.CharField(), "action": serializers.CharField(),
    "refs": serializers.ListField(child=serializers.CharField()), "count": serializers.IntegerField(),
    "url": serializers.CharField()}, many=True)
Gate = inline_serializer("Gate", {
    "system": serializers.CharField(), "tier": serializers.CharField(),
    "decision": serializers.ChoiceField(["go", "no-go"]), "go": serializers.BooleanField(),
    "reasons": GateReasons, "evaluated_at": serializers.DateTimeField(),
    "counts": serializers.DictField(child=serializers.IntegerField()), "blocking_items": serializers.IntegerField()})


@extend_schema(responses={200: Gate, 409: Gate}, parameters=[OpenApiParameter(
    "release", str, description="a release's name: the product owner's go sign-off of it is required too")])
@login_not_required
@api_view(["GET"])
def system_gate(request: Request, slug: str) -> Response:
    """200 with decision "go", or 409 with decision "no-go" and every reason: `curl --fail` fails the CI job. With
    ?release=v2.3.0 a release also needs its product owner's go sign-off (SIGNOFF_MISSING, SIGNOFF_NO_GO)."""
    system = get_object_or_404(AISystem.objects.select_related("business_owner"), slug=slug)
    result = gate.evaluate(system, release=request.query_params.get("release", "").strip()[:100])
    return Response(result.as_dict(), status=status.HTTP_200_OK if result.decision == "go" else status.HTTP_409_CONFLICT)


class SignoffSerializer(serializers.ModelSerializer):
    system = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    signed_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    gate_decision = serializers.CharField(read_only=True, help_text="What the gate said when this was signed.")
    url = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseSignoff
        fields = ["id", "system", "release", "verdict", "justification", "signed_by", "signed_at", "gate_decision",
                  "gate", "gate_sha256", "url"]
        read_only_fields = ["id", "signed_at", "gate", "gate_sha256"]

    def get_url(self, signoff) -> str:
        return self.context["request"].build_absolute_uri(signoff.get_absolute_url())


@extend_schema(methods=["GET"], responses=SignoffSerializer(many=True), parameters=[
    OpenApiParameter("release", str, description="only this release's sign-offs"),
    OpenApiParameter("limit", int), OpenApiParameter("offset", int)])
@extend_schema(methods=["POST"], request=SignoffSerializer, responses={201: SignoffSerializer})
@login_not_required
@api_view(["GET", "POST"])
def system_signoffs(request: Request, slug: str) -> Response:
    """GET: the system's release sign-offs, newest first. POST: record one (the system's product owner or a CISO);
    a go is refused (400) while the gate says no-go. The gate as it stood is frozen in the sign-off."""
    system = get_object_or_404(AISystem, slug=slug)
    if request.method == "GET":
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.release_signoffs(system, request.query_params.get("release", "")),
                                           request)
        return paginator.get_paginated_response(SignoffSerializer(page, many=True, context={"request": request}).data)
    if not perms.can_decide(request.user, system):
        raise PermissionDenied("Only the product owner of this system or a CISO signs its releases off.")
    body = SignoffSerializer(data=request.data, context={"request": request})
    body.is_valid(raise_exception=True)
    try:
        signoff = services.release_signoff_record(actor=request.user, system=system, **{
            k: body.validated_data[k] for k in ("release", "verdict", "justification")})
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return Response(SignoffSerializer(signoff, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema(responses={200: SignoffSerializer}, parameters=[
    OpenApiParameter("release", str, description="the latest sign-off of this release (of any, without)")])
@login_not_required
@api_view(["GET"])
def system_signoff_latest(request: Request, slug: str) -> Response:
    """The sign-off in force: 404 when none is recorded."""
    system = get_object_or_404(AISystem, slug=slug)
    signoff = ReleaseSignoff.latest_of(system, request.query_params.get("release", "").strip())
    if signoff is None:
        raise NotFound("No release sign-off is recorded for this system" + (
            f" and release {request.query_params['release']}." if request.query_params.get("release") else "."))
    return Response(SignoffSerializer(signoff, context={"request": request}).data)
