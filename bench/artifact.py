"""The code the cold-start measurement imports: an x86_64 twin of the `sam build` artifact, a naive build.

`sam build` fetches aarch64 wheels (the Lambda target), which cannot run on this x86_64 machine, so
the benchmark builds a twin with the same steps (`layer/Makefile` with PLATFORMS=manylinux2014_x86_64)
next to a naive build of the same code: the same requirements installed by plain pip, no bytecode,
the `shared` package copied as is (what the default SAM python builder ships). boto3 plays the part of
the Lambda runtime's copy: installed once, compiled, and put after the layer on sys.path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import ROOT

WORK = ROOT / "artifacts" / "bench"
FUNCTIONS = ("page", "token", "rtc", "sip", "observer")
X86 = "manylinux2014_x86_64"


def python313() -> str:
    """The interpreter of the Lambda runtime when installed (what `scripts/find-python` finds)."""
    return subprocess.run(
        [str(ROOT / "scripts" / "find-python")], check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass(frozen=True)
class Build:
    functions: Path  # functions/<name>/ as sam build copies them
    layer: Path  # what Lambda mounts at /opt/python
    runtime: Path  # boto3 as the Lambda runtime provides it


def _pip_target(python: str, target: Path, *requirements: str, compile_: bool = False) -> None:
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    command += ["--root-user-action", "ignore", "--target", str(target), "--only-binary=:all:"]
    command += ["--implementation", "cp", "--platform", X86, "--python-version", "3.13"]
    subprocess.run([*command, *requirements], check=True)
    shutil.rmtree(target / "bin", ignore_errors=True)
    if compile_:
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(target)], check=True)


def _copy_shared(site: Path) -> None:
    shutil.rmtree(site / "shared", ignore_errors=True)
    shutil.copytree(ROOT / "shared", site / "shared", ignore=shutil.ignore_patterns("__pycache__"))


def _copy_functions(target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    for name in FUNCTIONS:
        shutil.copytree(
            ROOT / "functions" / name, target / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


def _built_from_current_requirements(site: Path) -> bool:
    """A reusable build exists and was installed from today's requirements.txt."""
    recorded = site.parent / "requirements.txt"
    current = (ROOT / "requirements.txt").read_text()
    return (site / "shared").is_dir() and recorded.is_file() and recorded.read_text() == current


def _record_requirements(site: Path) -> None:
    (site.parent / "requirements.txt").write_text((ROOT / "requirements.txt").read_text())


def build_all(python: str, *, reuse: bool = False) -> tuple[Build, Build]:
    """(optimised twin, naive build); `reuse` keeps earlier builds (quick runs, the smoke test)."""
    WORK.mkdir(parents=True, exist_ok=True)
    runtime = WORK / "runtime"
    if not (runtime / "boto3").is_dir() or not (runtime / "snapshot_restore_py.py").is_file():
        # What Lambda's python3.13 managed runtime preinstalls: boto3 and the SnapStart hooks library.
        _pip_target(python, runtime, "boto3", "snapshot-restore-py", compile_=True)

    twin = WORK / "twin"
    if not (reuse and _built_from_current_requirements(twin / "layer" / "python")):
        shutil.rmtree(twin, ignore_errors=True)
        make = ["make", "--no-print-directory", "-s", "-C", str(ROOT / "layer"), "build-SharedLayer"]
        make += [f"ARTIFACTS_DIR={twin / 'layer'}", f"PLATFORMS={X86}", f"PYTHON={python}"]
        subprocess.run(make, check=True)
        _record_requirements(twin / "layer" / "python")
    else:  # reused: refresh our own package the way layer/Makefile installs it
        _copy_shared(twin / "layer" / "python")
        shared = str(twin / "layer" / "python" / "shared")
        compile_ = [python, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", shared]
        subprocess.run(compile_, check=True)
    optimised = Build(_copy_functions(twin / "functions"), twin / "layer" / "python", runtime)

    naive = WORK / "naive"
    if not (reuse and _built_from_current_requirements(naive / "python")):
        shutil.rmtree(naive, ignore_errors=True)
        _pip_target(python, naive / "python", "--no-compile", "-r", str(ROOT / "requirements.txt"))
        _record_requirements(naive / "python")
    _copy_shared(naive / "python")
    return optimised, Build(_copy_functions(naive / "functions"), naive / "python", runtime)


# ----------------------------------------------------------------------------- sizes


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes unzipped, bytes as a deflate zip) of everything under `path`."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    unzipped = sum(p.stat().st_size for p in files)
    archive = WORK / "size.zip"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for file in files:
            out.write(file, file.relative_to(path))
    zipped = archive.stat().st_size
    archive.unlink()
    return unzipped, zipped


def sam_build_dir() -> Path:
    return ROOT / ".aws-sam" / "build"


def bundled_boto(path: Path) -> list[str]:
    return sorted(p.name for p in path.rglob("*") if p.is_dir() and p.name in ("boto3", "botocore"))


if __name__ == "__main__":  # build only: python -m bench.artifact
    print(build_all(python313() if len(sys.argv) < 2 else sys.argv[1]))
