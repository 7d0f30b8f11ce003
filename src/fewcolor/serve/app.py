"""``fewcolor serve``: a small ASGI app (Starlette) with one static page, for colorizing in a browser.

Everything runs on this machine and works offline: the page is plain HTML/JS shipped in the package (no
CDN). Uploads are written only under one temporary folder that the server creates at start and removes
at exit; each request's files live in a subfolder removed when the request ends, and results (the PNGs
the page shows and downloads) are kept, at most ``MAX_RESULTS`` of them, until the server stops.

At most ``Limits.queue_size`` requests are admitted at once (working or waiting for the one worker that
runs the network); the next one gets 429 with a reason, so a burst of uploads neither crashes the server
nor grows its memory with the burst. The method options of the page come from the registry's
:class:`fewcolor.methods.options.InferenceOption` declarations of each model's method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fewcolor.serve.limits import Limits, Refusal, check_body_size, sniff_image

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
#: results kept for viewing and download; the oldest is deleted beyond this
MAX_RESULTS = 400
#: adapted models kept in memory; the oldest is dropped beyond this
MAX_ADAPTED = 4
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ModelEntry:
    """A model the page can pick: a checkpoint (loaded on first use) or one adapted on the spot."""

    id: str
    label: str
    path: Path | None = None
    colorizer: Any = None
    adapted: bool = False

    def method(self) -> Any:
        """The method (class or loaded instance): what its options and name are read from."""
        if self.colorizer is not None:
            return self.colorizer.method
        assert self.path is not None, "a model entry holds a checkpoint path or a colorizer"
        return _method_class_of(self.path)

    def method_and_config(self) -> tuple[Any, dict[str, Any]]:
        """The method (class or loaded instance) and the model's config values, reading a checkpoint's
        metadata once."""
        if self.colorizer is not None:
            import dataclasses

            return self.colorizer.method, dataclasses.asdict(self.colorizer.method.config)
        assert self.path is not None
        return _checkpoint_method_and_config(self.path)

    def describe(self) -> dict[str, Any]:
        method, config = self.method_and_config()
        return {
            "id": self.id,
            "label": self.label,
            "method": method.name,
            "summary": method.summary,
            "options": [_option_json(o, config) for o in method.inference_options],
        }


def _checkpoint_method_and_config(path: Path) -> tuple[Any, dict[str, Any]]:
    """A checkpoint's method class and config values, from one read of its metadata."""
    from fewcolor.io.checkpoint import read_metadata
    from fewcolor.methods.registry import get_method_class

    meta = read_metadata(path)
    config = meta.get("config")
    return get_method_class(meta["method"]), config if isinstance(config, dict) else {}


def _method_class_of(path: Path) -> Any:
    return _checkpoint_method_and_config(path)[0]


def _option_json(opt: Any, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """An option's declaration for the page; its default is the model's own value where the option is also a
    config field (a model trained with chroma 0.5 shows 0.5)."""
    default = opt.default if isinstance(opt.default, (int, float, str, bool)) or opt.default is None else None
    if config and opt.name in config and isinstance(config[opt.name], (int, float, str, bool)):
        default = config[opt.name]
        if opt.refuses_from_visitors(default):  # a checkpoint path of the server: its name only, never its folder
            default = f"the model's own ({Path(str(default)).name})"
    return {"name": opt.name, "kind": opt.kind, "help": opt.help, "default": default, "minimum": opt.minimum,
            "maximum": opt.maximum, "choices": list(opt.choices) if opt.choices else None, "sweep": opt.sweep}


@dataclass
class Service:
    """The server's state: models, results, the temporary folder and the admission queue."""

    models: list[Path]
    limits: Limits = field(default_factory=Limits)
    device: str | None = None
    size: int | None = None
    include_bundled: bool = True  #: offer the bundled base model first, when this install has one

    def __post_init__(self) -> None:
        from fewcolor.io.checkpoint import CheckpointError
        from fewcolor.pretrained import bundled_model_path

        self.entries: OrderedDict[str, ModelEntry] = OrderedDict()
        bundled = bundled_model_path() if self.include_bundled else None
        if bundled is not None:
            self.entries["base"] = ModelEntry("base", "bundled base model", bundled)
        for i, path in enumerate(self.models, start=1):
            try:
                _method_class_of(path)
            except (CheckpointError, OSError, KeyError, ValueError) as exc:
                raise ValueError(f"{path} is not a fewcolor model checkpoint ({exc}); give one written by "
                                 "`fewcolor train` or `fewcolor adapt`") from exc
            self.entries[f"m{i}"] = ModelEntry(f"m{i}", path.name, path)
        if not self.entries:
            raise ValueError("no model to serve: give a checkpoint (fewcolor serve MODEL.safetensors); this "
                             "install has no bundled base model")
        self.workdir = Path(tempfile.mkdtemp(prefix="fewcolor-serve-"))  # after the checks: nothing to leak
        (self.workdir / "results").mkdir()
        self.results: OrderedDict[str, Path] = OrderedDict()
        self._pending = 0
        self._worker = asyncio.Semaphore(1)
        self._lock = threading.Lock()

    # ----- admission --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def admitted(self, request: Request) -> AsyncIterator[None]:
        """Hold a place in the bounded queue for the whole request, or raise 429 (a body over the size
        limit is refused first, for that reason)."""
        check_body_size(request.headers.get("content-length"), self.limits)
        if self._pending >= self.limits.queue_size:
            raise Refusal(429, f"the server is busy ({self._pending} requests in progress); try again in a moment")
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (the network) on the one worker thread, in admission order."""
        async with self._worker:
            return await anyio.to_thread.run_sync(fn, *args)

    # ----- models and results -----------------------------------------------------------------
    def entry(self, model_id: str) -> ModelEntry:
        if model_id not in self.entries:
            raise Refusal(404, f"unknown model {model_id!r}; reload the page to see the models")
        return self.entries[model_id]

    def colorizer(self, model_id: str) -> Any:
        from fewcolor.io.checkpoint import CheckpointError
        from fewcolor.pipeline import Colorizer

        entry = self.entry(model_id)
        if entry.colorizer is None:
            assert entry.path is not None, "a model entry holds a checkpoint path or a colorizer"
            try:
                entry.colorizer = Colorizer.from_checkpoint(entry.path, device=self.device, size=self.size)
            except (CheckpointError, OSError, KeyError, ValueError) as exc:
                raise Refusal(422, f"model {entry.label} cannot be loaded: {exc}") from exc
        return entry.colorizer

    def add_adapted(self, label: str, colorizer: Any) -> ModelEntry:
        entry = ModelEntry(f"a{secrets.token_hex(4)}", label, colorizer=colorizer, adapted=True)
        self.entries[entry.id] = entry
        adapted = [k for k, e in self.entries.items() if e.adapted]
        for old in adapted[:-MAX_ADAPTED]:
            del self.entries[old]
        return entry

    def new_result(self) -> tuple[str, Path]:
        rid = secrets.token_hex(8)
        path = self.workdir / "results" / f"{rid}.png"
        with self._lock:
            self.results[rid] = path
            while len(self.results) > MAX_RESULTS:
                _, old = self.results.popitem(last=False)
                old.unlink(missing_ok=True)
        return rid, path

    def result(self, rid: str) -> Path:
        path = self.results.get(rid)
        if path is None or not path.exists():
            raise Refusal(404, "this result is no longer kept; colorize the image again")
        return path

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


# ----- request helpers ------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _form(request: Request, service: Service) -> AsyncIterator[tuple[FormData, Path]]:
    """The request's form and a folder for its files (removed when the request ends)."""
    folder = Path(tempfile.mkdtemp(prefix="req-", dir=service.workdir))
    try:
        try:
            form = await request.form(max_files=service.limits.max_support_images + 4, max_fields=64)
        except (HTTPException, MultiPartException, ClientDisconnect, ValueError) as exc:  # malformed or cut short
            raise Refusal(400, f"the upload could not be read as a form ({getattr(exc, 'detail', exc)})") from exc
        try:
            yield form, folder
        finally:
            await form.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _save_upload(upload: Any, folder: Path, limits: Limits, what: str) -> Path:
    """Copy an uploaded file into ``folder`` under a safe name and check it is an image we take (a refused
    file is removed)."""
    if not isinstance(upload, UploadFile):
        raise Refusal(400, f"{what}: expected a file upload")
    name = _SAFE_NAME.sub("_", Path(upload.filename or "upload").name)[:80] or "upload"
    path = folder / f"{secrets.token_hex(4)}-{name}"
    with path.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            out.write(chunk)
    try:
        sniff_image(path, upload.filename or what, limits)
    except Refusal:
        path.unlink(missing_ok=True)
        raise
    return path


def _text_field(form: FormData, key: str, default: str) -> str:
    """A text field's value (``default`` when absent or empty); a file sent in its place is refused."""
    value = form.get(key)
    if isinstance(value, UploadFile):
        raise Refusal(422, f"{key} takes a value, not a file")
    return str(value or default)


def _model_id(form: FormData, service: Service) -> str:
    return _text_field(form, "model", next(iter(service.entries)))


def _parse_option(opt: Any, raw: str, method: str) -> Any:
    """A text option's value, refused (422) when it is not of the option's kind, breaks its declaration (range,
    choices, a non-finite float) or, for a ``local_path`` option, is anything but one of its choices: a visitor
    never names a file on the server's disk."""
    from fewcolor.methods.options import InferenceOptionError

    value: Any = raw
    try:
        if opt.kind == "float":
            value = float(raw)
        elif opt.kind == "int":
            value = int(raw)
        elif opt.kind == "bool":
            value = raw.lower() in ("1", "true", "yes", "on")
    except ValueError as exc:
        raise Refusal(422, f"option {opt.name}: {raw!r} is not a valid {opt.kind}") from exc
    if opt.refuses_from_visitors(value):
        raise Refusal(422, f"option {opt.name} takes only {', '.join(opt.choices)} on this page (a file on the "
                           "server is accepted only on its command line)")
    try:
        opt.check(value, method)
    except InferenceOptionError as exc:
        raise Refusal(422, str(exc)) from exc
    return value


async def _options(form: FormData, method: Any, folder: Path, limits: Limits) -> tuple[dict[str, Any], Any]:
    """The method options from ``opt.NAME`` fields (image options as files) and the sweep, if any."""
    options: dict[str, Any] = {}
    sweep = None
    known = {o.name: o for o in method.inference_options}
    sweeps = {o.sweep: o for o in method.inference_options if o.sweep}
    for key, value in form.multi_items():
        if not key.startswith("opt."):
            continue
        name = key[4:]
        if name in sweeps:
            if isinstance(value, UploadFile):
                raise Refusal(422, f"{name} takes a whole number, not a file")
            if str(value).strip():
                try:
                    count = int(str(value))
                except ValueError as exc:
                    raise Refusal(422, f"{name} must be a whole number, got {value!r}") from exc
                if not 1 <= count <= limits.max_variants:
                    raise Refusal(422, f"{name} must be between 1 and {limits.max_variants}, got {count}")
                sweep = (sweeps[name].name, count)
            continue
        opt = known.get(name)
        if opt is None:
            raise Refusal(422, f"method {method.name!r} has no option {name!r}")
        if opt.is_image:
            if isinstance(value, UploadFile):
                if value.filename:
                    options[name] = await _save_upload(value, folder, limits, f"option {name}")
            elif str(value).strip():
                raise Refusal(422, f"option {name} takes an image file, not text")
        elif isinstance(value, UploadFile):
            raise Refusal(422, f"option {name} takes a value, not a file")
        elif str(value).strip():
            options[name] = _parse_option(opt, str(value).strip(), method.name)
    return options, sweep


def _error_response(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered as one line (never a traceback page)."""
    log.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def _refusal_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refusal)
    headers = {"Retry-After": "2"} if exc.status == 429 else None
    return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=headers)


def _http_error_response(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take) as JSON, like ours."""
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        reason = f"nothing at {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        reason = f"{where} is not allowed" + (f"; use {allowed}" if allowed else "")
    else:
        reason = f"{where}: {exc.detail}"
    return JSONResponse({"error": reason}, status_code=exc.status_code, headers=exc.headers)


# ----- the work (on the worker thread) ---------------------------------------------------------------
def _colorize_job(service: Service, model_id: str, image: Path, options: dict[str, Any], sweep: Any) -> list[str]:
    from fewcolor.io.image import ImageReadError, read_rgb_alpha, write_coloured
    from fewcolor.methods.options import InferenceOptionError

    colorizer = service.colorizer(model_id)
    try:
        rgb, alpha = read_rgb_alpha(image, max_pixels=service.limits.max_pixels)  # a sprite keeps its alpha
        runs = [options] if sweep is None else [{**options, sweep[0]: i} for i in range(1, sweep[1] + 1)]
        ids = []
        for run_options in runs:
            out = colorizer.colorize(rgb, **run_options)
            rid, path = service.new_result()
            write_coloured(path, out, alpha)
            ids.append(rid)
        return ids
    except (InferenceOptionError, ImageReadError, ValueError) as exc:
        raise Refusal(422, str(exc).replace(str(image), image.name.split("-", 1)[-1])) from exc
    except RuntimeError as exc:  # a method's own failure at inference, said on the page
        raise Refusal(422, str(exc)) from exc


#: why a grey support image is left out, as the page shows it
GREY_SUPPORT = "grey: adapting learns colour from colour images"


def _adapt_job(service: Service, model_id: str, folder: Path, steps: int,
               names: dict[str, str]) -> tuple[ModelEntry, list[dict[str, str]]]:
    """Adapt on the readable colour images of ``folder`` (``names``: saved file name -> the upload's name);
    the adapted model's entry and the images left out (name and reason: unreadable, grey)."""
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform
    from fewcolor.pipeline import Colorizer
    from fewcolor.train.adapt import adapt

    def shown(rel: str) -> str:
        return names.get(Path(rel).name, Path(rel).name)

    def hidden(text: str) -> str:  # the server's folders never reach the page
        for saved, name in names.items():
            text = text.replace(str(folder / saved), name)
        return text.replace(str(folder), "upload")

    base = service.colorizer(model_id)
    transform = train_transform(base.size)
    try:  # grey images kept here, to be reported by name and left out below
        found = ImageFolderDataset(folder, transform=transform, skip_grey=False, scan_cache=False)
    except (ValueError, OSError) as exc:
        raise Refusal(422, f"none of the support images can be read: {hidden(str(exc))}") from exc
    skipped = [{"name": shown(rel), "reason": hidden(reason)} for rel, reason in found.bad_reasons.items()]
    skipped += [{"name": shown(rel), "reason": GREY_SUPPORT} for rel in found.grey_files]
    usable = [p for p in found.paths if p not in set(found.grey_files)]
    if not usable:
        grey = [shown(rel) for rel in found.grey_files]
        raise Refusal(422, f"none of the support images has colour ({len(grey)} grey: {', '.join(grey)}); adapting "
                           "learns colour from colour examples: choose colour images")
    support = found if len(usable) == len(found) else ImageFolderDataset(
        folder, paths=usable, transform=transform, skip_grey=False, scan_cache=False)
    adapted, how = adapt(base.method, support, steps, seed=0, device=str(base.device))
    label = f"{service.entry(model_id).label} adapted to {len(support)} image(s) ({how}, {steps} steps)"
    return service.add_adapted(label, Colorizer(adapted, device=base.device, size=base.size)), skipped


# ----- routes -----------------------------------------------------------------------------------------
def create_app(service: Service) -> Starlette:
    """The ASGI app serving the page and its API over ``service``."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def models(request: Request) -> Response:
        return JSONResponse({
            "models": [e.describe() for e in service.entries.values()],
            "limits": {"max_upload_bytes": service.limits.max_upload_bytes, "max_pixels": service.limits.max_pixels,
                       "max_variants": service.limits.max_variants,
                       "max_support_images": service.limits.max_support_images,
                       "max_adapt_steps": service.limits.max_adapt_steps},
        })

    async def colorize(request: Request) -> Response:
        async with service.admitted(request), _form(request, service) as (form, folder):
            model_id = _model_id(form, service)
            entry = service.entry(model_id)
            method = entry.method()
            image = await _save_upload(form.get("image"), folder, service.limits, "image")
            options, sweep = await _options(form, method, folder, service.limits)
            ids = await service.run(_colorize_job, service, model_id, image, options, sweep)
        return JSONResponse({"results": [f"/api/result/{rid}" for rid in ids]})

    async def adapt(request: Request) -> Response:
        async with service.admitted(request), _form(request, service) as (form, folder):
            model_id = _model_id(form, service)
            service.entry(model_id)
            try:
                steps = int(_text_field(form, "steps", "20"))
            except ValueError as exc:
                raise Refusal(422, "steps must be a whole number") from exc
            if not 1 <= steps <= service.limits.max_adapt_steps:
                raise Refusal(422, f"steps must be between 1 and {service.limits.max_adapt_steps}, got {steps}")
            uploads = form.getlist("support")
            if not 1 <= len(uploads) <= service.limits.max_support_images:
                raise Refusal(422, f"give 1 to {service.limits.max_support_images} support images, got {len(uploads)}")
            support = folder / "support"
            support.mkdir()
            names: dict[str, str] = {}  # saved file name -> the upload's name
            refused: list[tuple[str, Refusal]] = []  # a file we do not take is left out, not the whole upload
            for upload in uploads:
                name = (upload.filename if isinstance(upload, UploadFile) else None) or "support image"
                try:
                    names[(await _save_upload(upload, support, service.limits, name)).name] = name
                except Refusal as exc:
                    if exc.status == 400:  # not a file at all: a malformed request
                        raise
                    refused.append((name, exc))
            skipped = [{"name": name, "reason": exc.reason.removeprefix(f"{name}: ")} for name, exc in refused]
            if not names:
                statuses = {exc.status for _, exc in refused}
                raise Refusal(statuses.pop() if len(statuses) == 1 else 422,
                              "none of the support images is usable: " + "; ".join(exc.reason for _, exc in refused))
            entry, left_out = await service.run(_adapt_job, service, model_id, support, steps, names)
        return JSONResponse({"model": entry.describe(), "skipped": skipped + left_out})

    async def result(request: Request) -> Response:
        rid = request.path_params["rid"]
        return FileResponse(service.result(rid), media_type="image/png", headers={"Cache-Control": "no-store"})

    async def make_zip(request: Request) -> Response:
        check_body_size(request.headers.get("content-length"), service.limits)
        try:
            items = (await request.json())["items"]
            pairs = [(str(item["id"]), _SAFE_NAME.sub("_", str(item["name"]))[:100] or "image.png") for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise Refusal(400, 'expected JSON {"items": [{"id": ..., "name": ...}, ...]}') from exc
        if not pairs:
            raise Refusal(422, "nothing to put in the zip: colorize some images first")
        files = [service.result(rid) for rid, _ in pairs]  # 404 before anything is written
        handle, name = tempfile.mkstemp(suffix=".zip", dir=service.workdir)
        with open(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
            used: set[str] = set()
            for path, (_, arcname) in zip(files, pairs, strict=True):
                stem, n = arcname, 1
                while arcname in used:
                    n += 1
                    arcname = f"{Path(stem).stem}_{n}{Path(stem).suffix or '.png'}"
                used.add(arcname)
                archive.write(path, arcname)
        return FileResponse(name, media_type="application/zip", filename="fewcolor.zip",
                            background=BackgroundTask(Path(name).unlink, missing_ok=True))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/colorize", colorize, methods=["POST"]),
        Route("/api/adapt", adapt, methods=["POST"]),
        Route("/api/result/{rid:str}", result),
        Route("/api/zip", make_zip, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    handlers = {Refusal: _refusal_response, HTTPException: _http_error_response, Exception: _error_response}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
