"""Student's t distribution for the claims (crossed.py), with fractional degrees of freedom (Satterthwaite's)
and far into the tail, from numpy alone: scipy is not a dependency of the project.

sf(t, df) = P(T > t) = I_x(df / 2, 1 / 2) / 2 for t >= 0, x = df / (df + t^2): the regularized incomplete
beta function, by its continued fraction (Numerical Recipes 6.4, modified Lentz), which converges in
O(sqrt(max(a, b))) terms; ppf by Newton's method on log sf, kept inside a bracket. Every function takes
arrays (one study per element), so a simulation of thousands of studies is one call.
"""
import math
from statistics import NormalDist

import numpy as np

TINY = 1e-300
MOST_TERMS = 10_000  # the fraction needs about 3 sqrt(df) terms; the loop stops when every element converged
NORMAL = NormalDist()
NEWTON_STEPS = 30  # ppf's Newton steps; a few reach double precision from start()
MOST_STEPS = 2200  # then halving: from 2^1024 down to 2^-1074 at most
log_gamma = np.vectorize(math.lgamma, otypes=[float])


def continued_fraction(a, b, x):
    """The continued fraction of I_x(a, b) (its front factor apart); it converges fast for
    x < (a + 1) / (a + b + 2)."""
    c, d = np.ones_like(x), 1 - (a + b) * x / (a + 1)
    d = 1 / np.where(np.abs(d) < TINY, TINY, d)
    h, done = d.copy(), np.isnan(d)  # NaN in, NaN out: nothing to converge
    for m in range(1, MOST_TERMS):
        step = np.ones_like(h)
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / np.where(np.abs(d) < TINY, TINY, d)
            c = 1 + numerator / c
            c = np.where(np.abs(c) < TINY, TINY, c)
            step *= d * c
        h = np.where(done, h, h * step)  # an element stops where its last step changed it by rounding alone
        done |= np.abs(d * c - 1) < 1e-15
        if done.all():
            return h
    raise ArithmeticError("the incomplete beta function's continued fraction did not converge")


def incomplete_beta(a, b, x, complement=None):
    """The regularized incomplete beta function I_x(a, b), elementwise; 0 <= x <= 1, a, b > 0; complement:
    1 - x where the caller has it more precisely than 1 - x would be."""
    a, b, x = (np.asarray(v, float) for v in np.broadcast_arrays(a, b, x))
    complement = 1 - x if complement is None else np.broadcast_to(complement, x.shape)
    flip = x > (a + 1) / (a + b + 2)  # where the fraction converges slowly: I_x(a, b) = 1 - I_(1-x)(b, a)
    a, b, x = np.where(flip, b, a), np.where(flip, a, b), np.where(flip, complement, x)
    with np.errstate(divide="ignore"):
        front = np.exp(a * np.log(x) + b * np.log1p(-x) + log_gamma(a + b) - log_gamma(a) - log_gamma(b))
    inner = front * continued_fraction(a, b, x) / a  # x = 0: front 0, the fraction 1
    return np.where(flip, 1 - inner, inner)


def sf(t, df):
    """P(T > t) for Student's t with df degrees of freedom (df > 0, fractional allowed), elementwise."""
    t, df = np.broadcast_arrays(np.asarray(t, float), np.asarray(df, float))
    # the tail beyond |t|; 1 - x as t^2 / (df + t^2): near t = 0 the subtraction would lose its digits
    half = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t), complement=t * t / (df + t * t))
    return np.where(t >= 0, half, 1 - half)


def cdf(t, df):
    return sf(-np.asarray(t, float), df)


def pdf(t, df):
    """Student's t density, elementwise."""
    t, df = np.broadcast_arrays(np.asarray(t, float), np.asarray(df, float))
    log_scale = log_gamma((df + 1) / 2) - log_gamma(df / 2) - 0.5 * np.log(df * math.pi)
    return np.exp(log_scale - (df + 1) / 2 * np.log1p(t * t / df))


def start(tail, df):
    """A first guess at |t| with sf(|t|) = tail: the normal quantile corrected for df (Cornish-Fisher,
    Abramowitz & Stegun 26.7.5), good to several digits for df of a few or more, short far in the tail of
    df near 1 (where ppf's bracket takes over)."""
    z = np.array([-NORMAL.inv_cdf(q) for q in tail.ravel()]).reshape(tail.shape)
    terms = ((z ** 3 + z) / 4, (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96,
             (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384,
             (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160)
    return z + sum(term / df ** (k + 1) for k, term in enumerate(terms))


def ppf(p, df):
    """The p-quantile of Student's t (0 < p < 1), elementwise, to double precision: Newton's steps on log sf
    from start(), each kept inside a bracket that every evaluation narrows (a step that would leave it
    halves the bracket, or doubles an open one), on the elements still moving; after NEWTON_STEPS, halving
    alone, which ends. NaN in, NaN out."""
    p, df = np.broadcast_arrays(np.asarray(p, float), np.asarray(df, float))
    tail = np.minimum(p, 1 - p).ravel()  # the quantile's magnitude: sf(|t|) = tail
    nu, t = df.ravel(), np.maximum(start(tail, df.ravel()), 0.0)
    low, high = np.zeros_like(t), np.full_like(t, np.inf)
    moving = np.flatnonzero(~np.isnan(t))
    for steps in range(MOST_STEPS):
        if not moving.size:
            return np.where(p < 0.5, -1, 1) * t.reshape(p.shape)
        at, goal, k = t[moving], tail[moving], nu[moving]
        beyond = sf(at, k)
        short = beyond > goal  # below the quantile
        low[moving], high[moving] = np.where(short, at, low[moving]), np.where(short, high[moving], at)
        lo, hi = low[moving], high[moving]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = at + (np.log(beyond) - np.log(goal)) * beyond / pdf(at, k)
        kept = (step > lo) & (step < hi) & (steps < NEWTON_STEPS)
        step = np.where(kept, step, np.where(np.isinf(hi), 2 * np.maximum(at, 1), (lo + hi) / 2))
        t[moving] = step
        moving = moving[(np.abs(step - at) > 4e-16 * at) & (np.isinf(hi) | (hi - lo > 4e-16 * hi))]
    raise ArithmeticError("Student's t quantile did not converge")
