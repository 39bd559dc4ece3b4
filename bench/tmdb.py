"""The model on real TMDB films, judged forward in time against two simple references.

Collects ../shared/data/tmdb-dev.jsonl.gz (real films up to 2011) once through the TMDB double
(tests/tmdb_server.py, the real `collect` stage as a subprocess), prepares it with snapshot
2012-12-31 and test_years 4 (train: mature films up to 2007; test: 2008-2011), fits the model
with params.yaml's `train:` section and prints, side by side:

- the model: ROC AUC (success) and RMSLE (revenue) on the test years;
- (a) a least-squares line of log revenue on log budget (BudgetLinear): its RMSLE;
- (b) a plain HistGradientBoostingClassifier on log budget, year, month, runtime and genres
  (multi-hot): its ROC AUC;
- checks: no keyword count among the features, no sequel flag from the collection on a
  franchise's first film, the largest |correlation| of a feature with the label.

Targets: model ROC AUC >= (b) + 0.03; model RMSLE <= (a) - 0.08.

    python -m bench tmdb        # or: make bench (runs every benchmark)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from stages.core.params import load_section
from stages.model.baselines import BudgetLinear
from stages.model.features import log_budget
from stages.model.fit import label_correlations, log_revenue, single_thread, train
from stages.model.params import TrainParams
from stages.prepare import PrepareParams, prepare
from tests.require import TMDB_DEV
from tests.support import ROOT, tool_env
from tests.tmdb_server import FakeTmdb

SECRET = "bench-tmdb-token"
SNAPSHOT = dt.date(2012, 12, 31)
TEST_YEARS = 4
AUC_MARGIN, RMSLE_MARGIN = 0.03, 0.08


def collect(tmp: Path, gte: str, rate_limit: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The real collect stage against the double serving tmdb-dev; (records, summary)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["collect"].update(
        source="tmdb",
        release_date_gte=gte,
        release_date_lte=SNAPSHOT.isoformat(),
        rate_limit=rate_limit,
        concurrency=8,
    )
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp / "out"
    with FakeTmdb.from_jsonl(TMDB_DEV, SECRET) as tmdb:
        env = tool_env({"TMDB_API_BASE_URL": tmdb.url, "TMDB_API_TOKEN": SECRET})
        env.pop("TMDB_API_KEY", None)
        env.pop("PUSHGATEWAY_URL", None)
        cmd = [sys.executable, "-m", "stages.collect", "--params", str(tmp / "params.yaml")]
        cmd += ["--sample", str(ROOT / "data/sample/movies.json.gz")]
        cmd += ["--output", str(out / "movies.jsonl"), "--summary", str(out / "summary.json")]
        cmd += ["--cache", str(tmp / "cache")]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"collect failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = (out / "movies.jsonl").read_text().splitlines()
    summary: dict[str, Any] = json.loads((tmp / "cache" / "last_run.json").read_text())
    return [json.loads(x) for x in lines], summary


def rmsle(target: np.ndarray, predicted: np.ndarray) -> float:
    """Root mean squared error in log(1 + revenue): the RMSLE of the revenue."""
    return float(np.sqrt(np.mean((np.asarray(predicted) - target) ** 2)))


def plain_matrix(df: pd.DataFrame, genres: list[str]) -> np.ndarray:
    """(b)'s inputs: log budget, year, month, runtime, genres multi-hot."""
    dates = pd.to_datetime(df["release_date"])
    cols = [
        log_budget(df),
        dates.dt.year.to_numpy(float),
        dates.dt.month.to_numpy(float),
        pd.to_numeric(df["runtime"], errors="coerce").to_numpy(float),
    ]
    cols += [df["genres"].map(lambda gs, g=g: float(g in gs)).to_numpy() for g in genres]
    return np.column_stack(cols)


def first_film_flags(model: Any, df: pd.DataFrame) -> tuple[int, int]:
    """(franchises, first films flagged as sequels) among films with a TMDB collection; the
    title-based sequel flag is left out (a first film can be named "Part 1")."""
    with_coll = df[df["collection"].notna()]
    if with_coll.empty:
        return 0, 0
    first = with_coll.sort_values(["release_date", "id"]).groupby("collection").head(1)
    first = first[~first["is_sequel"].astype(bool)]
    flags = model.features.frame(first)["is_sequel"].to_numpy()
    return int(with_coll["collection"].nunique()), int((flags > 0).sum())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--gte", default="1980-01-01", help="collect.release_date_gte")
    p.add_argument("--rate-limit", type=float, default=2000.0, help="against the double")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tmdb.json")
    a = p.parse_args(argv)
    if not TMDB_DEV.is_file():
        print(f"bench.tmdb: skipped, {TMDB_DEV} is absent (real films live in ../shared/data)")
        return 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        records, collected = collect(Path(d), a.gte, a.rate_limit)
    t_collect = time.monotonic() - t0

    pparams = load_section(PrepareParams, "prepare", ROOT / "params.yaml")
    pparams = dataclasses.replace(pparams, test_years=TEST_YEARS)
    tparams = load_section(TrainParams, "train", ROOT / "params.yaml")
    prepared = prepare(records, pparams, SNAPSHOT)
    tr, te = prepared.train, prepared.test
    y_tr, y_te = tr["success"].to_numpy(), te["success"].to_numpy()
    t1 = time.monotonic()
    with single_thread():
        model = train(tr, tparams)
        X_te = model.encode(te)
        proba = model.success_probability(X_te)
        pred_log_rev = model.log_revenue(X_te)
        target = log_revenue(te)
        linear = BudgetLinear().fit(tr, log_revenue(tr))
        genres = sorted({g for gs in tr["genres"] for g in gs})
        plain = HistGradientBoostingClassifier(random_state=tparams.seed)
        plain.fit(plain_matrix(tr, genres), y_tr)
        proba_plain = plain.predict_proba(plain_matrix(te, genres))[:, 1]
    t_fit = time.monotonic() - t1

    names = [str(n) for n in model.features.get_feature_names_out()]
    frame_tr, frame_te = model.features.frame(tr), model.features.frame(te)
    corr_tr = label_correlations(frame_tr, y_tr)
    corr_te = label_correlations(frame_te, y_te)
    top_tr = max(corr_tr.items(), key=lambda kv: kv[1])
    top_te = max(corr_te.items(), key=lambda kv: kv[1])
    franchises, flagged = first_film_flags(model, pd.concat([tr, te], ignore_index=True))
    known_sm = tr["source_material"].notna()

    res = {
        "films_collected": collected["movies"],
        "train": {"rows": len(tr), "years": [int(tr["release_date"].dt.year.min()), 2007]},
        "test": {"rows": len(te), "years": [2008, int(te["release_date"].dt.year.max())]},
        "base_rate": {"train": round(float(y_tr.mean()), 4), "test": round(float(y_te.mean()), 4)},
        "model": {
            "roc_auc": round(float(roc_auc_score(y_te, proba)), 4),
            "rmsle": round(rmsle(target, pred_log_rev), 4),
        },
        "a_linear_log_budget_rmsle": round(rmsle(target, linear.predict(te)), 4),
        "b_plain_hgb_roc_auc": round(float(roc_auc_score(y_te, proba_plain)), 4),
        "checks": {
            "keyword_features": [n for n in names if "keyword" in n],
            "franchises": franchises,
            "first_films_flagged_sequel": flagged,
            "max_abs_corr_train": [top_tr[0], round(top_tr[1], 4)],
            "max_abs_corr_test": [top_te[0], round(top_te[1], 4)],
            "source_material_known_train": round(float(known_sm.mean()), 4),
            "success_rate_source_known": round(float(y_tr[known_sm.to_numpy()].mean()), 4),
            "success_rate_source_unknown": round(float(y_tr[~known_sm.to_numpy()].mean()), 4),
        },
        "features": names,
        "seconds": {"collect": round(t_collect, 1), "fit_and_score": round(t_fit, 1)},
    }
    m, ra, rb = res["model"], res["a_linear_log_budget_rmsle"], res["b_plain_hgb_roc_auc"]
    auc_ok = m["roc_auc"] >= rb + AUC_MARGIN
    rmsle_ok = m["rmsle"] <= ra - RMSLE_MARGIN
    res["targets_met"] = {"roc_auc": auc_ok, "rmsle": rmsle_ok}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    c = res["checks"]
    print(f"bench.tmdb: {res['films_collected']} real TMDB films collected through the double")
    print(
        f"  forward split, snapshot {SNAPSHOT}: train {len(tr)} films "
        f"({res['train']['years'][0]}-2007), test {len(te)} films (2008-2011); "
        f"base rate {res['base_rate']['train']:.3f} / {res['base_rate']['test']:.3f}"
    )
    print("                                   ROC AUC    RMSLE")
    print(f"  model                             {m['roc_auc']:7.4f}  {m['rmsle']:7.4f}")
    print(f"  (a) linear on log budget                -  {ra:7.4f}")
    print(f"  (b) plain HGB (budget/date/genres) {rb:7.4f}        -")
    print(
        f"  target ROC AUC >= (b) + {AUC_MARGIN}: {rb + AUC_MARGIN:.4f}  "
        f"{'met' if auc_ok else 'NOT MET'} ({m['roc_auc'] - rb:+.4f})"
    )
    print(
        f"  target RMSLE <= (a) - {RMSLE_MARGIN}: {ra - RMSLE_MARGIN:.4f}  "
        f"{'met' if rmsle_ok else 'NOT MET'} ({m['rmsle'] - ra:+.4f})"
    )
    print(f"  keyword features: {c['keyword_features'] or 'none'}")
    print(
        f"  collection flag on a first film: {flagged} of {franchises} franchises"
        + (" (no film of this data has a collection)" if not franchises else "")
    )
    print(
        f"  max |corr(feature, label)|: train {top_tr[1]:.3f} ({top_tr[0]}), "
        f"test {top_te[1]:.3f} ({top_te[0]})"
    )
    print(
        f"  source_material known for {c['source_material_known_train']:.1%} of train films; "
        f"success rate {c['success_rate_source_known']:.3f} known vs "
        f"{c['success_rate_source_unknown']:.3f} unknown"
    )
    print(f"  {t_collect:.1f} s collect, {t_fit:.1f} s fit and score; {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
