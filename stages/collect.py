"""DVC stage `collect`: gather movies from the configured source as normalized records (JSONL)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from stages.core.cli import UserError, run
from stages.core.io import staged_outputs, write_json
from stages.core.params import load_section
from stages.core.pushgateway import record
from stages.sources.jsonl import write_records
from stages.sources.params import CollectParams
from stages.sources.sample import map_sample, read_sample
from stages.sources.tmdb.collect import collect_tmdb

log = logging.getLogger(__name__)

LAST_RUN = "last_run.json"  # in the TMDB cache directory: the summary with the run's traffic


def main(argv: Sequence[str] | None = None) -> int:
    """Read params and paths, collect from `collect.source`, write the records and summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sample", type=Path, required=True, help="bundled sample (JSON, gzip)")
    parser.add_argument("--output", type=Path, required=True, help="normalized records (JSONL)")
    parser.add_argument("--summary", type=Path, required=True, help="collection summary (JSON)")
    parser.add_argument(
        "--cache", type=Path, help="TMDB cache directory, kept between runs (source tmdb)"
    )
    args = parser.parse_args(argv)
    params = load_section(CollectParams, "collect", args.params)

    if params.source == "tmdb":
        if args.cache is None:
            raise UserError("collect: source 'tmdb' needs --cache DIR (see dvc.yaml)")
        with staged_outputs(args.output, args.summary) as (output, summary_path):
            summary = collect_tmdb(params, args.cache, output, os.environ)
            write_json(summary_path, {k: v for k, v in summary.items() if k != "run"})
        # The run's traffic is not an output (it changes on every run): it goes to the cache.
        write_json(args.cache / LAST_RUN, summary)
        record(rows=summary["movies"])  # the Pushgateway's rows figure, as for the sample
        return 0
    records = map_sample(read_sample(args.sample), str(args.sample))
    with staged_outputs(args.output, args.summary) as (output, summary_path):
        n = write_records(output, records)
        write_json(summary_path, {"source": "sample", "sample": args.sample.name, "movies": n})
    record(rows=n)
    log.info("collect: wrote %s movies from %s to %s", n, params.source, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
