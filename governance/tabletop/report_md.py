"""The after-action report as Markdown (for wikis and tickets). Text from people is kept as text: Markdown
control characters at line starts are escaped so a response cannot forge headings or tables."""
from __future__ import annotations

import re

from governance.tabletop.selectors import Report

_LEADING = re.compile(r"^([#>*+\-=|`]|\d+\.)", re.MULTILINE)


def _t(text) -> str:
    text = str(text or "").replace("\r", "")
    text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return _LEADING.sub(r"\\\1", text)


def _one_line(text) -> str:
    return _t(text).replace("\n", " ")


def _clock(minute) -> str:
    if minute is None:
        return "—"
    s = int(round(minute * 60))
    return f"T+{s // 60:02d}:{s % 60:02d}"


def render(report: Report) -> str:
    ex = report.exercise
    out = [f"# After-action report — {_one_line(ex.title)}", "",
           f"- Exercise: {ex.ref} · scenario *{_one_line(ex.scenario.title)}*",
           f"- State: {ex.get_state_display()} · facilitator {_one_line(ex.facilitator)}",
           f"- Started: {ex.started_at:%Y-%m-%d %H:%M} UTC" if ex.started_at else "- Not started",
           f"- Exercise time played: {report.totals['duration']} min; {report.totals['injects']} injects released, "
           f"{report.totals['responses']} responses, {report.totals['decisions']} decisions",
           (f"- Overall score: {report.totals['score_pct']}% ({report.totals['scored_actions']} of "
            f"{report.totals['actions']} expected actions rated; unrated ones are left out)")
           if report.totals["score_pct"] is not None else "- Not scored",
           "", "## Objectives", "", "| Objective | Score | Rated |", "|---|---|---|"]
    for o in report.by_objective:
        score = f"{o['pct']}%" if o["pct"] is not None else "not scored"
        out.append(f"| {_one_line(o['objective'])} | {score} | {o['rated']} of {o['actions']} |")
    out += ["", "## Expected actions", "", "| Inject | Expected action | Checked by | Score |", "|---|---|---|---|"]
    for row in report.actions:
        a = row["action"]
        out.append(f"| {a.inject.order} | {_one_line(a.text)} | {_one_line(a.checked_by)} | "
                   f"{str(row['pct']) + '%' if row['pct'] is not None else 'not scored'} |")
    out += ["", "## Time to first response", "", "| Inject | Released | First response after |", "|---|---|---|"]
    for row in report.first_response:
        r = row["release"]
        out.append(f"| {r.inject.order}. {_one_line(r.inject.title)} | {_clock(r.clock_minute)} | "
                   f"{str(row['minutes']) + ' min' if row['minutes'] is not None else 'no response'} |")
    out += ["", "## Decisions", ""]
    out += [f"- **{_clock(d.clock_minute)}** {_one_line(d.participant.user)} ({d.participant.get_function_display()}): "
            f"{_one_line(d.text)} — *why:* {_one_line(d.rationale)}" for d in report.decisions] or ["- None recorded."]
    out += ["", "## Strengths", ""] + ([f"- {_one_line(s)}" for s in report.strengths] or ["- None recorded."])
    out += ["", "## Areas for improvement", ""] + ([f"- {_one_line(s)}" for s in report.improvements_text] or ["- None recorded."])
    out += ["", "## Visibility gaps (what Rampart could not answer)", ""]
    out += [f"- {_one_line(g.detail)}" for g in report.gaps] or ["- None."]
    out += ["", "## Improvement items", "", "| Item | Kind | Owner | Due | Status | In the register |", "|---|---|---|---|---|---|"]
    for item in report.items:
        link = item.risk.ref if item.risk else (f"{item.subcategory.ident} gap" if item.assessment_id else "—")
        out.append(f"| {_one_line(item.title)} | {item.get_kind_display()} | {_one_line(item.owner or '—')} | "
                   f"{item.due_date or '—'} | {item.tracked_status.replace('_', ' ')} | {link} |")
    out += ["", "## Timeline", ""]
    out += [f"- **{_clock(e['minute'])}** {_one_line(e['title'])}: {_one_line(e['detail'])}" for e in report.timeline]
    return "\n".join(out) + "\n"
