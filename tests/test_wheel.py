"""The release recipe, tested: build the wheel from a copy of the source, install it into a
fresh venv, and run it from there (`localgate --version`, then `localgate serve` answering
/health and /v1/models), plus the tray's icons and the autostart templates read from the
installed package. A missing package or data file fails here.

Offline: the wheel is built with this venv's setuptools (no build isolation), and the fresh
venv sees this venv's site-packages for the dependencies only (its own localgate comes first).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import localgate

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                              "tests", "bench", "artifacts", ".pytest_cache")


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> str:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv}: {out.stdout}\n{out.stderr}"
    return out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
        return json.loads(r.read())


def test_wheel_installs_and_serves(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    t0 = time.monotonic()
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", tmp_path / "dist", ".", cwd=src)
    wheel = next((tmp_path / "dist").glob("localgate-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("localgate/data/catalog.json", "localgate/desktop/icons/tray-normal.png",
                   "localgate/desktop/icons/tray-paused.png",
                   "localgate/desktop/icons/localgate-256.png",
                   "localgate/desktop/templates/localgate.service",
                   "localgate/desktop/templates/dev.localgate.daemon.plist",
                   "localgate/desktop/templates/localgate-autostart.desktop",
                   "localgate/desktop/templates/localgate-startup.cmd",
                   "localgate/dashboard/sessions.py"):
        assert needed in names, f"{needed} missing from {wheel.name}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "localgate = localgate.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    vpy = venv / "bin" / "python"
    # without the tests' PYTHONPATH (the source tree), which would make pip see localgate as
    # installed already and install nothing
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(sys.executable, "-m", "pip", "--python", vpy, "install", "--no-deps", "--no-index",
         "-q", wheel, cwd=tmp_path, env=clean)
    site = Path(_run(vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path).strip())
    (site / "_deps_from_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    print(f"\nwheel built and installed in {time.monotonic() - t0:.1f} s")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[catalog]\nrefresh = false\n")
    env["LOCALGATE_HOME"] = str(home)
    exe = venv / "bin" / "localgate"
    assert _run(exe, "--version", cwd=tmp_path, env=env).strip() == \
        f"localgate {localgate.__version__}"
    where = _run(vpy, "-c", "import localgate, localgate.desktop.icons as i, "
                 "localgate.desktop.autostart as a; print(localgate.__file__); "
                 "print(i.tray_image('paused').size); print(len(a.template('launchd')))",
                 cwd=tmp_path, env=env).split()
    assert where[0].startswith(str(site)), where  # the installed copy, not the checkout
    assert where[1:] == ["(64,", "64)", str(len(_template("launchd")))]

    port = _free_port()
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], cwd=tmp_path,
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "no /health from the installed wheel"
                time.sleep(0.05)
        assert isinstance(health, dict) and health["version"] == localgate.__version__
        models = _get(f"http://127.0.0.1:{port}/v1/models")
        assert isinstance(models, dict) and len(models["data"]) > 100  # the bundled catalog
    finally:
        proc.terminate()
        assert proc.wait(10) == 0, (tmp_path / "serve.log").read_text()


def _template(kind: str) -> str:
    from localgate.desktop import autostart
    return autostart.template(kind)
