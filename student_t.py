"""Student's t distribution for the claims (crossed.py), with fractional degrees of freedom (Satterthwaite's)
and far into the tail, from numpy alone: scipy is not a dependency of the project.

sf(t, df) = P(T > t) = I_x(df / 2, 1 / 2) / 2 for t >= 0, x = df / (df + t^2): the regularized incomplete
beta function, by its continued fraction (Numerical Recipes 6.4, modified Lentz), which converges in
O(sqrt(max(a, b))) terms; ppf by bisection on sf. Every function takes arrays (one study per element),
so a simulation of thousands of studies is one call.
"""
import math

import numpy as np

TINY = 1e-300
MOST_TERMS = 10_000  # the fraction needs about 3 sqrt(df) terms; the loop stops when every element converged
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


def ppf(p, df):
    """The p-quantile of Student's t (0 < p < 1), elementwise: a bracket halved 12 times, then Newton's
    steps on log sf (kept inside the bracket), to double precision."""
    p, df = np.broadcast_arrays(np.asarray(p, float), np.asarray(df, float))
    tail = np.minimum(p, 1 - p)  # the quantile's magnitude: sf(|t|) = tail
    low, high = np.zeros_like(tail), np.ones_like(tail)
    while np.any(short := sf(high, df) > tail):
        high = np.where(short, 2 * high, high)
    for _ in range(12):
        middle = (low + high) / 2
        beyond = sf(middle, df) > tail
        low, high = np.where(beyond, middle, low), np.where(beyond, high, middle)
    t = (low + high) / 2
    for _ in range(8):  # on log sf, nearly straight far in the tail; a step is kept inside the bracket
        beyond = sf(t, df)
        t = np.clip(t + (np.log(beyond) - np.log(tail)) * beyond / pdf(t, df), low, high)
    return np.where(p < 0.5, -1, 1) * t
