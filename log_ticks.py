"""Log axes labelled in plain numbers (0.5, 1, 2, 5 ms; not 5×10⁻¹) whose labels never overlap: the
densest 1-2-5 series of ticks the axis has room for."""
import matplotlib
import matplotlib.font_manager
import matplotlib.ticker
import numpy as np

# The ticks a log axis may label, densest first: mantissas in every decade (1, 2, 5: 0.5, 1, 2, 5, 10 ms).
MANTISSAS = [(1, 2, 3, 4, 5, 6, 8), (1, 2, 3, 5), (1, 2, 5), (1, 3), (1,)]


def plain(value):
    """A tick label as a plain number: 0.05, 2, 40, 1000 (not 5×10⁻² or 10³)."""
    return f"{value:.6g}" if 1e-4 <= abs(value) < 1e6 or value == 0 else f"{value:.0e}"


def log_ticks(low, high, room):
    """The labelled ticks of a log axis from `low` to `high`: the densest of MANTISSAS whose neighbours
    lie at least `room` (a fraction of the axis, per label: room(label) -> fraction) apart, every tick
    in view; beyond that, every n-th power of ten."""
    span = np.log10(high / low)
    first, last = int(np.floor(np.log10(low))), int(np.ceil(np.log10(high)))
    candidates = [[m * 10.0 ** e for e in range(first, last + 1) for m in subs] for subs in MANTISSAS]
    candidates += [[10.0 ** e for e in range(first, last + 1) if e % step == 0] for step in (2, 3, 5, 10)]
    for ticks in candidates:
        ticks = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
        where = [np.log10(t / low) / span for t in ticks]
        gaps = [b - a for a, b in zip(where, where[1:])]
        needed = [(room(plain(a)) + room(plain(b))) / 2 for a, b in zip(ticks, ticks[1:])]
        if len(ticks) >= 2 and all(gap >= need for gap, need in zip(gaps, needed)):
            return ticks
    return [10.0 ** round(np.log10(np.sqrt(low * high)))]  # a view narrower than any two labels


def plain_log_ticks(axis):
    """Label a log axis (or a log colour bar) in plain numbers that never overlap: major ticks at the
    densest 1-2-5 series (log_ticks) the axis has room for, unlabelled minor ticks at every mantissa.
    Call it once the data are drawn (it reads the axis's view and size)."""
    low, high = sorted(axis.get_view_interval())
    fig, box = axis.axes.figure, axis.axes.get_position()
    size = 72 * (box.height * fig.get_figheight() if axis.axis_name == "y"
                 else box.width * fig.get_figwidth())  # the axis's length in points
    font = matplotlib.font_manager.FontProperties(size=matplotlib.rcParams[f"{axis.axis_name}tick.labelsize"])
    points = font.get_size_in_points()

    def room(label):  # the label's extent along the axis, with a gap of one character, in axis fractions
        return ((0.62 * len(label) + 0.8) * points if axis.axis_name == "x" else 1.6 * points) / size
    ticks = log_ticks(low, high, room)
    axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: plain(value)))
    axis.set_minor_locator(matplotlib.ticker.LogLocator(subs=np.arange(2, 10)))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
