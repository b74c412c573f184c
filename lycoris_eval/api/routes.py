"""HTTP API under ``/lycoris-eval/v1`` (FastAPI, mounted by the WebUI adapter in
``on_app_started``). Framework code only: what it needs from the host comes through
:class:`ApiServices`, so tests mount it on a plain FastAPI app with a fake host.

Every route carries the host's ``--api-auth`` check (HTTP Basic, constant-time compare):
routes added with ``app.add_api_route`` do not get it by themselves. Folder arguments
must lie inside the allowed roots (:mod:`lycoris_eval.fileio`). Routes raise the error
classes of :mod:`lycoris_eval.errors`, never a status; :mod:`lycoris_eval.api.answers`
answers them, each with its class's status (validation errors 422 naming the field,
unknown runs/jobs 404, refused paths 403).
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from lycoris_eval import __version__
from lycoris_eval.api.answers import ErrorRoute, http_error
from lycoris_eval.api.bodies import config_from_body
from lycoris_eval.api.examples import EVALUATE_EXAMPLE, GRID_EXAMPLE
from lycoris_eval.api.jobs import Job, JobManager
from lycoris_eval.api.views import epochs_view
from lycoris_eval.compare.select import select
from lycoris_eval.config import SYNC_EVALUATE_LIMIT, EvalConfig
from lycoris_eval.errors import (
    InputError,
    LycorisEvalError,
    NotFoundError,
    PathRefused,
    Unauthorized,
)
from lycoris_eval.fileio import resolve_allowed
from lycoris_eval.grid.host import AdapterRef, RunResult
from lycoris_eval.grid.spec import GRID_JSON_SCHEMA, GridSpec, SpecError, parse_grid_request
from lycoris_eval.grid.store import RunStore, list_runs, new_run_id
from lycoris_eval.grid.training import detected_runs
from lycoris_eval.inputs.uploads import write_uploads
from lycoris_eval.report.format import to_csv
from lycoris_eval.report.sections import report_tables
from lycoris_eval.scoring.finished_grid import score_finished_run
from lycoris_eval.scoring.pipeline import SCHEMA_VERSION, evaluate

PREFIX = "/lycoris-eval/v1"


@dataclass
class ApiServices:
    """What the API needs from its host."""

    outputs_root: Path
    data_path: Path
    allowed_roots: Callable[[], list[Path]]
    credentials: Callable[[], dict[str, str] | None]
    adapters: Callable[[], list[AdapterRef]]
    queue_lock: Callable[[], AbstractContextManager[Any]]
    run_grid: Callable[[GridSpec, bool, Job], RunResult]
    eval_config: Callable[[], EvalConfig]
    interrupt: Callable[[], None]
    webui_version: Callable[[], str | None]
    encoders_status: Callable[[], list[dict[str, Any]]]
    check_base: Callable[[dict[str, Any]], None] = lambda base: None
    # names (checkpoints, adapters), adapter-free prompts and the size limit, before a job exists
    prepare_grid: Callable[[GridSpec, bool], None] = lambda spec, confirm: None


def parse_credentials(api_auth: str | None) -> dict[str, str] | None:
    """The WebUI's ``--api-auth user:pass,user2:pass2``."""
    if not api_auth:
        return None
    pairs = {}
    for item in api_auth.strip('"').replace("\n", "").split(","):
        if ":" in item:
            user, password = item.split(":", 1)
            pairs[user] = password
    return pairs or None


@dataclass
class _Routes:
    """What every route shares: the host's services, the job manager and the lookups that
    turn a request's names (folders, run ids) into paths or a clear 4xx."""

    services: ApiServices
    jobs: JobManager

    def folder(self, path: str, field: str) -> Path:
        try:
            resolved = resolve_allowed(path, self.services.allowed_roots(), self.services.data_path)
        except PathRefused as exc:
            raise PathRefused(f"{field}: {exc.words('api')}", field=field) from None
        if not resolved.is_dir():
            raise SpecError(field, f"not a folder: {path}")
        return resolved

    def store(self, run_id: str) -> RunStore:
        try:
            run = RunStore(self.services.outputs_root, run_id)
        except InputError:  # not a run id at all
            raise NotFoundError(f"unknown run {run_id!r}") from None
        if not run.exists():
            raise NotFoundError(f"unknown run {run_id!r}")
        return run

    @staticmethod
    def scores_of(run: RunStore, required: bool = True) -> Any:
        path = run.scores_path
        if not path.is_file():
            if required:
                raise NotFoundError(f"run {run.run_id!r} has not been scored yet")
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def accepted(job: Job, **extra: Any) -> JSONResponse:
        """The 202 answer of a job started in the background."""
        content = {"job_id": job.id, **extra, "state": job.state, "status_url": f"{PREFIX}/jobs/{job.id}"}
        return JSONResponse(status_code=202, content=content)


def _auth_dependency(services: ApiServices) -> Any:
    """The host's ``--api-auth`` check, as a router-wide dependency."""
    basic = HTTPBasic(auto_error=False)

    def auth(credentials: HTTPBasicCredentials | None = Depends(basic)) -> None:  # noqa: B008
        allowed = services.credentials()
        if not allowed:
            return
        if credentials is not None and credentials.username in allowed:
            expected = allowed[credentials.username].encode()
            if secrets.compare_digest(credentials.password.encode(), expected):
                return
        raise Unauthorized("Incorrect username or password")

    return Depends(auth)


def build_router(services: ApiServices, jobs: JobManager | None = None) -> Any:
    ctx = _Routes(services, jobs or JobManager(services.queue_lock))
    router = APIRouter(
        prefix=PREFIX, tags=["lycoris-eval"], dependencies=[_auth_dependency(services)], route_class=ErrorRoute
    )
    _info_routes(router, ctx)
    _grid_routes(router, ctx)
    _evaluate_route(router, ctx)
    _run_routes(router, ctx)
    return router


def _info_routes(router: APIRouter, ctx: _Routes) -> None:
    services = ctx.services

    @router.get("/version")
    def version() -> dict[str, Any]:
        return {
            "version": __version__,
            "api": "v1",
            "scores_schema_version": SCHEMA_VERSION,
            "webui": services.webui_version(),
        }

    @router.get("/encoders")
    def encoders() -> list[dict[str, Any]]:
        return services.encoders_status()

    @router.get("/adapters")
    def adapters() -> list[dict[str, Any]]:
        refs = services.adapters()
        place = {m.adapter: (run, m) for run in detected_runs(refs) for m in run.members}
        return [_adapter_entry(ref.name, ref.hash, ref.info or {}, place.get(ref.name)) for ref in refs]

    @router.get("/training-runs")
    def training_runs() -> list[dict[str, Any]]:
        """The training runs among the adapters (saves of one training, in step order): the
        names a grid's ``training_run`` takes."""
        return [run.to_dict() for run in detected_runs(services.adapters())]


def _adapter_entry(name: str, hash_: str | None, info: dict[str, Any], place: Any = None) -> dict[str, Any]:
    """One adapter in ``GET /adapters``: the headline fields, its training run (or null),
    then everything detected."""
    keys = ("trained_on", "base_model_version", "rank")
    run = None
    if place is not None:
        found, member = place
        run = {"name": found.name, "epoch": member.epoch, "step": member.step, "final": member.final,
               "source": member.source}  # fmt: skip
    # applies: can this WebUI apply the file's format (webui/formats.py), null when it cannot tell
    return {"name": name, "type": info.get("type", "unknown"), **{k: info.get(k) for k in keys},
            "family": info.get("family", "unknown"), "applies": info.get("applies"),
            "applies_note": info.get("applies_note"), "hash": hash_, "training_run": run, "info": info}  # fmt: skip


def _grid_routes(router: APIRouter, ctx: _Routes) -> None:
    services, jobs = ctx.services, ctx.jobs

    @router.post(
        "/grid",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": GRID_JSON_SCHEMA, "examples": GRID_EXAMPLE}},
            }
        },
    )
    def grid(body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        spec, confirm = parse_grid_request(body)
        services.check_base(spec.base)
        services.prepare_grid(spec, confirm)
        for i, ref in enumerate(spec.references):
            spec.references[i] = str(ctx.folder(ref, "references"))
        for i, ref in enumerate(spec.distractors):
            spec.distractors[i] = str(ctx.folder(ref, "distractors"))
        # The run id (and any seed drawn from -1) is fixed now and answered at once: a client
        # whose WebUI dies mid-grid resumes with exactly this spec.
        spec.run_id = spec.run_id or new_run_id(spec.run_name)

        def work(job: Job) -> dict[str, Any]:
            result = services.run_grid(spec, confirm, job)
            job.run_id = result.run_id
            return {
                "run_id": result.run_id,
                "generated": result.generated,
                "failed": result.failed,
                "notes": result.notes,
                "interrupted": result.interrupted,
                "stopped": result.stopped,
            }

        job = jobs.submit("grid", work, run_id=spec.run_id)
        return ctx.accepted(job, run_id=spec.run_id, seeds=spec.seeds)

    @router.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"unknown job {job_id!r}")
        out = job.as_dict()
        if job.state in ("done", "failed", "cancelled"):
            out["result"] = job.result
        return out

    @router.post("/jobs/{job_id}/cancel")
    def job_cancel(job_id: str) -> dict[str, Any]:
        job = jobs.cancel(job_id)
        if job is None:
            raise NotFoundError(f"unknown job {job_id!r}")
        if job.state == "running":
            services.interrupt()
        return job.as_dict()


EVALUATE_FIELDS = set(
    "run_id folder images references distractors trigger metrics trained_on training_runs compare_to "
    "all_pairs_up_to".split()
)


def _evaluate_route(router: APIRouter, ctx: _Routes) -> None:
    services, jobs = ctx.services, ctx.jobs

    @router.post("/evaluate")
    def evaluate_route(body: dict[str, Any] = Body(..., examples=EVALUATE_EXAMPLE)) -> Any:  # noqa: B008
        allowed = EVALUATE_FIELDS
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise SpecError(unknown[0], f"unknown field (known: {', '.join(sorted(allowed))})")
        sources = [k for k in ("run_id", "folder", "images") if body.get(k)]
        if len(sources) != 1:
            raise InputError("give exactly one of run_id, folder, images", field="run_id")
        config = config_from_body(body, services.eval_config(), ctx.folder)
        cleanup: Path | None = None
        run: RunStore | None = None
        if body.get("run_id"):
            run = ctx.store(str(body["run_id"]))
            images_dir = run.images_dir
        elif body.get("folder"):
            images_dir = ctx.folder(str(body["folder"]), "folder")
        else:
            images_dir = cleanup = write_uploads(body["images"], services.outputs_root)
        n_images = sum(1 for _ in images_dir.iterdir()) if images_dir.is_dir() else 0

        def work(job: Job) -> dict[str, Any]:
            try:
                if run is not None:  # a grid run: scored as every front end scores one, its reports written
                    return score_finished_run(run, config, job.progress).document
                return evaluate(images_dir, config, job.progress)  # a folder or uploads: only the answer
            finally:
                if cleanup is not None:
                    shutil.rmtree(cleanup, ignore_errors=True)

        job = jobs.submit("evaluate", work)
        if n_images > SYNC_EVALUATE_LIMIT:
            return ctx.accepted(job)
        jobs.wait(job.id)
        if isinstance(job.exception, LycorisEvalError):
            raise job.exception
        if job.state == "failed":  # a bug: its type and message, as the job's status shows them
            raise http_error(job.exception, message=job.error or "evaluation failed")
        return job.result


def _run_routes(router: APIRouter, ctx: _Routes) -> None:
    services = ctx.services

    @router.get("/runs")
    def runs() -> list[dict[str, Any]]:
        return list_runs(services.outputs_root)

    @router.get("/runs/{run_id}")
    def run_detail(run_id: str) -> dict[str, Any]:
        run = ctx.store(run_id)
        scores = ctx.scores_of(run, required=False)
        return {
            "manifest": run.read_manifest(),
            "scores": scores,
            "done": len(run.finished()),
            "failed": list(run.failures().values()),
        }

    @router.get("/runs/{run_id}/scores.csv")
    def run_csv(run_id: str) -> Any:
        return PlainTextResponse(to_csv(ctx.scores_of(ctx.store(run_id))), media_type="text/csv")

    @router.get("/runs/{run_id}/report")
    def run_report(run_id: str) -> dict[str, Any]:
        run = ctx.store(run_id)
        return report_tables(ctx.scores_of(run), run.read_manifest())

    @router.get("/runs/{run_id}/epochs")
    def run_epochs(run_id: str, name: str | None = None) -> dict[str, Any]:
        """The training runs of a scored grid: which epoch at which weight, from when it
        over-trains, its side effects (the answer in words, then the numbers behind it)."""
        return epochs_view(ctx.scores_of(ctx.store(run_id)), name)

    @router.get("/runs/{run_id}/compare")
    def run_compare(
        run_id: str,
        a: str,
        b: str,
        metric: str | None = None,
        checkpoint: str | None = None,
        adapter: str | None = None,
        weight: float | None = None,
    ) -> dict[str, Any]:
        """A against B (two checkpoints, adapters or weights, or an adapter and
        ``baseline``): per metric and context, A − B with its 95% interval and verdict."""
        document = ctx.scores_of(ctx.store(run_id))
        filters = {"metric": metric, "checkpoint": checkpoint, "adapter": adapter, "weight": weight}
        return select(document, a, b, filters)  # SpecError naming a or b: a 422 at ("query", field)


def mount(app: Any, services: ApiServices, jobs: JobManager | None = None) -> JobManager:
    """Add the routes to a FastAPI app (idempotent: a reload replaces them)."""
    jobs = jobs or JobManager(services.queue_lock)
    app.router.routes[:] = [r for r in app.router.routes if not getattr(r, "path", "").startswith(PREFIX)]
    app.include_router(build_router(services, jobs))
    app.openapi_schema = None
    return jobs


__all__ = ["ApiServices", "LycorisEvalError", "PREFIX", "build_router", "mount", "parse_credentials"]
