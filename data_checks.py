"""What makes data unusable, found before any model trains: EF written as fractions, clips that cannot fit
in memory; and DataError, the one error of the data on disk (dataset.DataError is this class)."""


class DataError(Exception):
    """A problem with the dataset on disk; the message says which file and what to do."""


def check_ef_scale(filelist, path):
    """EF is read in percent: a FileList whose every EF lies in 0-1 holds fractions (0.47 for 47%), and a
    model trained on them runs to the end with errors 100x too small (a mean-predictor MAE of 0.07)."""
    largest = filelist.EF.max()
    if largest <= 1:
        raise DataError(f"{path}: every EF (column EF) lies between 0 and 1 (the largest is {largest:g}), "
                        f"fractions rather than percent (0.47 for 47%); EF is read in percent, 0-100. "
                        f"Multiply the EF column by 100.")


def check_memory(splits, videos):
    """Refuse, naming the options, clips that cannot fit in host memory: decoding them would end in the
    kernel's out-of-memory kill, with no message, after minutes of decoding."""
    split = next(iter(splits.values()))
    needed = videos * split.num_frames * split.image_size ** 2 * 3
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(f"the decoded clips of {videos} videos ({split.num_frames} frames of "
                        f"{split.image_size}x{split.image_size}) need {needed / 2**30:.1f} GiB of memory and "
                        f"{available / 2**30:.1f} GiB is available: lower --num-frames or --image-size, or "
                        f"free memory (under torchrun the processes share one copy)")


def available_memory():
    """MemAvailable of /proc/meminfo in bytes; None where there is none (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
