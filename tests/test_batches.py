"""The data path: every split decoded once into one uint8 array, on every core; batches drawn from it by
index, every training video once per epoch however many processes share it, normalised like the
backbone expects, in the order a continued run repeats."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import batches
import dataset
from batches import Batches, training_steps
from dataset import EchoNetVideoDataset


def clips(videos, frames=2, size=8, seed=0):
    return torch.randint(0, 256, (videos, frames, size, size, 3), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("videos, batch_size, world",
                         [(37, 4, 2), (8, 4, 2), (9, 4, 2), (33, 4, 3), (5, 16, 2)])
def test_every_training_video_is_used_once_per_epoch_by_processes_taking_the_same_steps(videos, batch_size,
                                                                                        world):
    data = clips(videos)
    for epoch in (1, 2):
        shares = []
        for rank in range(world):
            share = Batches(data, torch.arange(videos), batch_size, torch.device("cpu"), shuffle=True, seed=3,
                            rank=rank, world=world)
            share.set_epoch(epoch)
            shares.append([ef.long() for _, ef in share])  # the EF here is the video's index
            assert len(shares[-1]) == len(share)
        assert len({len(s) for s in shares}) == 1  # DistributedDataParallel needs the same number of steps
        assert all(len(b) > 0 for s in shares for b in s)
        used = torch.cat([b for s in shares for b in s])
        assert sorted(used.tolist()) == list(range(videos))  # each video exactly once
    one, two = (Batches(data, torch.arange(videos), batch_size, torch.device("cpu"), shuffle=True, seed=3)
                for _ in range(2))
    one.set_epoch(1), two.set_epoch(2)
    assert one.indices()[0].tolist() != two.indices()[0].tolist()  # a new order every epoch


def test_a_last_step_too_small_for_every_process_joins_the_one_before():
    steps = training_steps(torch.arange(9), batch_size=4, world=2)
    assert [len(s) for s in steps] == [9]  # 8 + 1: one video cannot be shared by two processes
    assert [len(s) for s in training_steps(torch.arange(10), 4, 2)] == [8, 2]


def test_one_process_draws_the_batches_distributed_sampler_drew():
    """The same batches as the DataLoader before (seed + epoch permutation), so results carry over."""
    data, efs = clips(21), torch.arange(21, dtype=torch.float32)
    sampler = DistributedSampler(TensorDataset(efs), num_replicas=1, rank=0, shuffle=True, seed=42)
    loader = DataLoader(TensorDataset(efs), batch_size=4, sampler=sampler)
    ours = Batches(data, efs, 4, torch.device("cpu"), shuffle=True, seed=42)
    for epoch in (1, 5):
        sampler.set_epoch(epoch), ours.set_epoch(epoch)
        assert [b.tolist() for (b,) in loader] == [ef.tolist() for _, ef in ours]


def test_batches_are_normalised_as_the_per_video_path_did_bit_for_bit_and_channels_last():
    data = clips(6, frames=3, size=16)
    video, ef = next(iter(Batches(data, torch.arange(6.0), 4, torch.device("cpu"))))
    mean = torch.tensor(batches.MEAN).view(3, 1, 1)
    std = torch.tensor(batches.STD).view(3, 1, 1)
    before = torch.stack([(clip.permute(0, 3, 1, 2).float().div_(255) - mean) / std for clip in data[:4]])
    assert video.shape == (4, 3, 3, 16, 16) and ef.tolist() == [0, 1, 2, 3]
    assert torch.equal(video, before)  # so a run's numbers carry over from the DataLoader path
    assert video.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)  # what the model's convs want


def test_evaluation_shards_are_disjoint_and_cover_the_split_in_order():
    data = clips(11)
    shards = [Batches(data, torch.arange(11.0), 4, torch.device("cpu"), rank=r, world=3) for r in range(3)]
    seen = [ef.long().tolist() for shard in shards for _, ef in shard]
    assert sorted(sum(seen, [])) == list(range(11))
    for shard in shards:  # `order` names each shard's videos as it yields them, for train.predict
        assert torch.cat([ef for _, ef in shard]).long().tolist() == shard.order.tolist()


def test_on_a_cpu_the_clips_stay_in_host_memory():
    assert not batches.on_device(clips(2), torch.device("cpu"))


def test_decoding_on_every_core_gives_the_clips_one_thread_gives_and_fills_the_cache(sample_root, tmp_path):
    def splits(cache):
        return {s: EchoNetVideoDataset(sample_root, s, 4, 32, cache_dir=cache) for s in ("train", "test")}
    one, many = splits(None), splits(str(tmp_path / "cache"))
    assert dataset.decode(one, skip_bad=True, threads=1) == [] \
        == dataset.decode(many, skip_bad=True, threads=4)
    for name in ("train", "test"):
        assert many[name].clips.dtype == torch.uint8
        assert many[name].clips.shape == (len(many[name]), 4, 32, 32, 3)
        assert torch.equal(one[name].clips, many[name].clips)
        cached = np.load(many[name].cache_path(many[name].names[-1]))
        assert np.array_equal(cached, many[name].clips[-1].numpy())
    video, ef = many["test"][1]  # a single item, as the ONNX check and INT8 calibration read it
    assert video.shape == (4, 3, 32, 32) and ef == pytest.approx(many["test"].efs[1])
