"""Run Reynard: `python server.py [serve|migrate|create-admin|backup|check] [flags]`."""

import time

STARTED = time.perf_counter()

if __name__ == "__main__":
    from reynard.cli import main

    raise SystemExit(main(started=STARTED))
