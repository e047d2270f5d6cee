"""A run's records: the earlier run of the same inputs continued (or archived with --fresh), what every
model of a seed shares (SeedContext), an earlier run's finished models reused, and each model's record
written into results.json as soon as it is measured. Nothing here changes a number."""
import os
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

import measurement
import reports
import processes
from bookkeeping import ledger
from bookkeeping import run_identity
from processes import log


@dataclass(frozen=True)
class SeedContext:
    """What every model of one seed shares: the seed, the folder of its checkpoints, training states and
    epoch logs, and the run's configuration, data loaders, device, measuring inputs (main.measuring_inputs)
    and training EFs (the head's initialisation); for distillation, once the baseline is trained, the
    loader "distill" (seed_models.with_teacher) and how far the baseline's predictions for the training
    videos are from their labels (teacher_train_mae: what a distillation target can add); once measured,
    the seed's coupled-group sensitivity (the sensitivity allocation's, sensitivity.group_sensitivity)."""
    seed: int
    folder: str
    cfg: SimpleNamespace
    loaders: dict
    device: torch.device
    inputs: SimpleNamespace
    train_efs: np.ndarray
    sensitivity: tuple = ()
    teacher_train_mae: float = None


def earlier_run(cfg, previous, identity, skipped):
    """The earlier run's results to continue ({} when there is none, or with --fresh), on every process."""
    if processes.is_main():  # every input checked: only now may --fresh archive
        earlier = ledger.start_or_continue(cfg, previous, identity, skipped, log)
        run_identity.claim_checkpoints(cfg, identity, log)
    processes.barrier()
    if not processes.is_main():  # after the main process has archived (--fresh) or checked the old run
        unfresh = SimpleNamespace(**{**vars(cfg), "FRESH": False})
        earlier = ledger.start_or_continue(unfresh, ledger.earlier_results(unfresh), identity, skipped, log)
    return earlier


def seed_context(experiment, seed):
    folder = os.path.join(experiment.cfg.CHECKPOINT_DIR, f"seed{seed}")
    os.makedirs(folder, exist_ok=True)
    return SeedContext(seed=seed, folder=folder, cfg=experiment.cfg, loaders=experiment.loaders,
                       device=experiment.device, inputs=experiment.inputs,
                       train_efs=experiment.splits["train"].efs)


def reused(experiment, ctx, name):
    """(record, model) of a model an earlier run finished, or None (ledger.reuse)."""
    return ledger.reuse(experiment.done, name, ctx.seed, ctx.cfg, ctx.folder, identity=ctx.inputs.identity,
                        log=log, device=ctx.device, main=processes.is_main())


def finished(experiment, record, folder, phase):
    """A model's record into results.json as soon as it is measured."""
    results = experiment.results
    results["models"].append(ledger.relative_paths(record, experiment.cfg.RESULTS_DIR))
    experiment.clock.lap(phase)
    if processes.is_main():  # earlier records not reused yet stay in results.json
        reports.write_results(ledger.with_earlier(results, experiment.earlier), experiment.cfg.RESULTS_DIR,
                              summary=False)
        ledger.forget_training_state(folder, record["name"])  # only now: the record is safe
        if "seconds_training" in record:
            log(measurement.time_line(record))
