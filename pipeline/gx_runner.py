"""Run `pipeline.expectations` suites with Great Expectations 1.x and read the results back.

Great Expectations is imported inside `run_suites` only (it takes seconds to import). Each job
is one suite on one pandas table: an ephemeral context, a pandas data source with one dataframe
asset per table, a ValidationDefinition per suite. Data Docs (a static HTML site) are built
into a directory when one is given. Results come back as plain JSON (`suite_outcome`), with up
to `examples` offending values per failed expectation, each with its row id.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from pipeline.expectations import Expect, SuiteSpec

MAX_EXAMPLE_CHARS = 160  # offending text values are cut to this length in reports


@dataclass(frozen=True)
class SuiteJob:
    """One suite run against one table."""

    suite: SuiteSpec
    source: str  # path of the table, shown in results and messages
    data: pd.DataFrame


def run_suites(jobs: list[SuiteJob], docs_dir: Path | None, examples: int) -> dict[str, dict]:
    """Run every job's suite with Great Expectations; build Data Docs into `docs_dir`.

    Returns suite name -> outcome (see `suite_outcome`).
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home
    import great_expectations as gx

    # this GX module sets its own logger to INFO on import (a line per ephemeral context)
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = _context(gx, docs_dir)
    source = context.data_sources.add_pandas("tables")
    outcomes = {}
    for job in tqdm(jobs, desc="validate", unit="suite"):
        name = job.suite.name
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("table")
        suite = context.suites.add(gx.ExpectationSuite(
            name=name, expectations=[_expectation(gx, e) for e in job.suite.expectations]))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": job.data},
                                result_format=result_format(job.data, examples))
        outcomes[name] = suite_outcome(job, result.to_json_dict(), examples)
    if docs_dir is not None:
        context.build_data_docs()
    return outcomes


def _context(gx, docs_dir: Path | None):
    """Ephemeral context, no progress bars, one Data Docs site at `docs_dir` (or none)."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    for site in context.get_docs_sites_urls(only_if_exists=False):  # default: a temp dir
        context.delete_data_docs_site(site["site_name"])
    if docs_dir is not None:
        shutil.rmtree(docs_dir, ignore_errors=True)  # no pages left from an earlier run
        context.add_data_docs_site(site_name="validation", site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(docs_dir.resolve())},
        })
    return context


def _expectation(gx, e: Expect):
    """The GX expectation object of one `Expect` record."""
    from great_expectations.expectations.row_conditions import Column

    kwargs = dict(e.kwargs, description=e.description)
    if e.when is not None:
        kwargs["row_condition"] = Column(e.when[0]) == e.when[1]
    return getattr(gx.expectations, e.type)(**kwargs)


def result_format(df: pd.DataFrame, examples: int) -> dict:
    fmt = {"result_format": "SUMMARY", "partial_unexpected_count": examples}
    if "id" in df.columns:
        fmt["unexpected_index_column_names"] = ["id"]  # examples name the row's id
    return fmt


def suite_outcome(job: SuiteJob, result: dict, examples: int) -> dict:
    """Plain-JSON outcome of one suite from a GX validation result (`to_json_dict()`)."""
    failures = [failure(r, job.data.columns, examples) for r in result["results"]
                if not r["success"]]
    stats = result["statistics"]
    return {
        "table": job.source,
        "rows": len(job.data),
        "success": bool(result["success"]),
        "evaluated": int(stats["evaluated_expectations"]),
        "passed": int(stats["successful_expectations"]),
        "failed": int(stats["unsuccessful_expectations"]),
        "failures": failures,
    }


def failure(r: dict, columns, examples: int) -> dict:
    """One failed expectation: name, column, description, rows, sample offending values."""
    config, res = r["expectation_config"], r.get("result") or {}
    kwargs = config["kwargs"]
    column = kwargs.get("column") or ",".join(
        kwargs[k] for k in ("column_A", "column_B") if k in kwargs)
    out = {"expectation": config["type"], "column": column or None,
           "description": config.get("description") or config["type"]}
    missing = [c for c in column.split(",") if c and c not in columns] if column else []
    if missing:
        out["error"] = f"column {', '.join(missing)} is missing"
    elif (r.get("exception_info") or {}).get("raised_exception"):
        out["error"] = str(r["exception_info"]["exception_message"])
    if "unexpected_count" in res:
        out["rows"] = int(res["unexpected_count"])
        out["examples"] = _examples(res, column, examples)
    elif "observed_value" in res:
        out["observed"] = json_safe(res["observed_value"])
    return out


def _examples(res: dict, column: str | None, limit: int) -> list:
    by_id = res.get("partial_unexpected_index_list") or []
    if by_id and isinstance(by_id[0], dict) and "id" in by_id[0]:
        values = [{"id": json_safe(row.get("id")), "value": _value(row, column)} for row in by_id]
    else:
        values = [json_safe(v) for v in res.get("partial_unexpected_list") or []]
    return values[:limit]


def _value(row: dict, column: str | None) -> Any:
    if column and "," in column:
        return [json_safe(row.get(c)) for c in column.split(",")]
    return json_safe(row.get(column)) if column else None


def json_safe(value: Any) -> Any:
    """Cut long strings; inf/nan (not JSON) become strings; containers recursively."""
    if isinstance(value, str):
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
        return value if len(value) <= MAX_EXAMPLE_CHARS else value[:MAX_EXAMPLE_CHARS] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return json_safe(value.item())
    return value
