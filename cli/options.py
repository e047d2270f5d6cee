"""The command line of every script, derived from config.py's constants (each constant an option by its
lower-case dashed name, its comment the help, grouped by config.py's section headings), and the checks of a
configuration: config.py as edited (cli/kinds.py), then the values together. Scripts use these through
the package: cli.load, cli.parser, cli.defaults, cli.differences, cli.ConfigError."""
import argparse
import os
import re
import textwrap
import tokenize
from types import SimpleNamespace

from cli import kinds
from cli import rules

config = kinds.import_config()  # a broken config.py: one message, exit 2


class ConfigError(ValueError):
    pass


def defaults():
    """Every upper-case constant of this module, by name."""
    return {k: v for k, v in vars(config).items() if k.isupper() and k != "QUICK"}


def check_file():
    """config.py's values as edited, each of its kind (cli/kinds.py), before any option
    is read: a quoted boolean or number, a number where a list belongs, a renamed constant are one
    message."""
    module = config
    values = {k: v for k, v in vars(module).items() if k.isupper()}
    found = kinds.problems(values)
    if found:
        raise ConfigError("config.py was edited into values the experiment cannot take: " + "; ".join(found))
    for name, value in values.items():  # a whole number given to a number: a float, as on the command line
        setattr(module, name, value)


def _dashed(name):
    return name.lower().replace("_", "-")


def _sections():
    """[(heading, [(NAME, help)])] read from this file's source, so the help has no second copy to keep in
    step: a constant's help is its trailing comment, else the comment block right above it."""
    sections, block, trailing = [], [], {}
    with open(config.__file__) as f:
        tokens = list(tokenize.generate_tokens(f.readline))
    for tok in tokens:  # comments after code on the same line, by line number
        if tok.type == tokenize.COMMENT and tok.line[:tok.start[1]].strip():
            trailing[tok.start[0]] = tok.string.lstrip("#").strip()
    for tok in tokens:
        if tok.type == tokenize.COMMENT and tok.start[1] == 0:
            heading = re.fullmatch(r"# --- (.+?) -*", tok.string)
            if heading:
                sections.append((heading[1], []))
            else:
                block.append(tok.string.lstrip("#").strip())
        elif tok.type == tokenize.NL and not tok.line.strip():  # a blank line ends a comment block
            block = []
        elif tok.type == tokenize.NAME and tok.start[1] == 0:
            if sections and tok.string.isupper() and tok.string != "QUICK":
                sections[-1][1].append((tok.string, trailing.get(tok.start[0]) or " ".join(block)))
            block = []
    return sections


def _show(value):
    """A value as it is written on the command line."""
    if isinstance(value, list):
        return ",".join(map(_show, value))
    return str(value).lower() if value is None or isinstance(value, bool) else str(value)


# What an empty list's elements are, since its default cannot say (kinds.KINDS names the kind).
_empty_list_element = {"a list of texts in quotes": "", "a list of numbers": 0.0,
                       "a list of whole numbers": 0}


def _type(default, kind=None):
    """The argparse type of a constant, from its default (a list: comma-separated, its first element's type,
    an empty one's from its `kind`); its __name__ is the type that argparse's error message names."""
    like = (default or [_empty_list_element.get(kind, 0.0)])[0] if isinstance(default, list) else default

    def scalar(t):
        t = t.strip()
        if isinstance(like, bool):  # true or false in any case, nothing else: "no" or "0" may be a typo
            if t.lower() in ("true", "false"):
                return t.lower() == "true"
            raise ValueError(t)
        if like is not None:
            return type(like)(t)
        if t.lower() == "none":  # only a constant whose default is None takes none
            return None
        for kind in (int, float):  # the most specific type that fits
            try:
                return kind(t)
            except ValueError:
                pass
        return {"true": True, "false": False}.get(t.lower(), t)

    def convert(text):
        if isinstance(default, list):
            return [scalar(t) for t in text.split(",") if t.strip()]
        return scalar(text)
    name = "value" if like is None else type(like).__name__
    convert.__name__ = f"comma-separated {name} list" if isinstance(default, list) else name
    return convert


def _metavar(default):
    like = default[0] if isinstance(default, list) and default else default
    name = {bool: "BOOL", int: "N", float: "X", str: "TEXT"}.get(type(like), "VALUE")
    return f"{name},..." if isinstance(default, list) else name


class _Formatter(argparse.RawDescriptionHelpFormatter):  # a script's docstring keeps its layout
    def _split_lines(self, text, width):  # and --option-names are not broken at their dashes
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def parser(description=None):
    """An argparse parser with --quick, --fresh and every constant as --lower-dashed-name, grouped by this
    file's section headings. A script adds its own arguments to it and passes it to load()."""
    check_file()
    # The usage names not every option; abbreviations are off, so --num-epoch never means --num-epochs.
    p = argparse.ArgumentParser(description=description, formatter_class=_Formatter,
                                usage="%(prog)s [-h] [--quick] [--fresh] [--option VALUE ...]",
                                allow_abbrev=False,
                                epilog="Lists are comma-separated; booleans take true or false (in any "
                                       "case); none is\nNone. Explicit options win over --quick.")
    p.add_argument("--quick", action="store_true",
                   help="the laptop-CPU preset: a smaller input, a shorter schedule (the --quick values "
                        "below)")
    p.add_argument("--fresh", dest="FRESH", action="store_true", default=argparse.SUPPRESS,
                   help="archive the earlier results and checkpoints and start again")
    values = defaults()
    internal = ("SAMPLE_DATA_ROOT", "FRESH", "NOT_RESULTS")  # in the namespace, not options (--fresh is)

    def option(match):
        """The comments are written for Python: constants and values as typed on the command line."""
        name = match[0]
        if name in ("True", "False", "None"):
            return name.lower()
        return f"--{_dashed(name)}" if name in values and name not in internal else name
    for heading, constants in _sections():
        group = p.add_argument_group(heading)
        for name, text in constants:
            if name in internal:
                continue
            default = values[name]
            text = re.sub(r"\b([A-Z][A-Z0-9_]+|True|False|None)\b", option, text)
            quick = f"; --quick {_show(config.QUICK[name])}" if name in config.QUICK else ""
            text += f" (default {_show(default)}{quick})"
            group.add_argument(f"--{_dashed(name)}", dest=name,
                               type=_type(default, kinds.KIND.get(name)),
                               default=argparse.SUPPRESS, metavar=_metavar(default),
                               help=text.replace("%", "%%"))
    return p


def load(argv=(), p=None):
    """Defaults, then the --quick preset, then explicit options; validated. Returns every constant in a
    SimpleNamespace. p: a parser() to which a script added its own arguments; they come along in the
    namespace under their lower-case dest names. An unknown option or a bad value exits through argparse
    (usage and message on stderr, SystemExit(2)); a bad configuration raises ConfigError."""
    args = vars((p or parser()).parse_args(list(argv)))
    values = defaults()
    if args.pop("quick"):
        values.update(config.QUICK)
    values.update(args)  # only the options given: the others are SUPPRESSed
    cfg = SimpleNamespace(**values)
    validate(cfg)
    if cfg.CHECKPOINT_DIR is None:  # inside the results folder (not a result: it may move with it)
        cfg.CHECKPOINT_DIR = os.path.join(cfg.RESULTS_DIR, "checkpoints")
    return cfg


def differences(old, new):
    """'NAME: old -> new' for every constant that changes results."""
    keys = (set(old) | set(new)) - set(config.NOT_RESULTS)
    return [f"{_dashed(k)}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(keys)
            if old.get(k) != new.get(k)]


def device_problems(name):
    """--device: auto, cpu, cuda or cuda:N, and a GPU only where there is one (checked with the options,
    not at the first tensor moved)."""
    import torch  # here: config.py is imported by scripts that have not loaded torch yet
    if name == "auto":
        return []
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        return [f"device {name!r} is not a device ({e}); use auto, cpu, cuda or cuda:N"]
    if device.type == "cpu":
        return []
    if device.type != "cuda":
        return [f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N"]
    if not torch.cuda.is_available():
        return [f"device {name!r} asks for a GPU but CUDA is not available here; use --device cpu or auto"]
    if device.index is not None and device.index >= torch.cuda.device_count():
        return [f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s); use cuda:0 .. "
                f"cuda:{torch.cuda.device_count() - 1}"]
    return []


def validate(cfg):
    """Every option against what it takes (cli/rules.py's table) and the device."""
    problems = rules.problems(cfg) + device_problems(cfg.DEVICE)
    if problems:
        raise ConfigError("bad configuration: " + "; ".join(problems))

