"""`kill` (SIGTERM) stops a styleforge command like Ctrl-C: cleanup runs, exit status 130."""

import signal
import subprocess
import sys
import time


def test_sigterm_runs_cleanup(tmp_path):
    marker = tmp_path / "cleaned"
    code = (
        "import sys, time\n"
        "from styleforge import cli\n"
        "def register(sub):\n"
        "    p = sub.add_parser('sleepy')\n"
        "    p.set_defaults(func=run)\n"
        "def run(args):\n"
        "    try:\n"
        "        print('ready', flush=True)\n"
        "        time.sleep(60)\n"
        "    finally:\n"
        f"        open({str(marker)!r}, 'w').write('x')\n"
        "import types\n"
        "mod = types.ModuleType('sleepy_cmd'); mod.register = register; sys.modules['sleepy_cmd'] = mod\n"
        "cli.COMMAND_MODULES = {'sleepy_cmd': ('sleepy',)}\n"
        "sys.exit(cli.main(['sleepy']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    time.sleep(0.1)
    assert marker.exists()
