"""The official aws CLI (PyPI `awscli`), run for many commands in one process.

Each `aws` process spends about a second of CPU importing botocore and loading service
models before it sends one request; the tests look at moto's state with hundreds of
commands, which on a 2-core machine made the CLI the largest consumer of the suite's
CPU. This runs the CLI's own driver (`awscli.clidriver`, the code behind the `aws`
command: the same argument parsing, requests and JSON output) once per command, in one
interpreter that stays up for a test's moto server.

Protocol: one JSON list of arguments per line on stdin; one JSON object per line on
stdout: {"rc": exit code, "out": what the command printed, "err": its stderr}.
The environment (endpoint, region, credentials) is the process's own.
"""

import contextlib
import io
import json
import sys

try:
    from awscli.clidriver import create_clidriver
except ImportError as e:  # the test names this; scripts/setup.sh installs it
    sys.stderr.write(f"the aws CLI's package is not importable by python3: {e}\n")
    sys.exit(3)

answer = sys.stdout
driver = create_clidriver()
for line in sys.stdin:
    args = json.loads(line)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = driver.main(args)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except Exception as e:  # a crash of one command is that command's failure
            err.write(f"{type(e).__name__}: {e}\n")
            rc = 255
    answer.write(json.dumps({"rc": rc, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
    answer.flush()
