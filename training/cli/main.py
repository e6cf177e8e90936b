"""The ``smartretry`` command: one subcommand per pipeline stage.

Commands stay thin: they parse options, call one function of the package and print
what happened. Heavy imports happen inside the commands so ``smartretry --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar, cast

import typer

from training.cli.declines import app as declines_app
from training.cli.keys import app as keys_app

app = typer.Typer(
    name="smartretry",
    help="Learn when to retry failed payments and which dunning message to send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(declines_app, name="declines")
app.add_typer(keys_app, name="keys")

ParamsOption = Annotated[
    Path | None, typer.Option("--params", help="params.yaml to read (default: ./params.yaml)")
]


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="folder for the history")],
    invoices: Annotated[int | None, typer.Option(help="invoices to simulate")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet or csv (default: params.yaml)")
    ] = None,
    truth_out: Annotated[
        Path | None,
        typer.Option("--truth-out", help="folder for the ground truth (default: OUT-truth)"),
    ] = None,
    world: Annotated[
        str | None,
        typer.Option("--world", help="a world of the zoo (default: params.yaml, 'default')"),
    ] = None,
    partitions: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="write the partitioned layout in this many parts, one block of customers "
            "at a time (docs/scale.md)",
        ),
    ] = None,
    params: ParamsOption = None,
) -> None:
    """Simulate a history of failed payments in the data contract, and its ground truth."""
    from training.config.params import load_params
    from training.simulator.run import run_simulation
    from training.simulator.zoo import WORLDS

    settings = load_params(params).simulate
    overrides = {
        k: v
        for k, v in {"invoices": invoices, "seed": seed, "format": fmt, "world": world}.items()
        if v is not None
    }
    settings = settings.model_copy(update=overrides)
    if settings.format not in ("parquet", "csv"):
        raise typer.BadParameter("--format must be parquet or csv")
    if settings.world not in WORLDS:
        raise typer.BadParameter(
            f"unknown world {settings.world!r}; expected one of {', '.join(WORLDS)}",
            param_hint="'--world'",
        )
    if partitions is not None:
        from training.simulator.partitioned import run_partitioned_simulation
        from training.simulator.zoo import zoo_world

        if partitions > settings.invoices:
            raise typer.BadParameter(
                f"cannot exceed --invoices ({settings.invoices})", param_hint="'--partitions'"
            )
        chosen = zoo_world(settings.world)
        truth = truth_out or out.with_name(out.name + "-truth")
        summary = run_partitioned_simulation(
            settings, out, partitions, truth, chosen.world, chosen.policy
        )
    else:
        summary = run_simulation(settings, out, truth_out)
    typer.echo(summary)


@app.command()
def validate(
    data: Annotated[Path, typer.Option("--data", help="history folder (data contract)")],
    rejects: Annotated[
        Path | None,
        typer.Option(help="rejects file to write (default: DATA/rejects/rejects.csv)"),
    ] = None,
    max_reject_share: Annotated[
        float | None, typer.Option(help="fail above this share of rejected rows")
    ] = None,
    params: ParamsOption = None,
) -> None:
    """Check a history against the data contract; write rejected rows with reasons."""
    from training.config.params import load_params
    from training.contract.validate import ContractError, validate_folder

    settings = load_params(params).validate_
    if max_reject_share is not None:
        settings = settings.model_copy(update={"max_reject_share": max_reject_share})
    try:
        report = validate_folder(data, settings, rejects_path=rejects)
    except ContractError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from error
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(code=1)


@app.command("import")
def import_history(
    source: Annotated[str, typer.Argument(help="stripe, adyen, lago, chargebee or recurly")],
    events: Annotated[
        Path,
        typer.Option("--in", help="saved events (Recurly: API objects): JSON lines, one per line"),
    ],
    out: Annotated[Path, typer.Option("--out", help="history folder to write (data contract)")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
) -> None:
    """Turn a billing system's saved events into a history (rejects: OUT/rejects/import_rejects.csv)."""
    from training.integrations.history_import import SOURCES, import_events

    if source not in SOURCES:
        raise typer.BadParameter(f"expected one of {', '.join(SOURCES)}", param_hint="SOURCE")
    if not events.is_file():
        raise typer.BadParameter(f"no such file {events}", param_hint="'--in'")
    typer.echo(import_events(source, events, out, fmt).summary())


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="history folder (data contract)")],
    model_dir: Annotated[
        Path, typer.Option("--model-dir", help="folder for the decision artifact")
    ] = Path("models"),
    metrics: Annotated[
        Path, typer.Option("--metrics", help="test metrics and timings (JSON)")
    ] = Path("reports/train_metrics.json"),
    plots_dir: Annotated[
        Path, typer.Option("--plots-dir", help="folder for the calibration and importance plots")
    ] = Path("reports/plots"),
    no_register: Annotated[
        bool,
        typer.Option("--no-register", help="log the MLflow run but do not register the model"),
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="train on Dask: local (a LocalCluster, a worker per core), local:N "
            "(N workers) or a scheduler address; needs the partitioned layout (docs/scale.md)"
        ),
    ] = None,
    params: ParamsOption = None,
) -> None:
    """Train the retry, message and self-cure models; write the artifact; track in MLflow.

    Runs go to MLFLOW_TRACKING_URI, else the local store sqlite:///mlflow.db (docs/training.md).
    """
    import logging
    import os

    # LightGBM's OpenMP threads spin while waiting; on a busy 2-core machine that made
    # the fits 5x slower (docs/training.md). Must be set before lightgbm is imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from training.config.params import load_params
    from training.pipeline.train_stage import TrainInputError, run_train

    class EchoHandler(logging.Handler):  # resolves stderr per message (works under CliRunner)
        def emit(self, record: logging.LogRecord) -> None:
            typer.echo(self.format(record), err=True)

    logger = logging.getLogger("training")
    if not any(type(h).__name__ == "EchoHandler" for h in logger.handlers):
        handler = EchoHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    settings = load_params(params)
    try:
        if cluster is None:
            outcome = run_train(
                data, model_dir, metrics, plots_dir, settings, register=not no_register
            )
        else:
            from training.scale.cluster import local_workers
            from training.scale.train import run_train_on_cluster

            try:
                local_workers(cluster)
            except ValueError as error:
                raise typer.BadParameter(str(error), param_hint="'--cluster'") from error
            outcome = run_train_on_cluster(
                data, model_dir, metrics, plots_dir, settings, cluster, register=not no_register
            )
    except TrainInputError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from error
    typer.echo(outcome.summary())


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="history folder (data contract)")],
    model: Annotated[
        str, typer.Option("--model", help="decision artifact folder or MLflow model URI")
    ],
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="ground-truth folder of a simulated history (exact scores)"),
    ] = None,
    metrics: Annotated[
        Path, typer.Option("--metrics", help="headline figures as JSON (DVC metrics)")
    ] = Path("reports/evaluate_metrics.json"),
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="Markdown report and plots")
    ] = Path("reports/evaluation"),
    params: ParamsOption = None,
) -> None:
    """Compare the learned policy with the baselines (and the oracle) on held-out data."""
    from training.config.params import load_params
    from training.contract.validate import ContractError
    from training.evaluation.run import evaluate_command

    settings = load_params(params)
    try:
        result = evaluate_command(data, model, truth, metrics, report_dir, settings)
    except (ContractError, FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from error
    m = result.metrics
    if "truth" in m:
        t = m["truth"]
        for name in ("learned", "fixed", "rules", "no_action", "oracle"):
            entry = t[f"{name}_recovery_rate"]
            typer.echo(
                f"{name:>10}: {100 * entry['value']:5.1f}%  "
                f"[{100 * entry['lower']:5.1f}, {100 * entry['upper']:5.1f}]"
            )
        c = t["captured_share"]
        typer.echo(
            f"captured share of the oracle's uplift: {100 * c['value']:.1f}% "
            f"[{100 * c['lower']:.1f}, {100 * c['upper']:.1f}]"
        )
    for name in ("ips", "snips", "dr"):
        e = m.get("off_policy", {}).get(name, {})
        if "cannot_estimate" in e:
            typer.echo(f"off-policy {name.upper():>5}: cannot estimate ({e['cannot_estimate']})")
        elif "value" in e:
            typer.echo(
                f"off-policy {name.upper():>5}: {100 * e['value']:5.1f}% "
                f"[{100 * e['lower']:5.1f}, {100 * e['upper']:5.1f}]"
            )
    timing = m.get("off_policy_timing", {})
    for name in ("ips", "snips"):
        e = timing.get(name, {})
        if "value" in e:
            typer.echo(
                f"first-retry timing {name.upper():>5}: {100 * e['value']:5.1f}% "
                f"[{100 * e['lower']:5.1f}, {100 * e['upper']:5.1f}]"
            )
        elif "cannot_estimate" in e:
            typer.echo(
                f"first-retry timing {name.upper():>5}: cannot estimate ({e['cannot_estimate']})"
            )
    typer.echo(f"rule violations: {m['rule_violations']}")
    typer.echo(f"metrics: {metrics}\nreport: {report_dir / 'report.md'}")


@app.command()
def zoo(
    out: Annotated[
        Path, typer.Option("--out", help="folder for histories and the zoo table")
    ] = Path("reports/zoo"),
    invoices: Annotated[int, typer.Option(help="invoices simulated per world")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed of every world")] = 7,
    worlds: Annotated[
        str | None, typer.Option(help="comma-separated worlds (default: the whole zoo)")
    ] = None,
    attribute: Annotated[
        bool,
        typer.Option(
            "--attribute",
            help="also score hybrids of the learned and oracle schedules (retries of one, "
            "messages of the other) by decline family: where the learned policy loses",
        ),
    ] = False,
    params: ParamsOption = None,
) -> None:
    """Evaluate the current settings on every world of the zoo (docs/evaluation.md)."""
    import logging
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from json import dumps as json_dumps

    from training.config.params import load_params
    from training.evaluation.zoo import run_zoo, zoo_markdown, zoo_summary

    names = _zoo_worlds(worlds)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows = run_zoo(names, invoices, seed, load_params(params), out, attribute)
    typer.echo(zoo_markdown(rows))
    typer.echo(json_dumps(zoo_summary(rows), indent=2))
    typer.echo(f"table: {out / 'zoo.md'}\nrows: {out / 'zoo.json'}")


def _zoo_worlds(worlds: str | None) -> list[str]:
    """The ``--worlds`` option as names of the zoo (all of them when not given)."""
    from training.simulator.zoo import WORLDS

    names = [w.strip() for w in worlds.split(",") if w.strip()] if worlds else list(WORLDS)
    unknown = [w for w in names if w not in WORLDS]
    if unknown:
        raise typer.BadParameter(
            f"unknown world(s) {unknown}; expected some of {', '.join(WORLDS)}",
            param_hint="'--worlds'",
        )
    return names


_Number = TypeVar("_Number", int, float)


def _comma_numbers(text: str, kind: type[_Number], hint: str) -> list[_Number]:
    """``"7,8,9"`` as numbers of ``kind``, or the option's error naming the bad text."""
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"expected {kind.__name__} values separated by commas: {text!r}", param_hint=hint
        ) from exc


@app.command("ope-coverage")
def ope_coverage(
    out: Annotated[
        Path, typer.Option("--out", help="folder for histories and the coverage table")
    ] = Path("reports/ope-coverage"),
    invoices: Annotated[int, typer.Option(help="invoices simulated per world")] = 10_000,
    seeds: Annotated[str, typer.Option(help="comma-separated seeds")] = "7,8,9",
    worlds: Annotated[
        str | None, typer.Option(help="comma-separated worlds (default: the whole zoo)")
    ] = None,
    timing_propensity: Annotated[
        str,
        typer.Option(
            help="comma-separated weightings of the first-retry estimate, each reported"
            " from the same histories and models (logged, estimated)"
        ),
    ] = "logged,estimated",
    logging_by: Annotated[
        str,
        typer.Option(
            "--logging",
            help="whose history the estimates read: team (the world's simulated team) or"
            " product (a later period the trained decider dunned, exploring; adds the"
            " first-retry day estimand, the one such logs identify)",
        ),
    ] = "team",
    day_rates: Annotated[
        str,
        typer.Option(
            help="with --logging product: comma-separated rates of the first-retry-day"
            " exploration, one product-logged period each"
        ),
    ] = "0.05",
    params: ParamsOption = None,
) -> None:
    """How often the off-policy intervals cover the truth, over worlds and seeds."""
    import logging
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from json import dumps as json_dumps

    from training.config.params import load_params
    from training.evaluation.ope_coverage import Logging, coverage_markdown, run_ope_coverage
    from training.evaluation.ope_first_retry import Propensity

    names = _zoo_worlds(worlds)
    seed_list = _comma_numbers(seeds, int, "'--seeds'")
    weightings = [w.strip() for w in timing_propensity.split(",") if w.strip()]
    if not weightings or any(w not in ("logged", "estimated") for w in weightings):
        raise typer.BadParameter(
            f"expected some of logged, estimated: {timing_propensity!r}",
            param_hint="'--timing-propensity'",
        )
    if logging_by not in ("team", "product"):
        raise typer.BadParameter(
            f"expected team or product: {logging_by!r}", param_hint="'--logging'"
        )
    rates = _comma_numbers(day_rates, float, "'--day-rates'")
    if not rates or any(not 0 <= r < 1 for r in rates):
        raise typer.BadParameter(
            f"day rates must be in [0, 1): {day_rates!r}", param_hint="'--day-rates'"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows, summary = run_ope_coverage(
        names,
        seed_list,
        invoices,
        load_params(params),
        out,
        cast(list[Propensity], list(dict.fromkeys(weightings))),
        cast(Logging, logging_by),
        rates,
    )
    typer.echo(coverage_markdown(rows, summary))
    typer.echo(json_dumps(summary, indent=2))
    typer.echo(f"table: {out / 'ope_coverage.md'}\nrows: {out / 'ope_coverage.json'}")


@app.command()
def recommend(
    model: Annotated[str, typer.Option(help="decision artifact: local path or MLflow model URI")],
    input_path: Annotated[
        Path, typer.Option("--input", help="requests, one API-contract JSON object per line")
    ],
    output_path: Annotated[
        Path, typer.Option("--output", help="responses (or per-item errors), line by line")
    ],
    batch_size: Annotated[int, typer.Option(min=1, help="lines scored together")] = 1000,
    threads: Annotated[int, typer.Option(min=1, help="LightGBM threads for big scoring calls")] = 1,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="score on Dask (local, local:N or a scheduler address): --input is then a "
            "folder of *.jsonl parts and --output a folder (docs/scale.md)"
        ),
    ] = None,
) -> None:
    """Batch scoring in the API's request/response format, through the API's own code path."""
    from serving.model_loader import load_decider
    from training.api.batch import run_recommend

    if cluster is not None:
        _recommend_on_cluster(model, input_path, output_path, batch_size, threads, cluster)
        return
    if not input_path.is_file():
        raise typer.BadParameter(f"no such file: {input_path}", param_hint="--input")
    try:
        decider = load_decider(model, threads=threads)
    except Exception as error:  # any load failure: say what and stop
        typer.echo(f"error: cannot load model {model}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(code=2) from error
    summary = run_recommend(
        decider, input_path, output_path, batch_size=batch_size, progress=progress
    )
    typer.echo(f"{summary.summary()} -> {output_path} (model {decider.model_version})")


def _recommend_on_cluster(
    model: str, input_dir: Path, output_dir: Path, batch_size: int, threads: int, cluster: str
) -> None:
    from functools import partial

    from serving.model_loader import load_decider
    from training.scale.cluster import cluster_client, local_workers
    from training.scale.recommend import recommend_on_cluster, request_parts

    try:
        local_workers(cluster)
        request_parts(input_dir)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    try:
        load_decider(model, threads=threads)  # fail here, not on every worker
    except Exception as error:  # any load failure: say what and stop
        typer.echo(f"error: cannot load model {model}: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(code=2) from error
    with cluster_client(cluster) as client:
        summary = recommend_on_cluster(
            client,
            f"{model}:{threads}",
            partial(load_decider, model, threads=threads),
            input_dir,
            output_dir,
            batch_size,
        )
    typer.echo(f"{summary.summary()} -> {output_dir}/ (cluster {cluster})")


@app.command()
def serve(
    model: Annotated[
        str | None,
        typer.Option(help="model URI or path (default: SMARTRETRY_MODEL, else the champion)"),
    ] = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    no_model: Annotated[
        bool, typer.Option("--no-model", help="answer with the rules fallback only")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="uvicorn worker processes (each loads the model)")
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            help="uvicorn's access log, a line per request (the audit log already records "
            "every /v1 request: key, method, route, status)"
        ),
    ] = False,
) -> None:
    """Run the HTTP API (settings: SMARTRETRY_* environment variables, docs/serving.md)."""
    import os

    import uvicorn

    from serving.app import create_app
    from serving.log_config import serve_log_config
    from serving.settings import Settings

    overrides: dict[str, object] = {}
    if model is not None:
        overrides["model"] = model
    if no_model:
        overrides["model"] = None
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        application = create_app(settings)
    except (RuntimeError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from error
    if not settings.key_hashes():  # then keys must come from the store (smartretry keys)
        from serving.store.api_keys import list_keys
        from serving.store.db import make_engine, migrate

        engine = make_engine(settings.database_url)
        migrate(engine)
        if not list_keys(engine, include_revoked=False):
            typer.echo(
                "error: no API keys: create one with `smartretry keys create --scopes ...` "
                "(same SMARTRETRY_DATABASE_URL), or set SMARTRETRY_API_KEYS or "
                "SMARTRETRY_API_KEYS_FILE",
                err=True,
            )
            raise typer.Exit(code=2)
        engine.dispose()
    if workers == 1:
        uvicorn.run(
            application, host=host, port=port, log_config=serve_log_config(),
            access_log=access_log,
        )  # fmt: skip
        return
    from serving.store.db import make_engine, migrate

    migrate(make_engine(settings.database_url))  # once, before the workers race to it
    os.environ["SMARTRETRY_MODEL"] = settings.model or ""  # each worker reads the environment
    uvicorn.run(
        "serving.app:create_app", factory=True, workers=workers, host=host, port=port,
        log_config=serve_log_config(), access_log=access_log,
    )  # fmt: skip


@app.command("export-outcomes")
def export_outcomes(
    out: Annotated[Path, typer.Option("--out", help="folder for the history")],
    database_url: Annotated[
        str | None,
        typer.Option(help="store to read (default: SMARTRETRY_DATABASE_URL, else the SQLite file)"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write the service's stored requests, decisions and outcomes as a history (data contract)."""
    from serving.export import export_outcomes as export
    from serving.settings import Settings
    from serving.store.db import make_engine, migrate

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("--format must be parquet or csv")
    url = database_url or Settings().database_url
    engine = make_engine(url)
    migrate(engine)
    typer.echo(export(engine, out, fmt))


if __name__ == "__main__":  # pragma: no cover
    app()
