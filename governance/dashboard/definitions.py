"""What each figure counts, in the words shown beside it ("how this is counted"). The querysets named here are the
definitions: a KPI, the list it opens, the inboxes, the exports, the API and the gate all use them."""
from __future__ import annotations

from django.conf import settings

from governance.rmf.selectors import COVERAGE_DEFINITION


def _sla_days() -> str:
    return ", ".join(f"{sev} {days} d" for sev, days in settings.RAMPART_SLA_DAYS.items())


def texts() -> dict[str, str]:
    return {
        "active_systems": "AI systems in the inventory that are not archived.",
        "critical_high": "Findings that are open (new or confirmed) with severity critical or high, of active systems "
                         "and of feeds not yet assigned to a system.",
        "past_sla": f"Open findings whose due time has passed. Due = first seen + the SLA days of the current "
                    f"severity ({_sla_days()}); info findings have none. Active systems and unassigned feeds.",
        "high_risks": "Risks not closed, of active systems, rated high or above (residual), without an acceptance in "
                      "force. An acceptance is in force until it expires, and only while the residual rating is not "
                      "raised above what was signed.",
        "awaiting": "Risks not closed, of active systems, with a sign-off request nobody has answered yet.",
        "expiring": "Acceptances in force, of risks of active systems, that end within the window.",
        "coverage": COVERAGE_DEFINITION,
        "never_exercised": "Active systems no completed tabletop exercise included.",
        "findings_chart": "Open findings per active system (and unassigned feeds) by severity: the bars add up to the "
                          "open findings in the queue for that system.",
        "risk_matrix": "Risks not closed, of active systems, placed by residual likelihood × impact (unrated risks are "
                       "not on the matrix).",
        "coverage_chart": "Coverage per system and NIST AI RMF function, and over the whole system; n/a: nothing "
                          "applies.",
        "trends": "One point a day from the daily posture snapshots (each system's figures as the posture page read "
                  "them at the day's last hourly snapshot; days before snapshots began are reconstructed from "
                  "history, see the README). Days without a snapshot are left out.",
        "trend_open": "Open (new or confirmed) findings per severity, of the portfolio that day (active systems and "
                      "unassigned feeds): the critical + high card is the sum of the top two lines.",
        "trend_sla": "Open findings not past their SLA, as a share of all open findings (info findings have no SLA "
                     "and count as within it); the past-SLA card counts the others.",
        "trend_mttr": "Mean time to remediate over the 30 days up to each day: from first seen until the finding "
                      "moved from new or confirmed to fixed or closed (no longer reported), per severity. Empty "
                      "where nothing was remediated in those 30 days.",
        "trend_risks": "Risks not closed, of active systems: rated high or above without an acceptance in force (the "
                       "card's figure), and with an acceptance in force.",
        "trend_coverage": "NIST AI RMF coverage of the portfolio: the mean of the systems' figures, as on the card.",
        "mom": "Each card's figure now against the daily snapshot of 30 days ago; 'no data a month ago' when there "
               "is no snapshot of that day.",
        "gate": "Blocks a release: open findings past their SLA of the tier's severities (and open ones of the "
                "severities the tier blocks at once); risks above the tier's level without an acceptance in force; "
                "unrated risks where the tier requires ratings; required RMF subcategories not implemented at "
                "least in part.",
    }


SHORT = {
    "active_systems": "not archived",
    "critical_high": "open (new or confirmed), unassigned feeds included",
    "past_sla": "open, and first seen + SLA days has passed",
    "high_risks": "not closed, no acceptance in force",
    "awaiting": "a sign-off request not yet answered",
    "expiring": "acceptances in force that end in the window",
    "coverage": "implemented + ½ partial over applicable, mean of systems",
    "never_exercised": "in no completed tabletop exercise",
}


def definitions(request) -> dict:
    """Context processor: `how.<figure>` (the definition) and `how_short.<figure>` (a few words) in every template."""
    return {"how": texts(), "how_short": SHORT}
