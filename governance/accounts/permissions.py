"""Who may do what. Roles are groups holding Django permissions; ownership rules live here.

Every view and API endpoint asks these functions; the templates only use them to hide buttons.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied

from governance.accounts.models import Role


class Denied(PermissionDenied):
    """A refusal that names who can help (the 403 page lists them); without names, the page lists the people
    who manage access (admins) and the CISOs."""

    def __init__(self, reason: str, *, who_can_help=()):
        super().__init__(reason)
        self.who_can_help = [user for user in who_can_help if user is not None]

# Role -> permission codenames ("app_label.codename"). Applied by `setup_roles()`.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.CISO: [
        "inventory.add_aisystem", "inventory.change_any_system", "inventory.change_ownership",
        "inventory.archive_any_system", "rmf.assess_any_system", "risks.decide_any",
        "audit.view_auditevent", "findings.triage_findings", "risks.manage_any_risks",
        "tabletop.run_exercises", "lineage.send_lineage", "lineage.manage_connectors",
    ],
    Role.PRODUCT_OWNER: [
        "inventory.add_aisystem", "inventory.change_own_system", "inventory.archive_own_system",
        "rmf.assess_own_system", "risks.decide_own", "risks.manage_own_risks",
    ],
    Role.ENGINEER: [
        "inventory.change_technical_fields", "lineage.send_lineage", "rmf.assess_any_system", "findings.triage_findings",
        "risks.manage_any_risks",
    ],
    Role.FACILITATOR: ["tabletop.run_exercises"],
    Role.ADMIN: [
        "inventory.add_aisystem", "inventory.change_any_system", "inventory.change_ownership",
        "inventory.archive_any_system", "rmf.assess_any_system", "audit.view_auditevent",
        "findings.triage_findings", "risks.manage_any_risks", "tabletop.run_exercises",
        "accounts.manage_users", "lineage.send_lineage", "lineage.manage_connectors",
    ],
}


def _owns(user, system) -> bool:
    return system is not None and system.business_owner_id == user.id


def can_create_system(user) -> bool:
    return user.has_perm("inventory.add_aisystem")


def can_edit_system(user, system) -> bool:
    """May change the descriptive and technical fields of this system."""
    if system.is_archived:
        return False
    return (
        user.has_perm("inventory.change_any_system")
        or user.has_perm("inventory.change_technical_fields")
        or (user.has_perm("inventory.change_own_system") and _owns(user, system))
    )


def can_lower_tier(user, system) -> bool:
    """Lowering a system's risk tier loosens its release gate: the system's product owner, a CISO or an admin only."""
    return (user.has_perm("risks.decide_any") or user.has_perm("accounts.manage_users")
            or (user.has_perm("risks.decide_own") and _owns(user, system)))


def can_edit_ownership(user, system=None) -> bool:
    """Ownership (business and technical owner) is for CISOs and admins only."""
    return user.has_perm("inventory.change_ownership")


def can_archive_system(user, system) -> bool:
    return user.has_perm("inventory.archive_any_system") or (
        user.has_perm("inventory.archive_own_system") and _owns(user, system)
    )


def can_assess(user, system) -> bool:
    """May edit the NIST AI RMF profile of this system."""
    if system.is_archived:
        return False
    return user.has_perm("rmf.assess_any_system") or (
        user.has_perm("rmf.assess_own_system") and _owns(user, system)
    )


def can_decide(user, system) -> bool:
    """A product owner decides only for the systems they own; a CISO for any."""
    return user.has_perm("risks.decide_any") or (user.has_perm("risks.decide_own") and _owns(user, system))


def can_view_audit(user) -> bool:
    return user.has_perm("audit.view_auditevent")


def can_verify_audit(user) -> bool:
    """Running the full check of the trail (every event's MAC) from the audit page: admins and CISOs."""
    return can_view_audit(user) and user.has_role(Role.ADMIN, Role.CISO)


def can_manage_users(user) -> bool:
    return user.has_perm("accounts.manage_users")


def can_triage(user) -> bool:
    return user.has_perm("findings.triage_findings")


def can_triage_system(user, system) -> bool:
    """Engineers, CISOs and admins triage any finding; a product owner those of the systems they own."""
    return can_triage(user) or (system is not None and user.has_perm("inventory.change_own_system") and _owns(user, system))


def can_import(user, system=None) -> bool:
    """Engineers, CISOs and admins import for any system; a product owner for the systems they own."""
    return can_triage(user) or (system is not None and user.has_perm("inventory.change_own_system") and _owns(user, system))


def can_manage_risks(user, system) -> bool:
    """Engineers and CISOs manage any register; a product owner only their own systems'."""
    return user.has_perm("risks.manage_any_risks") or (user.has_perm("risks.manage_own_risks") and _owns(user, system))


def can_create_risks(user) -> bool:
    return user.has_perm("risks.manage_any_risks") or user.has_perm("risks.manage_own_risks")


def can_edit_matrix(user) -> bool:
    """The risk matrix (levels, labels, cell colours) is set by CISOs and admins: changing it re-rates every risk."""
    return user.has_perm("risks.decide_any") or user.has_perm("accounts.manage_users")


def can_edit_gate_policy(user) -> bool:
    """What blocks a release is the CISO's call: loosening it lets releases through that were stopped."""
    return user.has_perm("risks.decide_any")
