"""The risk matrix in force, and the default 5×5 one."""
from __future__ import annotations

import copy

from governance.risks.models import GatePolicy, RiskMatrix

DEFAULT_LEVELS = [
    {"key": "low", "label": "Low", "colour": "#3fa36b", "rank": 1},
    {"key": "medium", "label": "Medium", "colour": "#f2b134", "rank": 2},
    {"key": "high", "label": "High", "colour": "#e8702a", "rank": 3},
    {"key": "critical", "label": "Critical", "colour": "#c62828", "rank": 4},
]


def _default_cell(likelihood: int, impact: int) -> str:
    score = likelihood * impact
    if score >= 15:
        return "critical"
    if score >= 8:
        return "high"
    if score >= 4:
        return "medium"
    return "low"


def default_matrix() -> dict:
    return {
        "likelihood_labels": ["Rare", "Unlikely", "Possible", "Likely", "Almost certain"],
        "impact_labels": ["Negligible", "Minor", "Moderate", "Major", "Severe"],
        "levels": DEFAULT_LEVELS,
        "cells": [[_default_cell(lk, im) for im in range(1, 6)] for lk in range(1, 6)],
    }


def get_matrix() -> RiskMatrix:
    matrix, _ = RiskMatrix.objects.get_or_create(pk=1, defaults=default_matrix())
    return matrix


DEFAULT_POLICIES = {
    "critical": {"blocking_finding_severities": ["critical", "high"], "blocking_open_severities": ["critical"],
                 "max_unaccepted_level": "medium",
                 "required_subcategories": ["GOVERN 1.1", "MAP 1.1", "MAP 5.1", "MEASURE 2.7", "MANAGE 1.1", "MANAGE 1.3"],
                 "block_unrated_risks": True},
    "high": {"blocking_finding_severities": ["critical", "high"], "max_unaccepted_level": "medium",
             "required_subcategories": ["MAP 1.1", "MEASURE 2.7", "MANAGE 1.1"], "block_unrated_risks": True},
    "medium": {"blocking_finding_severities": ["critical"], "max_unaccepted_level": "high",
               "required_subcategories": ["MANAGE 1.1"], "block_unrated_risks": False},
    "low": {"blocking_finding_severities": ["critical"], "max_unaccepted_level": "high",
            "required_subcategories": [], "block_unrated_risks": False},
}


def gate_policy(tier: str) -> GatePolicy:
    """The stored policy of the tier, else its default (unsaved: reading a system page or the gate writes nothing)."""
    policy = GatePolicy.objects.filter(tier=tier).first()
    return policy or GatePolicy(tier=tier, **copy.deepcopy(DEFAULT_POLICIES.get(tier, DEFAULT_POLICIES["low"])))
