"""The README's verdict table is the summary table of the stored paper-scale REPORT.md, verbatim."""

import re
from pathlib import Path

from sparsenet.experiments.report import SUMMARY_HEADER, summary_table_of

ROOT = Path(__file__).resolve().parents[1]


def test_readme_verdict_table_is_the_reports():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- verdicts:begin -->\n(.*?)\n<!-- verdicts:end -->", readme, re.S)
    assert block, "README.md lacks the <!-- verdicts:begin/end --> block"
    report = (ROOT / "docs" / "reproduction" / "REPORT.md").read_text(encoding="utf-8")
    table = summary_table_of(report)
    assert table.splitlines()[0] == "| " + " | ".join(SUMMARY_HEADER) + " |"
    assert len(table.splitlines()) > 2  # a header, a rule and at least one claim
    assert block.group(1).strip() == table.strip(), (
        "README verdict table differs from docs/reproduction/REPORT.md; copy it with "
        "`python -c \"from sparsenet.experiments.report import summary_table_of; "
        "print(summary_table_of(open('docs/reproduction/REPORT.md').read()))\"`")


def test_summary_table_of_reads_the_table_that_write_report_writes(tmp_path):
    from sparsenet.experiments.report import write_report

    cfg = {"experiment": {"name": "t", "x": "thresh_train", "values": [0.1, 0.2], "metrics": ["recovery_error"],
                          "protocols": ["blind"], "trials": 2},
           "methods": [{"label": "A"}, {"label": "B"}],
           "claims": [{"kind": "compare", "metric": "recovery_error", "better": "A", "worse": "B",
                       "text": "A is lower | than B"}]}
    records = [{"run_key": f"{m}{x}{t}", "protocol": "blind", "method": m, "x": x, "trial": t, "seed": t,
                "status": "ok", "metrics": {"recovery_error": (0.1 if m == "A" else 0.2) + 0.01 * t}}
               for m in "AB" for x in (0.1, 0.2) for t in range(2)]
    md, _ = write_report(tmp_path, [(cfg, records)], date="2024-01-01", version="0", jobs=1)
    table = summary_table_of(md.read_text())
    rows = table.splitlines()
    assert len(rows) == 3 and rows[2].startswith("| t | A is lower \\| than B | inconclusive")
