"""Demo data for `make run`: one user per role and a small, realistic portfolio."""
from __future__ import annotations

import random
from datetime import date, timedelta

from django.contrib.auth.models import Group
from django.db import transaction

from governance.accounts.models import Role, User
from governance.inventory import services as inventory
from governance.inventory.models import AISystem
from governance.rmf import services as rmf
from governance.rmf.models import AssessmentStatus, RmfAssessment

DEMO_PASSWORD = "rampart-demo"
DEMO_USERS = [
    ("ciso@rampart.local", "Cora Iso", Role.CISO),
    ("po@rampart.local", "Priya Owens", Role.PRODUCT_OWNER),
    ("po2@rampart.local", "Marcus Webb", Role.PRODUCT_OWNER),
    ("engineer@rampart.local", "Elena Ng", Role.ENGINEER),
    ("facilitator@rampart.local", "Femi Adeyemi", Role.FACILITATOR),
    ("admin@rampart.local", "Ada Min", Role.ADMIN),
]

SYSTEMS = [
    dict(name="Support Copilot", slug="support-copilot", owner="po@rampart.local",
         purpose="LLM assistant that drafts answers for customer-support agents from the help-centre knowledge base.",
         business_unit="Customer Operations", lifecycle_stage="operate", risk_tier="high", deployment="customer_facing",
         design_approach="rag", uses_generative_ai=True, third_party_provider="OpenAI", autonomy="human_in_loop",
         human_oversight="Agents review every draft before sending.", data_categories=["pii", "confidential"],
         models=[dict(name="gpt-4o", version="2024-08-06", format="api", provider="OpenAI", licence="commercial")],
         datasets=[dict(name="help-centre-articles", source_uri="s3://kb/help-centre/", licence="internal", provenance_documented=True),
                   dict(name="support-tickets-2025", source_uri="s3://support/tickets/2025/", licence="internal", contains_pii=True)]),
    dict(name="Fraud Scoring", slug="fraud-scoring", owner="po2@rampart.local",
         purpose="Gradient-boosted model that scores card transactions for fraud in real time.",
         business_unit="Payments", lifecycle_stage="operate", risk_tier="critical", deployment="internal",
         design_approach="classical_ml", autonomy="human_on_loop", human_oversight="Analysts review declines above 0.9.",
         data_categories=["pii", "financial"],
         models=[dict(name="fraud-xgb", version="7.2.0", format="pickle", source_uri="mlflow://models/fraud-xgb/7",
                      sha256="9f2b5c1d0e3a4b6c7d8e9f00112233445566778899aabbccddeeff0011223344", provider="in-house", licence="internal")],
         datasets=[dict(name="transactions-2024", source_uri="warehouse://payments.transactions", licence="internal", contains_pii=True, provenance_documented=True)]),
    dict(name="Code Review Agent", slug="code-review-agent", owner="po@rampart.local",
         purpose="Agent that reviews pull requests and runs generated tests in a sandbox.",
         business_unit="Engineering Productivity", lifecycle_stage="verify", risk_tier="high", deployment="internal",
         design_approach="agent", uses_generative_ai=True, third_party_provider="Anthropic", autonomy="human_on_loop",
         executes_generated_code=True, code_execution_isolation="gVisor sandbox, no network, no secrets mounted.",
         data_categories=["credentials", "confidential"],
         models=[dict(name="claude", version="4", format="api", provider="Anthropic", licence="commercial")]),
    dict(name="Resume Screener", slug="resume-screener", owner="po2@rampart.local",
         purpose="Ranks job applications for recruiters; recommendations only.",
         business_unit="People", lifecycle_stage="plan_design", risk_tier="high", deployment="internal",
         design_approach="fine_tuned", uses_generative_ai=True, autonomy="human_in_loop", data_categories=["pii", "sensitive_pii"],
         models=[dict(name="llama-3-8b-resume", version="0.3", format="safetensors", source_uri="https://huggingface.co/meta-llama", provider="Meta", licence="llama3")],
         datasets=[dict(name="historic-hiring-decisions", source_uri="hris://exports/2019-2024", licence="internal", contains_pii=True)]),
    dict(name="Demand Forecast", slug="demand-forecast", owner="po2@rampart.local",
         purpose="Weekly demand forecast per store and product line.",
         business_unit="Supply Chain", lifecycle_stage="operate", risk_tier="low", deployment="internal",
         design_approach="classical_ml", autonomy="autonomous", data_categories=["confidential"],
         models=[dict(name="prophet-demand", version="2025.11", format="pickle", provider="in-house", licence="internal")],
         datasets=[dict(name="sales-history", source_uri="warehouse://sales.daily", licence="internal", provenance_documented=True)]),
    dict(name="Public Docs Chatbot", slug="public-docs-chatbot", owner="po@rampart.local",
         purpose="Answers developer questions on the public documentation site.",
         business_unit="Developer Relations", lifecycle_stage="deploy", risk_tier="medium", deployment="public_api",
         design_approach="rag", uses_generative_ai=True, third_party_provider="Mistral AI", autonomy="autonomous",
         data_categories=["public"],
         models=[dict(name="mistral-small", version="2501", format="gguf", source_uri="https://huggingface.co/mistralai", provider="Mistral AI", licence="apache-2.0")],
         datasets=[dict(name="public-docs", source_uri="https://docs.example.com", licence="CC-BY-4.0", provenance_documented=True)]),
]


def _ensure_user(email, name, role) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=DEMO_PASSWORD, full_name=name)
    user.groups.set([Group.objects.get(name=role)])
    return user


@transaction.atomic
def seed_demo() -> list[tuple[str, str]]:
    users = {email: _ensure_user(email, name, role) for email, name, role in DEMO_USERS}
    ciso, rng = users["ciso@rampart.local"], random.Random(7)
    for spec in SYSTEMS:
        if AISystem.objects.filter(slug=spec["slug"]).exists():
            continue
        spec = dict(spec)
        models, datasets = spec.pop("models", []), spec.pop("datasets", [])
        owner = users[spec.pop("owner")]
        system = inventory.system_create(actor=ciso, data={**spec, "business_owner": owner,
                                                            "technical_owner": users["engineer@rampart.local"]})
        for m in models:
            inventory.model_register(actor=ciso, system=system, data=m)
        for d in datasets:
            inventory.dataset_register(actor=ciso, system=system, data=d)
        weights = [3, 1, 2, 3, 4] if system.lifecycle_stage == "operate" else [8, 1, 2, 1, 1]
        statuses = [AssessmentStatus.NOT_ASSESSED, AssessmentStatus.NOT_APPLICABLE, AssessmentStatus.GAP,
                    AssessmentStatus.PARTIAL, AssessmentStatus.IMPLEMENTED]
        for a in RmfAssessment.objects.filter(system=system).select_related("subcategory"):
            status = rng.choices(statuses, weights)[0]
            if status != AssessmentStatus.NOT_ASSESSED:
                rmf.assessment_update(actor=users["engineer@rampart.local"], assessment=a, data={
                    "status": status, "owner": users["engineer@rampart.local"],
                    "last_reviewed": date.today() - timedelta(days=rng.randint(3, 200)),
                })
    _seed_risks(users)
    from governance.tabletop.loader import load_builtin_scenarios  # the tabletop scenario library

    load_builtin_scenarios(actor=ciso)
    return [(email, role) for email, _, role in DEMO_USERS]


# (system, title, description, inherent (L, I), residual (L, I) or None, treatment, plan, owner, due in days,
#  RMF subcategories, references (catalogue, ident), actions, sign-off: None | "accepted:<days>" | "pending" |
#  "rejected" | "expired")
DEMO_RISKS = [
    ("support-copilot", "Prompt injection through help-centre articles exfiltrates ticket PII",
     "An attacker who can edit a help-centre article plants instructions that make the copilot include other "
     "customers' ticket details in a draft.", (4, 4), (3, 3), "mitigate",
     "Strip instructions from retrieved text, restrict the tools the copilot can call, PII filter on drafts.",
     "engineer@rampart.local", 45, ["MAP 5.1", "MEASURE 2.7"], [("owasp-llm", "LLM01"), ("owasp-llm", "LLM02"),
     ("trustworthiness", "PRIVACY_ENHANCED"), ("ai-600-1", "data-privacy")],
     [("Add retrieved-content sanitiser", "done"), ("PII filter on outgoing drafts", "in_progress")], "accepted:21"),
    ("support-copilot", "Hallucinated refund policy reaches customers",
     "Drafts state refund terms that do not exist; agents approve them under time pressure.", (4, 3), (2, 3),
     "mitigate", "Ground answers in the policy pages only; show the source next to every draft.",
     "po@rampart.local", 30, ["MEASURE 2.5"], [("owasp-llm", "LLM09"), ("ai-600-1", "confabulation")],
     [("Cite sources in drafts", "planned")], "pending"),
    ("fraud-scoring", "Pickle model artefact can execute code when loaded",
     "fraud-xgb 7.2.0 is stored as a pickle; anyone who can write to the model registry can run code in scoring.",
     (3, 5), (2, 5), "mitigate", "Move to a safe serialisation format; sign artefacts; restrict registry writes.",
     "engineer@rampart.local", 60, ["MANAGE 1.3"], [("atlas-technique", "AML.T0010"), ("owasp-llm", "LLM03"),
     ("trustworthiness", "SECURE_AND_RESILIENT")], [("Sign model artefacts", "in_progress")], "accepted:120"),
    ("fraud-scoring", "Model drift after card-scheme rule change",
     "New chargeback rules change the label distribution; precision may drop without anyone noticing.", (3, 4),
     (2, 3), "mitigate", "Weekly drift report; retrain trigger on PSI > 0.2.", "po2@rampart.local", -10,
     ["MEASURE 2.4"], [("trustworthiness", "VALID_AND_RELIABLE")], [], None),
    ("resume-screener", "Historic hiring decisions encode gender bias",
     "Training labels come from 2019-2024 decisions, which under-selected women for engineering roles.", (4, 5),
     (3, 4), "mitigate", "Re-weight training data; disparate-impact test before each release.", "po2@rampart.local",
     90, ["MEASURE 2.11", "MAP 1.1"], [("trustworthiness", "FAIR_WITH_HARMFUL_BIAS_MANAGED"),
     ("ai-600-1", "harmful-bias-homogenization")], [("Disparate-impact test suite", "planned")], "rejected"),
    ("code-review-agent", "Generated tests escape the sandbox",
     "The agent runs tests it wrote; a sandbox escape would reach the CI network.", (2, 5), (1, 5), "accept",
     "gVisor sandbox without network or secrets; accepted while the isolation review is pending.",
     "engineer@rampart.local", 20, ["MANAGE 1.3"], [("owasp-llm", "LLM06"), ("owasp-llm", "LLM05")], [], "expired"),
    ("public-docs-chatbot", "Chatbot quotes outdated security guidance",
     "Old documentation pages are still indexed; answers may recommend deprecated settings.", (3, 2), None,
     "", "", "po@rampart.local", 14, [], [("owasp-llm", "LLM09")], [], None),
    ("demand-forecast", "Forecast outage during peak season",
     "A failed weekly run leaves stores without a forecast in the busiest weeks.", (2, 3), (1, 3), "accept",
     "Fallback to last year's forecast; on-call during peak.", "po2@rampart.local", 120, [],
     [("trustworthiness", "VALID_AND_RELIABLE")], [], "accepted:200"),
]


def _seed_risks(users) -> None:
    """A living register: rated risks, acceptances (one expiring soon), one awaiting sign-off, one expired."""
    from django.utils import timezone

    from governance.risks import services as risks
    from governance.risks.models import Risk
    from governance.rmf.models import ReferenceItem, RmfSubcategory

    engineer = users["engineer@rampart.local"]
    for (slug, title, description, inherent, residual, treatment, plan, owner, due, rmf_ids, ref_ids, actions,
         signoff) in DEMO_RISKS:
        system = AISystem.objects.filter(slug=slug).select_related("business_owner").first()
        if system is None or Risk.objects.filter(system=system, title=title).exists():
            continue
        refs = [r for r in ReferenceItem.objects.filter(ident__in=[i for _, i in ref_ids])
                if (r.catalogue, r.ident) in set(ref_ids)]
        risk = risks.risk_create(actor=engineer, system=system, data={
            "title": title, "description": description, "treatment": treatment, "treatment_plan": plan,
            "owner": users[owner], "due_date": date.today() + timedelta(days=due),
            "inherent_likelihood": inherent[0], "inherent_impact": inherent[1],
            "residual_likelihood": residual[0] if residual else None, "residual_impact": residual[1] if residual else None,
        }, relations={"rmf_subcategories": list(RmfSubcategory.objects.filter(version="1.0", ident__in=rmf_ids)),
                      "references": refs})
        for action_title, status in actions:
            action = risks.mitigation_add(actor=engineer, risk=risk, data={
                "title": action_title, "owner": engineer, "due_date": date.today() + timedelta(days=due // 2 or 7)})
            if status != "planned":
                risks.mitigation_set_status(actor=engineer, action=action, status=status)
        if signoff is None:
            continue
        decider = system.business_owner
        risks.decision_request(actor=engineer, risk=risk, kind="residual_risk",
                               note="Residual level after the planned mitigations; please review before the next release.")
        if signoff == "pending":
            continue
        if signoff == "rejected":
            risks.decision_decide(actor=decider, risk=risk, accept=False, justification="Not acceptable for a hiring "
                                  "system: show the disparate-impact results first.", expires_at=None)
        elif signoff == "expired":  # accepted for a moment, then expired by the same code the beat task runs
            now = timezone.now()
            risks.decision_decide(actor=decider, risk=risk, accept=True, justification="Temporary acceptance until the "
                                  "isolation review.", expires_at=now + timedelta(seconds=1))
            risks.acceptances_expire(now=now + timedelta(seconds=2))
        else:
            days = int(signoff.split(":")[1])
            risks.decision_decide(actor=decider, risk=risk, accept=True, justification="Mitigations in place and "
                                  "monitored; residual risk within appetite for this tier.",
                                  expires_at=timezone.now() + timedelta(days=days))
