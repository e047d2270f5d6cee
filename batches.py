"""Batches drawn by index from a split's decoded clips, normalised on the device inside the step.

A split's clips are one uint8 array (videos, frames, H, W, 3). Where it fits (CLIPS_ON_DEVICE) it
lives on the GPU and a batch is one index_select there: no worker, no copy, no per-video Python.
Otherwise (and on a CPU, whose memory is the device's) it stays in host memory; on a GPU each batch
is gathered into pinned memory one batch ahead in a thread and copied without blocking. Either way
the float conversion and the normalisation run on the device, on the batch, in the layout the
model wants: (B, T, H, W, 3) uint8 permuted to (B, T, 3, H, W) is channels_last for every frame.
"""
import math
from concurrent.futures import ThreadPoolExecutor

import torch

# The backbone's (ImageNet) normalisation, applied to every frame.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize(clips):
    """uint8 (..., H, W, 3) clips -> float (..., 3, H, W), normalised for the backbone, on their device,
    in place after the conversion; the permuted layout is channels_last. The arithmetic of the
    per-video path before (x / 255 - mean) / std, so its numbers carry over bit for bit."""
    mean, std = _constants(clips.device)
    return clips.float().div_(255).sub_(mean).div_(std).movedim(-1, -3)


_CONSTANTS = {}


def _constants(device):
    """MEAN and STD as tensors on `device`, made once (a tensor built from a list for a GPU is a blocking
    copy: not once per batch)."""
    if device not in _CONSTANTS:
        _CONSTANTS[device] = torch.tensor(MEAN, device=device), torch.tensor(STD, device=device)
    return _CONSTANTS[device]


def on_device(clips, device, share="auto"):
    """Where a split's clips live: the GPU when they fit in `share` of its free memory ("auto": half,
    leaving the rest to the model's activations), else host memory. On a CPU, host memory."""
    if device.type != "cuda" or not share:  # 0: never
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return clips.numel() * clips.element_size() <= (0.5 if share == "auto" else float(share)) * free


def fewest_clips(frames, image_size):
    """The fewest clips a training batch can hold: BatchNorm in training mode needs more than one value
    per channel, and ResNet-18's last stage (stride 32) sees frames x ceil(image_size / 32)^2 of them per
    clip: one, for one frame of 32x32 or smaller."""
    return 1 if frames * math.ceil(image_size / 32) ** 2 > 1 else 2


def training_steps(permutation, batch_size, world, fewest=1):
    """The permutation cut into steps of world x batch_size videos, each step dealt out to the
    processes (process r takes positions r, r + world, ...), so every video is used once per epoch
    and every process takes the same number of steps (DistributedDataParallel needs that). A last
    step too small to give every process `fewest` videos (fewest_clips) joins the step before it."""
    per_step = world * batch_size
    steps = [permutation[i:i + per_step] for i in range(0, len(permutation), per_step)]
    if len(steps) > 1 and len(steps[-1]) < fewest * world:
        steps[-2:] = [torch.cat(steps[-2:])]
    return steps


def last_step_joins(videos, batch_size, world, fewest=1):
    """Whether training_steps joins the last step of `videos` to the one before."""
    per_step = world * batch_size
    steps = math.ceil(videos / per_step)
    return steps > 1 and videos - (steps - 1) * per_step < fewest * world


class Batches:
    """(video, ef) batches of one split on `device`: shuffled by seed and epoch for training, in order
    for evaluation. Under torchrun each process draws its own disjoint share: of every training step
    (training_steps), or of the split (evaluation: videos rank, rank + world, ...; `order` says which,
    so predictions can be put back in the split's order)."""

    def __init__(self, clips, efs, batch_size, device, shuffle=False, seed=0, rank=0, world=1, share="auto"):
        if len(clips) < world:
            raise ValueError(f"{len(clips)} videos cannot be shared by {world} processes")
        self.device, self.batch_size, self.shuffle = device, batch_size, shuffle
        self.seed, self.epoch, self.rank, self.world = seed, 0, rank, world
        self.resident = on_device(clips, device, share)
        try:
            self.clips = clips.to(device) if self.resident else clips
        except torch.OutOfMemoryError:  # the free memory measured was not all there: host memory, as on a CPU
            self.resident, self.clips = False, clips
            torch.cuda.empty_cache()
        self.efs = torch.as_tensor(efs, dtype=torch.float32).to(self.clips.device)
        self.order = torch.arange(rank, len(clips), world)  # evaluation's share, in the split's order

    def set_epoch(self, epoch):
        """Training batches depend on the seed and the epoch only, so a continued run repeats them."""
        self.epoch = epoch

    def indices(self):
        """This process's batches of video indices for the current epoch."""
        if not self.shuffle:
            return list(self.order.split(self.batch_size))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)  # as DistributedSampler draws it
        permutation = torch.randperm(len(self.clips), generator=generator)
        steps = training_steps(permutation, self.batch_size, self.world, fewest_clips(*self.clips.shape[1:3]))
        return [step[self.rank::self.world] for step in steps]

    def __len__(self):
        if not self.shuffle:
            return math.ceil(len(self.order) / self.batch_size)
        videos = len(self.clips)
        return math.ceil(videos / (self.world * self.batch_size)) - last_step_joins(
            videos, self.batch_size, self.world, fewest_clips(*self.clips.shape[1:3]))  # as training_steps

    def __iter__(self):
        batches = self.indices()
        if self.resident or self.device.type == "cpu":  # one index_select per batch, where the clips are
            sizes = [len(index) for index in batches]
            # the epoch's indices copied once: a copy from pageable memory per batch would wait for the GPU
            for index in torch.cat(batches).to(self.device).split(sizes) if batches else []:
                yield normalize(self.clips[index]), self.efs[index]
            return
        with ThreadPoolExecutor(1) as pool:  # from host memory: the next batch is gathered while one trains
            ahead = pool.submit(self.pinned, batches[0]) if batches else None
            for i in range(len(batches)):
                clips, efs = ahead.result()
                if i + 1 < len(batches):
                    ahead = pool.submit(self.pinned, batches[i + 1])
                yield (normalize(clips.to(self.device, non_blocking=True)),
                       efs.to(self.device, non_blocking=True))

    def pinned(self, index):
        """A batch's clips and EFs gathered from host memory into pinned memory, for a copy that does not
        block (the caching host allocator reuses the buffer only once its copy is done)."""
        clips = torch.empty((len(index),) + tuple(self.clips.shape[1:]), dtype=self.clips.dtype,
                            pin_memory=True)
        return torch.index_select(self.clips, 0, index, out=clips), self.efs[index].pin_memory()
