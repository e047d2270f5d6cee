"""What is read of a results.json, part by part, in one table: a continued run (ledger.earlier_results)
checks every part it reads before it uses any, so a damaged or hand-edited file is one message naming the
part, the row and the field, not a TypeError or KeyError after the baseline has trained; readme_tables.py
checks its result files against the same table. The other parts are written, never read back."""

NUMBER, WHOLE, TEXT, NUMBERS = "a number", "a whole number", "text", "a list of numbers"
OBJECT = "an object"
# part: (its kind, the fields it (a list: each of its rows) must have, with their kinds)
PARTS = {
    "config": (OBJECT, {}),
    "identity": (OBJECT, {"data": OBJECT, "id": TEXT}),  # ledger.start_or_continue compares them
    "models": ("a list of records", {"name": TEXT, "method": TEXT, "ratio": NUMBER, "seed": WHOLE,
                                     "test_mae": NUMBER, "test_errors": NUMBERS}),
    "sensitivity": ("a list of rows", {"seed": WHOLE, "layer": TEXT, "criterion": TEXT, "ratio": NUMBER,
                                       "val_mae_increase": NUMBER}),
    "group_sensitivity": ("a list of rows", {"seed": WHOLE, "group": TEXT, "ratio": NUMBER, "channels": WHOLE,
                                             "removed": WHOLE, "val_mae_increase": NUMBER}),
    "skipped_videos": ("a list of rows", {"video": TEXT}),
}
REQUIRED = ("config", "models")  # the others are missing from a run that measured none, or from before them


def fits(kind, value):
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {NUMBER: number, WHOLE: number and float(value).is_integer(), TEXT: isinstance(value, str),
            NUMBERS: isinstance(value, list) and all(fits(NUMBER, v) for v in value),
            OBJECT: isinstance(value, dict)}.get(kind, isinstance(value, list))


def problems(results, parts=PARTS, required=REQUIRED):
    """What in `results` (a parsed results.json) does not fit `parts`: the first problem of each part,
    e.g. 'group_sensitivity[3] lacks seed' or 'models[0] has test_mae null, not a number'."""
    if not isinstance(results, dict):
        return [f"it holds {_kind(results)}, not a results object"]
    found = [f"it has no {part}" for part in required if part not in results]
    for part, (kind, fields) in parts.items():
        if part not in results:
            continue
        value = results[part]
        if not fits(kind, value):
            found.append(f"its {part} is {_kind(value)}, not {kind}")
            continue
        rows = enumerate(value) if isinstance(value, list) else [(None, value)]
        for i, row in rows:
            problem = _row_problem(row, fields)
            if problem:
                found.append(f"{part}{'' if i is None else f'[{i}]'} {problem}")
                break
    return found


def _row_problem(row, fields):
    if not isinstance(row, dict):
        return f"is {_kind(row)}, not a row of fields"
    lacking = sorted(set(fields) - set(row))
    if lacking:
        return f"lacks {', '.join(lacking)}"
    wrong = [f"has {name} {_kind(row[name])}, not {kind}" for name, kind in fields.items()
             if not fits(kind, row[name])]
    return wrong[0] if wrong else None


def _kind(value):
    return {type(None): "null", dict: "an object", list: "a list", str: "text", bool: "true or false"}.get(
        type(value), f"{type(value).__name__} {value!r}" if isinstance(value, (int, float)) else "a value")
