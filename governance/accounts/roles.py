"""Create the role groups and give them their permissions (idempotent)."""
from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from governance.accounts.permissions import ROLE_PERMISSIONS


def setup_roles(*, strict: bool = True) -> bool:
    wanted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    by_key = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.select_related("content_type")
    }
    missing = wanted - by_key.keys()
    if missing and not strict:
        return False  # called after an earlier app's migrations; a later call completes it
    if missing:
        raise RuntimeError(f"Permissions not found (migrations not applied?): {sorted(missing)}")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([by_key[p] for p in perms])
    return True
