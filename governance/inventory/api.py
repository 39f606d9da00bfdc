from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from governance.accounts import permissions as perms
from governance.accounts.models import User
from governance.inventory import selectors, services
from governance.inventory.forms import product_owners
from governance.inventory.models import AISystem, DataCategory, DesignApproach, LifecycleStage, RiskTier


class EmailRelatedField(serializers.SlugRelatedField):
    """A user given by email address; emails are stored lower-case, so match them that way."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="email", **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data.strip().lower() if isinstance(data, str) else data)


class SystemPagination(LimitOffsetPagination):
    max_limit = 200


class SystemFilterSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=100, trim_whitespace=True)
    stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False, allow_blank=True)
    tier = serializers.ChoiceField(choices=RiskTier.choices, required=False, allow_blank=True)
    archived = serializers.ChoiceField(choices=["0", "1"], required=False, allow_blank=True)


class SystemSerializer(serializers.ModelSerializer):
    business_owner = EmailRelatedField(queryset=User.objects.none())
    technical_owner = EmailRelatedField(queryset=User.objects.none(), required=False, allow_null=True)
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices), required=False, max_length=len(DataCategory)
    )
    slug = serializers.SlugField(max_length=80)
    archived = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = AISystem
        fields = [
            "slug", "name", "purpose", "business_owner", "technical_owner", "business_unit", "lifecycle_stage",
            "risk_tier", "deployment", "design_approach", "uses_generative_ai", "third_party_provider",
            "autonomy", "human_oversight", "data_categories", "executes_generated_code",
            "code_execution_isolation", "rmf_version", "archived", "created_at", "updated_at", "url",
        ]
        read_only_fields = ["rmf_version", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["business_owner"].queryset = product_owners()
        self.fields["technical_owner"].queryset = User.objects.filter(is_active=True)

    def get_archived(self, obj) -> bool:
        return obj.is_archived

    def get_url(self, obj) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(obj.get_absolute_url()) if request else obj.get_absolute_url()

    def validate_slug(self, value):
        if AISystem.objects.filter(slug=value).exclude(pk=getattr(self.instance, "pk", None)).exists():
            raise serializers.ValidationError("This slug is already used by another system.")
        return value

    def validate(self, attrs):
        merged = {**self._current(), **attrs}
        errors = {}
        if merged.get("executes_generated_code") and not (merged.get("code_execution_isolation") or "").strip():
            errors["code_execution_isolation"] = "Describe how generated code is isolated (sandbox, network, secrets)."
        if merged.get("design_approach") == DesignApproach.THIRD_PARTY_API and not (merged.get("third_party_provider") or "").strip():
            errors["third_party_provider"] = "Name the provider of the third-party model API."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in ("executes_generated_code", "code_execution_isolation",
                                                         "design_approach", "third_party_provider")}


def _ownership_change(user, system, data) -> bool:
    for field in AISystem.OWNERSHIP_FIELDS:
        if field in data:
            current = getattr(system, field) if system else None
            if (current.email if current else None) != (data[field].email if data[field] else None):
                return True
    return False


def _save_or_400(save):
    """A concurrent request can take the slug between validation and insert: report it like validation does."""
    try:
        return save()
    except IntegrityError as exc:
        if "slug" in str(exc):
            raise serializers.ValidationError({"slug": ["This slug is already used by another system."]}) from exc
        raise


PAGINATED_SYSTEMS = inline_serializer(name="PaginatedSystemList", fields={
    "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
    "previous": serializers.URLField(allow_null=True), "results": SystemSerializer(many=True),
})


@extend_schema(
    methods=["GET"], operation_id="v1_systems_list", responses=PAGINATED_SYSTEMS,
    parameters=[SystemFilterSerializer, OpenApiParameter("limit", int, description="Page size (at most 200)."),
                OpenApiParameter("offset", int, description="Rows to skip.")],
)
@extend_schema(methods=["POST"], request=SystemSerializer, responses={201: SystemSerializer})
@login_not_required
@api_view(["GET", "POST"])
def system_list(request: Request) -> Response:
    if request.method == "GET":
        params = SystemFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = selectors.SystemFilters(
            q=params.validated_data.get("q", ""), stage=params.validated_data.get("stage", ""),
            tier=params.validated_data.get("tier", ""), archived=params.validated_data.get("archived") == "1",
        )
        paginator = SystemPagination()
        # a unique tie-breaker keeps limit/offset pages from overlapping when names repeat
        queryset = selectors.system_queryset(filters).order_by("name", "pk")
        page = paginator.paginate_queryset(queryset, request)
        return paginator.get_paginated_response(SystemSerializer(page, many=True, context={"request": request}).data)
    if not perms.can_create_system(request.user):
        raise PermissionDenied("Your role cannot register AI systems.")
    serializer = SystemSerializer(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    if not perms.can_edit_ownership(request.user):
        if data["business_owner"] != request.user or data.get("technical_owner"):
            raise PermissionDenied("You may register systems you own; ask a CISO to assign other owners.")
    system = _save_or_400(lambda: services.system_create(actor=request.user, data=data))
    return Response(SystemSerializer(system, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema(request=SystemSerializer, responses=SystemSerializer)
@login_not_required
@api_view(["GET", "PATCH"])
def system_detail(request: Request, slug: str) -> Response:
    system = get_object_or_404(AISystem.objects.select_related("business_owner", "technical_owner"), slug=slug)
    if request.method == "GET":
        return Response(SystemSerializer(system, context={"request": request}).data)
    if not perms.can_edit_system(request.user, system):
        raise PermissionDenied("You may not edit this system.")
    serializer = SystemSerializer(system, data=request.data, partial=True, context={"request": request})
    serializer.is_valid(raise_exception=True)
    if _ownership_change(request.user, system, serializer.validated_data) and not perms.can_edit_ownership(request.user, system):
        raise PermissionDenied("Only a CISO or an admin can change ownership.")
    system = _save_or_400(lambda: services.system_update(actor=request.user, system=system, data=serializer.validated_data))
    return Response(SystemSerializer(system, context={"request": request}).data)
