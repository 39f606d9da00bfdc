from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
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
from governance.inventory.models import AISystem, DataCategory, DesignApproach


class SystemSerializer(serializers.ModelSerializer):
    business_owner = serializers.SlugRelatedField(slug_field="email", queryset=User.objects.none())
    technical_owner = serializers.SlugRelatedField(
        slug_field="email", queryset=User.objects.none(), required=False, allow_null=True
    )
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


@extend_schema(request=SystemSerializer, responses=SystemSerializer(many=True))
@login_not_required
@api_view(["GET", "POST"])
def system_list(request: Request) -> Response:
    if request.method == "GET":
        filters = selectors.SystemFilters(
            q=request.query_params.get("q", "")[:100], stage=request.query_params.get("stage", ""),
            tier=request.query_params.get("tier", ""), archived=request.query_params.get("archived") == "1",
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.system_queryset(filters), request)
        return paginator.get_paginated_response(SystemSerializer(page, many=True, context={"request": request}).data)
    if not perms.can_create_system(request.user):
        raise PermissionDenied("Your role cannot register AI systems.")
    serializer = SystemSerializer(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    if not perms.can_edit_ownership(request.user):
        if data["business_owner"] != request.user or data.get("technical_owner"):
            raise PermissionDenied("You may register systems you own; ask a CISO to assign other owners.")
    system = services.system_create(actor=request.user, data=data)
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
    system = services.system_update(actor=request.user, system=system, data=serializer.validated_data)
    return Response(SystemSerializer(system, context={"request": request}).data)
