"""The executor child of :func:`nbrunner.run_pipeline`: papermill on one notebook.

``python -m nbrunner.executor --input NB --output NB --kernel K --cwd DIR
--parameters-stdin`` reads ``{"parameters": {...}, "shown": {...}}`` (JSON) from its stdin and
exits 0 when every cell ran, 1 when one raised (the output notebook holds the traceback). It
is a separate process so that the runner can stop it, kernel and all, at the run's wall-clock
limit; it imports nothing of the runner.

Parameters never travel on a command line (``ps`` shows it to every local user). A parameter
whose ``shown`` value differs from the real one (a URL with its password masked) is handed to
the kernel through its environment (``PHANTOMLAB_SECRET_<name>``, readable by this user only):
the injected-parameters cell reads it from there, and the executed notebook, its metadata and
its HTML carry only the masked text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time

logger = logging.getLogger("nbrunner.executor")

# papermill re-parses the parameters cell with an inspector that does not know `X | None` and
# then calls those parameters unknown; the runner has already validated them with its own
# parser (nbrunner.params), so these two warnings are only noise in runner.log.
_NOISE = ("Passed unknown parameter:", "Unable to parse line")


def _drop_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE)


def _exit_with_parent(parent_pid: int, poll_sec: float = 1.0) -> None:
    """Stop this executor when the runner that started it is gone.

    The executor runs in a session of its own (so that the runner can kill its whole group), so
    a scheduler that kills the runner's process group (Airflow on a task timeout, systemd)
    does not reach it; without this it would run on, orphaned. Its kernel follows it: ipykernel
    exits when its parent does.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_sec)
        logger.error("the runner (pid %d) is gone; stopping this run", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


SECRET_ENV_PREFIX = "PHANTOMLAB_SECRET_"


def _python_translator(secret: dict[str, str]):
    """papermill's Python translator, reading the ``secret`` parameters from the environment.

    ``secret`` maps a parameter name to its environment variable. The injected cell then says
    ``database_url = __import__("os").environ["PHANTOMLAB_SECRET_database_url"]`` with the
    masked value as a comment, instead of the password itself.
    """
    from papermill.translators import PythonTranslator

    class SecretAwareTranslator(PythonTranslator):
        @classmethod
        def codify(cls, parameters, comment="Parameters"):
            content = f"{cls.comment(comment)}\n"
            for name, val in parameters.items():
                if name in secret:
                    read = f'__import__("os").environ[{secret[name]!r}]'
                    if not isinstance(val, str):  # a list holding a URL: JSON in the variable
                        read = f'__import__("json").loads({read})'
                    line = f"{name} = {read}  # {cls.translate(val)}, password kept out of here"
                else:
                    line = cls.assign(name, cls.translate(val))
                content += f"{line}\n"
            return content

    return SecretAwareTranslator


def _read_parameters(stream) -> tuple[dict, dict]:
    """``(parameters, shown)`` from the runner's JSON on ``stream``."""
    payload = json.loads(stream.read() or "{}")
    params = payload.get("parameters", {})
    return params, payload.get("shown", params)


def main(argv: list[str] | None = None) -> int:
    """Execute one notebook with papermill (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--cwd", required=True)
    parser.add_argument(
        "--parameters-stdin",
        action="store_true",
        help="read the parameters as JSON from stdin (never from argv)",
    )
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _exit_with_parent(os.getppid())
    params, shown = _read_parameters(sys.stdin) if args.parameters_stdin else ({}, {})
    import papermill
    from papermill.translators import papermill_translators

    for name in ("papermill", "papermill.translators"):
        logging.getLogger(name).addFilter(_drop_noise)
    secret = {}
    for name, value in params.items():
        if shown.get(name, value) != value:
            secret[name] = f"{SECRET_ENV_PREFIX}{name}"
            os.environ[secret[name]] = value if isinstance(value, str) else json.dumps(value)
    # the kernel is looked up by name first: this translator writes the injected cell
    papermill_translators.register(args.kernel, _python_translator(secret))

    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters={name: shown.get(name, value) for name, value in params.items()},
            kernel_name=args.kernel,
            cwd=args.cwd,
            log_output=True,
            progress_bar=args.progress,
            request_save_on_cell_execute=True,
        )
    except papermill.PapermillExecutionError as exc:  # the notebook holds the traceback
        logger.error("cell %s raised %s: %s", exc.exec_count, exc.ename, exc.evalue)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
