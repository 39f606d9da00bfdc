"""Reads for the people screens; query counts do not grow with the number of users."""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.core.paginator import Page, Paginator
from django.db.models import Count, Prefetch, Q, QuerySet

from governance.accounts.models import ApiToken, Role, User

PAGE_SIZE = 50
STATUSES = {"active": True, "inactive": False}


@dataclass
class UserFilters:
    q: str = ""
    role: str = ""
    status: str = ""


def user_queryset(filters: UserFilters) -> QuerySet[User]:
    qs = User.objects.annotate(
        owned_count=Count("owned_systems", filter=Q(owned_systems__archived_at__isnull=True), distinct=True),
    ).prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
    if filters.q:
        qs = qs.filter(Q(email__icontains=filters.q) | Q(full_name__icontains=filters.q))
    if filters.role == "none":
        qs = qs.filter(groups__isnull=True)
    elif filters.role in Role.values:
        qs = qs.filter(groups__name=filters.role)
    if filters.status in STATUSES:
        qs = qs.filter(is_active=STATUSES[filters.status])
    return qs.order_by("email")


def user_page(filters: UserFilters, page_number) -> Page:
    return Paginator(user_queryset(filters), PAGE_SIZE).get_page(page_number)


def api_tokens_of(user: User, *, at) -> list[ApiToken]:
    """A person's tokens for My account, newest first, each with `state_now` (an ApiToken.State) as it holds at `at`."""
    tokens = list(ApiToken.objects.filter(user=user).order_by("-created_at", "-pk"))
    for token in tokens:
        token.state_now = token.state(at=at)
    return tokens
