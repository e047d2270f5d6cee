"""The one pruning entry point of the experiment: a Pruner takes a model to a method's ratio in one step
(one-shot) or in several (gradual: Zhu & Gupta 2017's cubic ramp), each step pruning only among the
weights or channels still there, so the last step leaves exactly the one-shot sparsity. What a method
prunes is its chooser in methods.py's table (prune_utils.py's and allocation.py's functions); the Pruner
knows no method by name. Gradual steps are spread over the first `ramp_end` of fine-tuning (`due`), so
the model trains at its final sparsity for the rest."""
import importlib
from collections import namedtuple

import torch

import methods
import metrics
from prune_utils import make_permanent, refresh_masked_weights, sparsity_schedule

# What a chooser may read besides the model and the ratio: the input's frames and size (Torch-Pruning traces
# the network on it), the channel rounding, the layers in scope, the steps, the seed's coupled-group
# sensitivity rows (the sensitivity allocation's), and training batches with how many of them a gradient
# criterion reads (criteria.py; never validation or test batches).
Setting = namedtuple("Setting", "num_frames image_size round_to scope steps sensitivity batches batch_count")


def chooser(method):
    """The chooser function of `method`'s row: the function itself, or "module.function" imported now."""
    row = methods.METHODS.get(method)
    if row is None or row.chooser is None:
        prunable = [m for m, r in methods.METHODS.items() if r.chooser is not None]
        raise ValueError(f"unknown pruning method {method!r}; one of {prunable}")
    if callable(row.chooser):
        return row.chooser
    module, _, function = row.chooser.rpartition(".")
    return getattr(importlib.import_module(module), function)


class Pruner:
    """Prunes `model` in place to `ratio` in `steps` calls of step(). steps=1 is one-shot pruning.
    after_step(model): called after every step, before the model is evaluated or trained again (main.py
    re-estimates BatchNorm's statistics there). sensitivity: the seed's coupled-group sensitivity rows,
    for structured_physical_sensitivity. batches: training batches, of which a gradient criterion reads
    batch_count. `allocation`: what a FLOP-matched method reached."""

    def __init__(self, model, method, ratio, num_frames, image_size, round_to=1, scope="backbone", steps=1,
                 remove_masks=False, after_step=None, ramp_end=0.5, sensitivity=(), batches=(),
                 batch_count=0):
        choose = chooser(method)
        if methods.METHODS[method].one_shot and steps > 1:
            raise ValueError(f"{method} is one-shot only: its channels come from one Torch-Pruning step")
        self.model, self.method, self.remove_masks = model, method, remove_masks
        self.after_step = after_step
        self.steps, self.done, self.sparsity_after_pruning, self.ramp_end = steps, 0, None, ramp_end
        self.targets = sparsity_schedule(ratio, steps)
        setting = Setting(num_frames=num_frames, image_size=image_size, round_to=round_to, scope=scope,
                          steps=steps, sensitivity=sensitivity, batches=batches, batch_count=batch_count)
        self.prune, self.allocation = choose(model, ratio, setting)

    @classmethod
    def from_config(cls, model, method, ratio, cfg, **schedule):
        """A Pruner at the configuration's input size (NUM_FRAMES, IMAGE_SIZE), channel rounding
        (PHYSICAL_ROUND_TO), scope (PRUNING_SCOPE) and gradient batches (CRITERION_BATCHES); `schedule`: the
        other keywords of Pruner (steps, remove_masks, after_step, ramp_end, sensitivity, batches)."""
        return cls(model, method, ratio, cfg.NUM_FRAMES, cfg.IMAGE_SIZE, round_to=cfg.PHYSICAL_ROUND_TO,
                   scope=cfg.PRUNING_SCOPE, batch_count=cfg.CRITERION_BATCHES, **schedule)

    def step(self):
        """Prune to the next sparsity of the schedule, among the weights or channels still there."""
        target = self.targets[self.done]
        self.model.to(memory_format=torch.contiguous_format)  # torch's pruning flattens with view()
        refresh_masked_weights(self.model)  # rank by the weights as fine-tuned so far
        self.prune(target)
        if self.remove_masks:  # the reference's flaw: nothing holds the pruned weights at zero
            make_permanent(self.model)
        if self.after_step is not None:
            self.after_step(self.model)
        self.done += 1
        if self.finished:  # before any fine-tuning at this sparsity: the masks must hold it
            self.sparsity_after_pruning = metrics.sparsity(self.model)["sparsity"]

    def due(self, training_steps):
        """The training step (0-based, of `training_steps` in all) at which each pruning step is taken:
        the first at the start, the last after `ramp_end` of them, evenly between, so the model trains
        at its final sparsity for the remaining (1 - ramp_end). Zhu & Gupta prune at equal intervals
        up to a chosen step and fine-tune afterwards; one pruning step per epoch, the last at the start
        of the last epoch, left the cosine learning rate at a quarter and one epoch to recover."""
        if self.steps == 1:
            return [0]
        last = min(round(self.ramp_end * training_steps), max(training_steps - 1, 0))
        return [round(last * k / (self.steps - 1)) for k in range(self.steps)]

    @property
    def finished(self):
        return self.done == self.steps


def apply(model, method, ratio, num_frames, image_size, round_to=1, scope="backbone"):
    """Prune `model` in place to `ratio` in one step."""
    pruner = Pruner(model, method, ratio, num_frames, image_size, round_to=round_to, scope=scope)
    pruner.step()
    return model
