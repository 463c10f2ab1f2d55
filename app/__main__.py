"""Run the `screening` command line with `python -m app`."""

from app.cli import main

# Guarded: spawned worker processes (uvicorn --workers, parallel audit verify) import the
# main module again as ``__mp_main__`` and must not re-run the command.
if __name__ == "__main__":
    main()
