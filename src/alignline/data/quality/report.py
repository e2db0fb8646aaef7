"""The report: JSON (every metric, the gates, `passed`) and one self-contained HTML page.

The HTML has inline CSS and inline SVG charts (length histogram, task mix, PII by type, length bias
by category) and tables (gates, duplicate clusters, leaked items); no script, font or stylesheet
is fetched from anywhere. Both files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from alignline.io import write_text
from alignline.render.html import Raw, fmt, page, section, status, table
from alignline.render.svg import bar_chart, histogram


def write_report(report: dict, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
    out = Path(out_dir)
    json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
    write_text(json_path, json.dumps(report, indent=2, default=str) + "\n")
    write_text(html_path, render_html(report))
    return json_path, html_path


def _gates(r: dict) -> str:
    def rows(gates: list[dict], advisory: bool) -> list[list]:
        out = []
        for g in gates:
            thr = (
                f"{g['op']} {fmt(g['threshold'])}"
                if g["op"] != "between"
                else f"between {fmt(g['threshold'][0])} and {fmt(g['threshold'][1])}"
            )
            mark = status(g["passed"]) if not advisory else ("ok" if g["passed"] else "warning")
            out.append([mark, g["name"] + (" (advisory)" if advisory else ""), g["value"], thr, g["detail"]])
        return out

    # Advisory gates (the task mix, unless coverage.enforce) are shown, marked, but do not fail the check.
    return table(
        ["", "gate", "value", "threshold", "what"],
        rows(r["gates"], False) + rows(r.get("advisory_gates", []), True),
        "gates",
    )


def _duplicates(d: dict | None) -> str:
    if d is None:
        return "<p>Duplicate check disabled.</p>"
    out = [
        table(
            ["records", "exact duplicates", "near duplicates", "removed by dedup", "share", "clusters"],
            [
                [
                    d["records"],
                    d["exact_duplicates"],
                    d["near_duplicates"],
                    d["removed_by_dedup"],
                    d["duplicate_share"],
                    d["clusters"],
                ]
            ],
        )
    ]
    m = d["method"]
    out.append(
        f"<p class=note>MinHash over {escape(m['shingle'])}, {m['num_perm']} permutations, LSH {m['bands']} bands "
        f"x {m['rows']} rows, Jaccard threshold {m['threshold']}.</p>"
    )
    if d["largest_clusters"]:
        sizes = [
            (f"#{i + 1}" + (" (exact)" if c["exact"] else ""), c["size"]) for i, c in enumerate(d["largest_clusters"])
        ]
        out.append(bar_chart(sizes, "largest duplicate clusters (records)"))
        rows = []
        for i, c in enumerate(d["largest_clusters"]):
            ex = "".join(
                f"<div class=ex><b>{escape(e['id'])}</b><br>{escape(e['text'][:300])}</div>" for e in c["examples"]
            )
            rows.append([f"#{i + 1}", c["size"], "exact" if c["exact"] else "near", Raw(ex)])
        out.append(table(["cluster", "size", "kind", "examples (first members)"], rows))
    return "".join(out)


def _leakage(lk: dict | None) -> str:
    if lk is None:
        return "<p>No evaluation split given (or the check is disabled).</p>"
    by = lk["by_method"]
    out = [
        table(
            ["evaluation items", "leaked", "share", "exact", "near", "n-gram"],
            [[lk["eval_items"], lk["leaked"], lk["leaked_share"], by["exact"], by["near"], by["ngram"]]],
        )
    ]
    if lk["items"]:
        rows = [
            [i["eval_id"], ", ".join(i["how"]), i["train_id"], i["similarity"], i["ngram_share"], i["eval_prompt"]]
            for i in lk["items"]
        ]
        out.append(table(["evaluation item", "how", "training record", "similarity", "13-gram share", "prompt"], rows))
    return "".join(out)


def _pii(p: dict | None) -> str:
    if p is None:
        return "<p>PII check disabled.</p>"
    out = [bar_chart([(t, v["records"]) for t, v in p["by_type"].items()], "records with PII, by type")]
    rows = [
        [
            t,
            v["matches"],
            v["records"],
            ", ".join(v["ids"][:8]) + (" …" if len(v["ids"]) > 8 else ""),
            ", ".join(e["match"] for e in v["examples"]),
        ]
        for t, v in p["by_type"].items()
    ]
    out.append(table(["type", "matches", "records", "record ids", "examples (masked)"], rows))
    return "".join(out)


def _format(f: dict) -> str:
    out = [
        table(
            ["records", "invalid", "share"] + [k for k, v in f["problems"].items() if v],
            [[f["records"], f["invalid"], f["invalid_share"]] + [v for v in f["problems"].values() if v]],
        )
    ]
    h = f["histogram"]
    if h["counts"]:
        out.append(
            histogram(
                h["edges"],
                h["counts"],
                f"length ({f['length_unit']})",
                "record lengths",
                marker=f.get("max_length"),
                marker_label="max_length",
            )
        )
    L = f["lengths"]
    out.append(
        table(
            ["unit", "min", "median", "p90", "p99", "max", "max_length", "truncated", "truncated share"],
            [
                [
                    f["length_unit"],
                    L["min"],
                    L["p50"],
                    L["p90"],
                    L["p99"],
                    L["max"],
                    f["max_length"],
                    f["truncated"],
                    f["truncated_share"],
                ]
            ],
        )
    )
    if f["invalid_ids"]:
        out.append(table(["record", "problems"], [[x["id"], ", ".join(x["problems"])] for x in f["invalid_ids"][:50]]))
    return "".join(out)


def _coverage(c: dict) -> str:
    out = [
        f"<p>Categories from {'the task/category field' if c['source'] == 'field' else escape(c['source'] + ' rules')}."
        f" Refusal share: <b>{escape(fmt(c['refusal_share']))}</b>.</p>"
    ]
    out.append(bar_chart(list(c["mix"].items()), "task mix (records)"))
    if c["under_represented"] or c["missing"]:
        out.append(
            f"<p>Under-represented: {escape(', '.join(c['under_represented']) or '–')}; "
            f"missing: {escape(', '.join(c['missing']) or '–')}.</p>"
        )
    return "".join(out)


def _preference(p: dict | None) -> str:
    if p is None:
        return "<p>No preference pairs.</p>"
    ag = p["agreement"]
    out = [
        table(
            [
                "pairs",
                "identical",
                "ties",
                "duplicate pairs",
                "chosen longer",
                "adversarial",
                "synthetic",
                "multi-label pairs",
                "Krippendorff α",
                "Fleiss κ",
                "Cohen κ",
            ],
            [
                [
                    p["pairs"],
                    p["identical"],
                    p["ties"],
                    p["duplicate_pairs"],
                    p["chosen_longer_share"],
                    p["adversarial_share"],
                    p["synthetic_share"],
                    ag["multi_label_pairs"],
                    ag["krippendorff_alpha"],
                    ag["fleiss_kappa"],
                    ag["cohen_kappa"],
                ]
            ],
        )
    ]
    cats = [(k, round(v["chosen_longer_share"] * 100, 1)) for k, v in p["chosen_longer_by_category"].items()]
    out.append(bar_chart(cats, "pairs whose chosen answer is longer, by category (%)", max_value=100))
    return "".join(out)


def render_html(r: dict) -> str:
    ok = r["passed"]
    failed = [g["name"] for g in r["gates"] if not g["passed"]]
    banner = "all gates pass" if ok else f"{len(failed)} gate(s) fail: {', '.join(failed)}"
    inputs = ", ".join(t["path"] for t in r["inputs"]["train"])
    ev = r["inputs"]["eval"]
    warn = "".join(f"<li>{escape(w)}</li>" for w in r["warnings"])
    subtitle = (
        f"train: {inputs} ({r['records']} records){'; eval: ' + ev['path'] if ev else ''}; {r.get('seconds', 0)} s"
    )
    sections = [
        Raw(f'<div class="banner {"ok" if ok else "bad"}">{escape(banner)}</div>'),
        section("Gates", _gates(r)),
        section("Warnings", f"<ul>{warn or '<li>none</li>'}</ul>"),
        section("Duplicates", _duplicates(r["duplicates"])),
        section("Leakage", _leakage(r["leakage"])),
        section("Personal data and secrets", _pii(r["pii"])),
        section("Format and length", _format(r["format"])),
        section("Coverage", _coverage(r["coverage"])),
        section("Preference pairs", _preference(r["preference"])),
        section(
            "Configuration",
            "<details><summary>gate config</summary><pre>"
            f"{escape(json.dumps(r.get('config', {}), indent=2))}</pre></details>",
        ),
    ]
    return page("alignline data check", sections, subtitle=subtitle, heading="Data check")
