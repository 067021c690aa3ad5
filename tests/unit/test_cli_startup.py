"""Every service starts through ``pipeline.cli``, which imports each package's ``cli`` module to
register its commands: that must not load the libraries only some services need."""

from __future__ import annotations

import ast
import subprocess
import sys

HEAVY = ("river", "scipy", "matplotlib", "apprise", "influxdb_client", "pandas", "numpy")


def test_the_command_line_loads_no_stage_library_until_a_command_needs_it() -> None:
    probe = f"import sys, pipeline.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_package_exports_still_resolve_on_first_use() -> None:
    probe = (
        "import sys\n"
        "from detectors import DetectorStack\n"
        "from playbooks import render_map\n"
        "from alerts import AlertService, GROUP_ID\n"
        "from sink import SinkProcessor\n"
        "import detectors\n"
        "assert detectors.DetectorStack is DetectorStack\n"
        "try:\n"
        "    detectors.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    missing, loaded = out.strip().splitlines()
    assert missing == "module 'detectors' has no attribute 'no_such_name'"
    assert {"river", "matplotlib", "apprise", "influxdb_client"} <= set(ast.literal_eval(loaded))
