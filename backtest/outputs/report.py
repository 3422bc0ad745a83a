"""``mbt report``: a governance report of one stored run, as one self-contained HTML file or Markdown + PNGs.

Everything comes from the database (``sql/report_*.sql`` through the store) — the run's canonical config,
metrics, time series, the snapshot valued at the start, price provenance — so any run the database holds
(historical only, scenarios, sweeps, every kind and model) can be reported after the fact. Charts are PNGs
drawn with matplotlib (Agg); the HTML embeds them as data URIs and carries a Content-Security-Policy that
forbids every request, so the file opens offline and prints to PDF.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import ACROSS_METRICS, COUNT_METRICS, METRICS, MODEL_METRICS

MAX_RULE_COLUMNS = 10
MODEL_TEXT = {
    "aave": "DESIGN §4: an account with health factor Σc·p·LT / Σd·p below 1 is liquidated call by call (at most "
            "100 per step): the largest debt leg is repaid up to `close_factor` of it, the largest collateral leg "
            "seized at (1 + liquidation_bonus) times the repaid value, while a call earns more than `gas_usd`; "
            "accounts with no eligible collateral left are written off (realised bad debt).",
    "aave-v2": "Aave v2: fixed 50 % close factor, bonus applied before the division, no protocol fee; interest "
               "accrues between steps.",
    "aave-v3": "Aave v3.x: 50 % close factor, 100 % below HF 0.95 or for small positions, protocol fee on the "
               "bonus, the version's dust rules; interest accrues between steps.",
}
KIND_TEXT = {
    "asset": "per-asset LTV / liquidation threshold / bonus; one cross-margin pool per account.",
    "cross": "correlated groups (e-mode): accounts whose debts are all in a group (or whose positions name it) "
             "use the group's values for its assets.",
    "isolated": "each (collateral, debt) market is its own position with its own LLTV.",
    "dynamic": "thresholds follow EWMA volatility within governance change limits.",
    "liquidity-haircut": "LT and LTV shrink with position size relative to on-chain depth: "
                         "max(floor, 1 − k·size/depth).",
    "portfolio-scenario": "portfolio margin, SPAN-like: liquidated when equity Σc·p − Σd·p falls below the worst "
                          "loss over price-scan scenarios (± fractions of each asset's psr).",
    "portfolio-var": "portfolio margin by historical (or volatility-filtered) VaR / expected shortfall of the "
                     "account's loss over daily scenarios rebuilt each UTC day.",
}
STABLE = {"USDC", "USDT", "DAI", "USDC.e", "FRAX", "LUSD", "GHO", "PYUSD", "USDS"}


@dataclass
class Chart:
    name: str
    title: str
    png: bytes


@dataclass
class Report:
    title: str
    sections: list[tuple[str, list[Any]]] = field(default_factory=list)   # heading → blocks
    charts: list[Chart] = field(default_factory=list)


# -- data ------------------------------------------------------------------------------------------------
def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list) and d and all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) for x in d):
        for name, v in d:   # ordered named tables (groups, markets)
            out.update(_flatten(v, f"{prefix}.{name}"))
    else:
        out[prefix] = d
    return out


def parameter_changes(config: dict) -> list[tuple[str, str, Any, Any]]:
    """(rule, key, baseline value, rule value) for every setting that differs from the baseline's."""
    rules = config["rules"]
    base = _flatten({k: v for k, v in rules[0].items() if k != "name"})
    out = []
    for r in rules[1:]:
        flat = _flatten({k: v for k, v in r.items() if k != "name"})
        for key in sorted(set(base) | set(flat)):
            if base.get(key) != flat.get(key):
                out.append((r["name"], key, base.get(key), flat.get(key)))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.2f}"
    return str(v)


def _mfmt(metric: str, v: Any) -> str:
    """A metric value: counts as whole numbers."""
    if v is not None and metric in COUNT_METRICS and isinstance(v, float) and math.isfinite(v):
        return f"{int(round(v)):,}"
    return _fmt(v)


def _pct(new: float | None, old: float | None) -> str:
    if new is None or old is None or old == 0:
        return "—"
    return f"{(new - old) / abs(old) * 100:+.1f} %"


# -- charts ----------------------------------------------------------------------------------------------
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _timeseries_charts(ts_rows: list[tuple], rules: list[str], scenario: str) -> list[Chart]:
    plt = _plt()
    by: dict[str, list[tuple]] = {}
    for rule, ts, bad, liqs, _, _ in ts_rows:
        by.setdefault(rule, []).append((ts, bad, liqs))
    out = []
    for what, idx, title in (("bad_debt", 1, "Bad debt over time (USD, realised + unrealised)"),
                             ("liquidations", 2, "Liquidation calls per step")):
        fig, ax = plt.subplots(figsize=(9, 3.6))
        for rule in rules[:MAX_RULE_COLUMNS]:
            pts = by.get(rule, [])
            if pts:
                ax.plot([p[0] for p in pts], [p[idx] for p in pts], label=rule, linewidth=1.3)
        ax.set_title(f"{title} — scenario {scenario}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.autofmt_xdate()
        out.append(Chart(what, title, _png(fig)))
    return out


def _hf_chart(hf_rows: list[tuple], end_rows: list[tuple], rules: list[str], scenario: str) -> Chart | None:
    if not hf_rows and not end_rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    bins = np.linspace(0.5, 3.0, 51)
    for ax, rows, when in ((axes[0], hf_rows, "at the start (snapshot)"), (axes[1], end_rows, f"at the end ({scenario})")):
        for rule in rules[:MAX_RULE_COLUMNS]:
            hf = np.array([r[4] for r in rows if r[0] == rule and r[4] is not None], dtype=float)
            if len(hf):
                ax.hist(np.clip(hf, 0.5, 3.0), bins=bins, histtype="step", label=rule, linewidth=1.2)
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(f"Health factor of indebted accounts {when}", fontsize=9)
        ax.set_xlabel("health factor (clipped to 0.5–3)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accounts")
    axes[0].legend(fontsize=7, ncol=2)
    return Chart("health_factors", "Health factors at the start and the end", _png(fig))


def _at_risk_chart(metrics: dict, hf_rows: list[tuple], rules: list[str]) -> tuple[Chart | None, str]:
    """Liquidations / bad debt at risk vs price drop: from a shock-grid when the run has one, else from the
    snapshot at the start (every collateral −d, debt unchanged: an approximation)."""
    plt = _plt()
    grid = {}
    for (rule, scenario), m in metrics.items():
        if "@" in scenario:
            try:
                move = float(scenario.rsplit("@", 1)[1])
            except ValueError:
                continue
            grid.setdefault(rule, []).append((-move, m.get("liquidated_debt_usd"), m.get("bad_debt_usd")))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    if grid:
        for rule in rules[:MAX_RULE_COLUMNS]:
            pts = sorted(grid.get(rule, []))
            if pts:
                ax.plot([p[0] * 100 for p in pts], [p[1] or 0 for p in pts], marker="o", label=f"{rule}: liquidated")
                ax.plot([p[0] * 100 for p in pts], [p[2] or 0 for p in pts], marker="x", linestyle="--",
                        label=f"{rule}: bad debt")
        note = "replayed on the run's shock-grid scenarios"
    else:
        drops = np.linspace(0, 0.5, 26)
        for rule in rules[:MAX_RULE_COLUMNS]:
            rows = [(r[2], r[3]) for r in hf_rows if r[0] == rule]
            if not rows:
                continue
            w = np.array([a for a, _ in rows], dtype=float)
            d = np.array([b for _, b in rows], dtype=float)
            lar = [float(d[w * (1 - x) < d].sum()) for x in drops]
            ax.plot(drops * 100, lar, label=rule)
        note = "from the snapshot at the start: every collateral falls by the drop, debt unchanged (approximation)"
    ax.set_title("Debt at risk as prices fall")
    ax.set_xlabel("price drop (%)")
    ax.set_ylabel("USD")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return Chart("at_risk", "Debt at risk vs price drop", _png(fig)), note


def _scenario_chart(metrics: dict, rules: list[str]) -> Chart | None:
    per: dict[str, list[float]] = {}
    for (rule, scenario), m in metrics.items():
        if scenario != "*" and m.get("bad_debt_usd") is not None:
            per.setdefault(rule, []).append(m["bad_debt_usd"])
    shown = [r for r in rules if len(per.get(r, [])) >= 2][:MAX_RULE_COLUMNS]
    if not shown:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.boxplot([per[r] for r in shown], tick_labels=shown, showmeans=True)
    ax.set_title("Bad debt across scenarios (USD)")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.grid(alpha=0.3)
    return Chart("scenarios", "Bad debt across scenarios", _png(fig))


def _frontier_chart(metrics: dict, rules: list[str], points: dict) -> Chart | None:
    if not points:
        return None
    plt = _plt()
    ymetric = "var_99_bad_debt_usd" if any(s == "*" for _, s in metrics) else "bad_debt_usd"
    xs, ys, names = [], [], []
    for rule in rules:
        star = metrics.get((rule, "*"), {})
        hist = metrics.get((rule, "historical")) or next((m for (r, s), m in metrics.items() if r == rule and s != "*"), {})
        x, y = hist.get("capital_efficiency"), star.get(ymetric, hist.get(ymetric))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
            names.append(rule)
    if not xs:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(xs, ys, s=14)
    if names and names[0] == rules[0]:
        ax.scatter(xs[:1], ys[:1], s=50, marker="*", color="black", label=f"base {rules[0]}")
    ax.set_xlabel("capital_efficiency")
    ax.set_ylabel(ymetric)
    ax.set_title("Sweep: capital efficiency vs risk")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return Chart("frontier", "Sweep frontier", _png(fig))


# -- building ----------------------------------------------------------------------------------------------
def build_report(store, run_id: str, *, top: int = 10) -> Report:
    (row,) = store.rows("report_run", run_id=run_id)
    rid, name, created, config_json, config_hash, fingerprint, version, engine, steps, accounts, assets, command = row
    config = json.loads(config_json)
    rules = [r["name"] for r in config["rules"]]
    kinds = {r["name"]: r.get("kind", "asset") for r in config["rules"]}
    metrics: dict[tuple[str, str], dict[str, float | None]] = {}
    for rule, _, scenario, metric, value in store.rows("report_metrics", run_id=run_id):
        metrics.setdefault((rule, scenario), {})[metric] = None if value is None else float(value)
    scenarios = sorted({s for _, s in metrics if s != "*"}, key=lambda s: (s != "historical", s))
    main = "historical" if "historical" in scenarios else scenarios[0]
    points = {}
    for rule, key, value in store.rows("sweep_points_of", run_id=run_id):
        points.setdefault(rule, {})[key] = value
    base = rules[0]
    rep = Report(f"Risk report — {name}")

    # summary
    bm = metrics.get((base, main), {})
    lines = []
    others = rules[1:] if len(rules) <= 9 else sorted(rules[1:], key=lambda r: metrics.get((r, main), {}).get(
        "bad_debt_usd") or 0)[:5]
    for r in others:
        m = metrics.get((r, main), {})
        lines.append(f"**{r}** ({kinds[r]}): bad debt {_fmt(m.get('bad_debt_usd'))} USD "
                     f"({_pct(m.get('bad_debt_usd'), bm.get('bad_debt_usd'))} vs {base}), "
                     f"{_mfmt('liquidations', m.get('liquidations'))} liquidations, borrowing power "
                     f"{_pct(m.get('borrowing_power_usd'), bm.get('borrowing_power_usd'))}.")
    changed = parameter_changes(config)
    head = (f"Run `{rid}` replays {accounts:,} accounts × {len(assets)} assets × {steps:,} steps "
            f"({config['run']['start']} → {config['run']['end']}) under {len(rules)} rule set(s) on "
            f"{len(scenarios)} scenario(s). Baseline **{base}**: bad debt {_fmt(bm.get('bad_debt_usd'))} USD, "
            f"{_mfmt('liquidations', bm.get('liquidations'))} liquidations, borrowing power {_fmt(bm.get('borrowing_power_usd'))} USD. "
            f"{len(changed)} parameter(s) differ from the baseline across the other rule sets.")
    if len(rules) > 9:
        head += f" The {len(others)} rule sets with the least bad debt on {main}:"
    rep.sections.append(("Summary", [head, ("list", lines)]))

    # metrics side by side
    shown = rules[:MAX_RULE_COLUMNS]
    mrows = [[m] + [_mfmt(m, metrics.get((r, main), {}).get(m)) for r in shown] for m in METRICS
             if m not in MODEL_METRICS or any(metrics.get((r, main), {}).get(m) is not None for r in shown)]
    blocks: list[Any] = [f"Scenario `{main}`" + (f"; the first {MAX_RULE_COLUMNS} of {len(rules)} rule sets."
                                                  if len(rules) > MAX_RULE_COLUMNS else "."),
                         ("table", ["metric"] + shown, mrows)]
    rep.sections.append(("Metrics side by side", blocks))

    # across scenarios
    if any(s == "*" for _, s in metrics):
        arows = [[m] + [_fmt(metrics.get((r, "*"), {}).get(m)) for r in shown] for m in ACROSS_METRICS]
        rep.sections.append(("Across scenarios", [
            f"{len(scenarios)} scenarios: VaR_α = the ⌈αN⌉-th smallest scenario bad debt, ES_α = the mean of "
            f"the losses ≥ VaR_α, LaR = the same quantile of liquidated debt.",
            ("table", ["metric"] + shown, arows)]))

    # charts
    ts_rows = store.rows("report_timeseries", run_id=run_id, scenario=main)
    rep.charts += _timeseries_charts(ts_rows, rules, main)
    hf_rows = store.rows("report_hf_start", run_id=run_id)
    end_rows = store.rows("report_hf_end", run_id=run_id, scenario=main) if store.table_exists("account_states") else []
    hf = _hf_chart(hf_rows, end_rows, rules, main)
    if hf:
        rep.charts.append(hf)
    risk, note = _at_risk_chart(metrics, hf_rows, rules)
    if risk:
        rep.charts.append(risk)
    sc = _scenario_chart(metrics, rules)
    if sc:
        rep.charts.append(sc)
    fr = _frontier_chart(metrics, rules, points)
    if fr:
        rep.charts.append(fr)
    rep.sections.append(("Charts", [("charts", [c.name for c in rep.charts]), f"Debt at risk: {note}."]))

    # parameters
    rows = [(r, k, _fmt(b), _fmt(v)) for r, k, b, v in changed]
    rep.sections.append(("Current → proposed parameters",
                         [f"Every setting that differs from the baseline `{base}` (fractions; bonus 0.05 = 5 %)."
                          if rows else "All rule sets have the baseline's parameters.",
                          ("table", ["rule set", "parameter", f"current ({base})", "proposed"], rows[:400])]))

    # most affected accounts
    acc = store.rows("report_top_accounts", run_id=run_id, scenario=main, n=top)
    arows = [(a, r, _fmt(c), _fmt(d), _fmt(p)) for a, r, c, d, p in acc]
    affected: list[Any] = [
        f"The {top} accounts that paid the most liquidation penalty on `{main}`, with every rule set that "
        f"liquidated them.", ("table", ["account", "rule set", "calls", "debt repaid USD", "penalty USD"], arows)]
    if store.table_exists("account_states"):
        bad = store.rows("report_top_bad_debt", run_id=run_id, scenario=main, n=top)
        if bad:
            affected += [f"The {top} accounts left with the most bad debt at the end of `{main}` (written off first, "
                         f"then by unrealised bad debt), under every rule set that leaves them owing.",
                         ("table", ["account", "rule set", "debt USD", "unrealised bad debt USD", "written off"],
                          [(a, r, _fmt(d), _fmt(u), _fmt(bool(w))) for a, r, d, u, w in bad])]
    rep.sections.append(("Most affected accounts", affected))

    # methodology
    market = config["rules"][0].get("market", {})
    model = market.get("liquidation", "aave")
    used_kinds = sorted(set(kinds.values()))
    meth = [f"Liquidation model `{model}`: {MODEL_TEXT.get(model, 'see docs/reference.md.')}",
            ("list", [f"kind `{k}`: {KIND_TEXT.get(k, 'see docs/rules.md.')}" for k in used_kinds]),
            f"Horizon: {config['run']['start']} → {config['run']['end']}, {steps:,} grid steps; metrics per DESIGN §5."]
    if config.get("scenarios"):
        meth.append(("list", [f"scenario `{s['name']}` ({s['kind']}): " + ", ".join(
            f"{k} = {v}" for k, v in s.items() if k not in ("name", "kind")) for s in config["scenarios"]]))
    rep.sections.append(("Methodology", meth))

    # provenance
    prows = [(a, s, _fmt(n), str(f), str(last), _fmt(b0) if b0 is not None else "—",
              _fmt(b1) if b1 is not None else "—") for a, s, n, f, last, b0, b1 in
             store.rows("report_prices", assets=list(assets))]
    npos, nacc, nev, e0, e1 = store.rows("report_counts")[0]
    prov: list[Any] = [("table", ["asset", "source", "rows", "first", "last", "first block", "last block"], prows),
                       f"Snapshot: {npos:,} position rows of {nacc:,} accounts; ledger: {nev:,} events "
                       f"({e0} → {e1}). Data fingerprint `{fingerprint}` (a hash of every row the run read)."]
    if store.table_exists("rpc_feeds"):
        feeds = store.rows("report_endpoints")
        if feeds:
            prov.append(("table", ["source", "contract", "label", "first block", "endpoint (redacted)"],
                         [tuple(_fmt(x) for x in f) for f in feeds]))
    rep.sections.append(("Data provenance", prov))

    # reproducibility
    rep.sections.append(("Reproducibility", [
        f"mbt {version}, engine `{engine}`, run_id `{rid}`, config hash `{config_hash}`, created {created}.",
        "The command that made it, and its config (canonical form); on the same data a re-run gives the same "
        "run_id (a hash of the config and the data fingerprint):",
        ("code", "sh", command or "mbt run CONFIG.toml    # the config below, saved as CONFIG.toml"),
        ("code", "json", json.dumps(config, indent=1, sort_keys=True))]))
    return rep


# -- rendering ------------------------------------------------------------------------------------------------
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1b1f24;line-height:1.45}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0;font-size:.85em;display:block;overflow-x:auto}th,td{border:1px solid #ccc;
padding:.25em .5em;text-align:left}td.n,th.n{text-align:right}th{background:#f3f4f6}
img{max-width:100%;display:block;margin:.8em 0}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.8em}
@media print{body{max-width:none}h2{page-break-after:avoid}img{page-break-inside:avoid}}"""


def to_markdown(rep: Report, image_dir: str = ".") -> str:
    out = [f"# {rep.title}", ""]
    for heading, blocks in rep.sections:
        out += [f"## {heading}", ""]
        for b in blocks:
            if isinstance(b, str):
                out += [b, ""]
            elif b[0] == "list":
                out += [f"- {x}" for x in b[1]] + [""]
            elif b[0] == "table":
                headers, rows = b[1], b[2]
                out.append("| " + " | ".join(h.replace("|", "\\|") for h in headers) + " |")
                out.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
                out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("")
            elif b[0] == "charts":
                for c in rep.charts:
                    out += [f"![{c.title}]({image_dir}/{c.name}.png)", ""]
            elif b[0] == "code":
                out += [f"```{b[1]}", b[2], "```", ""]
    return "\n".join(out)


def _html_text(text: str) -> str:
    esc = html.escape(text)
    esc = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", esc)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc)


def _num_class(cell: Any) -> str:
    text = str(cell).replace(",", "").replace(" %", "").replace("+", "").replace("-", "", 1)
    try:
        float(text)
    except ValueError:
        return ""
    return ' class="n"'


def to_html(rep: Report) -> str:
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">",
             f"<title>{html.escape(rep.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(rep.title)}</h1>"]
    for heading, blocks in rep.sections:
        anchor = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        parts.append(f"<h2 id=\"{anchor}\">{html.escape(heading)}</h2>")
        for b in blocks:
            if isinstance(b, str):
                parts.append(f"<p>{_html_text(b)}</p>")
            elif b[0] == "list":
                parts.append("<ul>" + "".join(f"<li>{_html_text(x)}</li>" for x in b[1]) + "</ul>")
            elif b[0] == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in b[1])
                body = "".join("<tr>" + "".join(f"<td{_num_class(c)}>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                               for r in b[2])
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif b[0] == "charts":
                for c in rep.charts:
                    data = base64.b64encode(c.png).decode()
                    parts.append(f"<img alt=\"{html.escape(c.title)}\" src=\"data:image/png;base64,{data}\">")
            elif b[0] == "code":
                parts.append(f"<pre><code>{html.escape(b[2])}</code></pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(rep: Report, out_dir: Path, fmt: str) -> Path:
    """``out_dir/report.html`` (self-contained) or ``out_dir/report.md`` plus one PNG per chart beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        path = out_dir / "report.html"
        text = to_html(rep)
    else:
        for c in rep.charts:
            (out_dir / f"{c.name}.png").write_bytes(c.png)
        path = out_dir / "report.md"
        text = to_markdown(rep)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
