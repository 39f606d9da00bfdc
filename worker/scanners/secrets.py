"""Secret-scanner output carried by a general format (SARIF from gitleaks, trufflehog, detect-secrets, GitHub secret
scanning …, or a secrets rule of semgrep or bandit): the secret must never reach a record.

Such a result's snippets are the secret or the line around it. They are replaced in the raw entry by a redacted form
and a sha256, removed from every text of the record, and free text that may quote other secrets (commit messages)
is dropped. The secret's sha256 stands in for it in the identity.
"""
from __future__ import annotations

import re

from ._common import REDACTED, scrub, scrub_text

# Tools whose every result is a secret (lower-case driver names, as they write them in SARIF).
SECRET_TOOLS = frozenset({
    "gitleaks", "trufflehog", "detect-secrets", "yelp detect-secrets", "ggshield", "gitguardian", "secretlint",
    "github secret scanning", "secret scanning", "nosey parker", "noseyparker", "kingfisher", "talisman",
    "whispers", "betterleaks", "trivy secret", "checkov secrets",
})
# A rule of another tool that finds secrets (semgrep's generic.secrets.*, bandit's hardcoded_password_*, CodeQL's
# py/hardcoded-credentials …): its snippets and quoted values are treated as secrets too.
SECRET_RULE = re.compile(r"secret|credential|passw|api[-_ ]?key|private[-_ ]?key|access[-_ ]?key|"
                         r"(api|access|auth|bearer|refresh|session|oauth|github|slack)[-_ ]?token|"
                         r"hard[-_ ]?coded[-_ ]?(password|key)", re.IGNORECASE)
_QUOTED = re.compile(r"""(['"`])[^'"`\s]{4,}\1""")
FREE_TEXT = ("commitMessage", "message", "Message", "offender", "Offender", "Raw", "RawV2", "Redacted", "Match",
             "Line", "lineContent", "secret", "Secret")


def is_secret_tool(name: str) -> bool:
    return name.strip().lower() in SECRET_TOOLS


def is_secret_rule(*texts) -> bool:
    return any(isinstance(t, str) and SECRET_RULE.search(t) for t in texts)


def snippets(result: dict) -> list[str]:
    """Every snippet text of a SARIF result (regions and context regions of its locations)."""
    found = []
    for loc in result.get("locations") or []:
        physical = (loc or {}).get("physicalLocation") or {} if isinstance(loc, dict) else {}
        for key in ("region", "contextRegion"):
            region = physical.get(key) if isinstance(physical, dict) else None
            text = ((region or {}).get("snippet") or {}).get("text") if isinstance(region, dict) else None
            if isinstance(text, str) and text.strip():
                found.append(text)
    return found


def redact_result(result: dict, secrets: tuple[str, ...]) -> dict:
    """A copy of the result without its secrets: snippets redacted, free text dropped, secret text replaced."""
    clean = scrub(result, secrets)
    for loc in clean.get("locations") or []:
        physical = (loc or {}).get("physicalLocation") if isinstance(loc, dict) else None
        for key in ("region", "contextRegion"):
            region = physical.get(key) if isinstance(physical, dict) else None
            if isinstance(region, dict) and isinstance(region.get("snippet"), dict):
                region["snippet"] = {"text": REDACTED}
    for holder in (clean, clean.get("properties"), clean.get("partialFingerprints")):
        if isinstance(holder, dict):
            for key in FREE_TEXT:
                if key in holder and key != "message":
                    holder[key] = REDACTED
    message = clean.get("message")
    if isinstance(message, dict):
        for key in ("text", "markdown"):
            if isinstance(message.get(key), str):
                message[key] = scrub_message(message[key], secrets)
    return clean


def scrub_message(text: str, secrets: tuple[str, ...]) -> str:
    """The secrets out of a message, and any quoted value (bandit writes "Possible hardcoded password: 'hunter2'")."""
    return _QUOTED.sub(lambda m: m.group(1) + REDACTED + m.group(1), scrub_text(text, secrets))
