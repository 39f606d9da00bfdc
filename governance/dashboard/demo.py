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
    return [(email, role) for email, _, role in DEMO_USERS]
