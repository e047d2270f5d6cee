"""How every script talks to the shell: the command line derived from config.py's constants (options),
what each constant is (kinds) and takes (rules), and the exit code a script ends with (exits). Importing
this package imports config.py, a broken one as one message and exit 2 (kinds.import_config): scripts
import it before anything that reads config.py."""
from cli.options import ConfigError, defaults, differences, load, parser  # noqa: F401
