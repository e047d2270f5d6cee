"""How every script beside main.py ends (main.py's own block ends the same way): a project error is one
line on stderr naming the file or option and what to do, never a traceback, and the exit code says which
kind of end it was, so a shell or CI can tell them apart:

    0    done
    1    readme_tables.py --check: a document is stale (and Python's own code for an uncaught error: a bug)
    2    bad input: an option, config.py, the data, or a file that is damaged or not of the kind read
    3    a folder another run is writing to (main.py)
    4    this machine cannot do it: a GPU that is there but cannot be used (check_gpu.py)
    130  interrupted (Ctrl-C)
"""
import sys

STALE, BAD_INPUT, IN_USE, MACHINE, INTERRUPTED = 1, 2, 3, 4, 130


class Unreadable(ValueError):
    """A file a script reads is damaged or not of the kind it takes; the message names it and what to do."""


# The project's errors, by the module that defines them, each raised with a message that names the file or
# option: looked up among the modules loaded, so that this module imports none of them (dataset imports
# create_sample_data, which ends through here; a script that never imported one cannot raise it).
ERRORS = {("cli.options", "ConfigError"): BAD_INPUT, ("data_checks", "DataError"): BAD_INPUT,
          ("flop_budgets", "AllocationError"): BAD_INPUT, ("quantize", "QuantizationError"): BAD_INPUT,
          ("storage.folders", "WriteFailed"): BAD_INPUT, ("storage.locks", "FolderInUse"): IN_USE}


def code_of(error):
    """The exit code of a project error, or None for any other exception (a bug: its traceback stays)."""
    if isinstance(error, Unreadable):
        return BAD_INPUT
    for (module, name), code in ERRORS.items():
        kind = getattr(sys.modules.get(module), name, None)
        if kind is not None and isinstance(error, kind):
            return code
    return BAD_INPUT if isinstance(error, OSError) else None


def message(error):
    """The line printed: the error's own message; an OSError's with the file it names."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return (f"{error.strerror}: {error.filename} (check the path, the free space and the folder's "
                f"permissions)")
    return str(error)


def run(main, argv, *, again, machine=()):
    """sys.exit with main(argv)'s code (a whole number it returns; anything else is 0), a project error's
    code with its message, or 130 on Ctrl-C with `again` (what to run to go on). machine: the exceptions
    that say this machine cannot do it (check_gpu.py: a GPU's RuntimeError), their first line, MACHINE."""
    try:
        code = main(argv)
    except KeyboardInterrupt:
        print(f"interrupted; {again}", file=sys.stderr)
        sys.exit(INTERRUPTED)
    except Exception as e:  # noqa: BLE001 (a project error ends in its line; any other is raised again)
        code = code_of(e)
        if code is None and isinstance(e, machine):
            code, e = MACHINE, (str(e).splitlines() or [type(e).__name__])[0]
        if code is None:
            raise
        print(f"error: {message(e) if isinstance(e, BaseException) else e}", file=sys.stderr)
        sys.exit(code)
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
