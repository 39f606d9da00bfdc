"""CSV and XLSX export of the register. Spreadsheet formula injection is neutralised in every text cell."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "Ref", "Title", "System", "Status", "Inherent likelihood", "Inherent impact", "Inherent level",
    "Residual likelihood", "Residual impact", "Residual level", "Treatment", "Treatment plan", "Owner",
    "Due date", "Overdue", "Open findings", "Source", "Description", "Updated",
]


def neutralise(value):
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe; other values pass."""
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        return "'" + value
    return value


def rows(risks, matrix) -> list[list]:
    def label(key):
        lv = matrix.level(key)
        return lv["label"] if lv else ("Not rated" if not key else key)

    out = []
    for r in risks:
        out.append([
            r.ref, r.title, r.system.name, r.status_label,
            r.inherent_likelihood, r.inherent_impact, label(r.inherent_level),
            r.residual_likelihood, r.residual_impact, label(r.residual_level),
            r.get_treatment_display() if r.treatment else "", r.treatment_plan,
            r.owner.email if r.owner else "", r.due_date, "yes" if r.is_overdue else "",
            getattr(r, "open_findings", None), r.get_source_display(), r.description,
            r.updated_at.replace(microsecond=0, tzinfo=None) if r.updated_at else None,
        ])
    return out


def to_csv(data: list[list]) -> str:
    """Every text cell quoted: a spreadsheet in a locale whose separator is ";" would otherwise split "x;=1+1;" and
    evaluate its second part. Numbers stay bare."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(COLUMNS)
    for row in data:
        writer.writerow(["" if v is None else neutralise(v.isoformat() if isinstance(v, (date, datetime)) else v)
                         for v in row])
    return buffer.getvalue()


def to_xlsx(data: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Risk register"
    ws.append(COLUMNS)
    for cell in ws[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F3A5F")
    for r, row in enumerate(data, start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                cell.value = neutralise(value)
                cell.data_type = "s"  # never a formula, whatever the text
            else:
                cell.value = value
                if isinstance(value, (date, datetime)):
                    cell.number_format = "yyyy-mm-dd" if not isinstance(value, datetime) else "yyyy-mm-dd hh:mm"
    ws.freeze_panes = "C2"
    for letter, width in (("A", 11), ("B", 48), ("C", 22), ("D", 18), ("L", 40), ("M", 26), ("R", 48)):
        ws.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
