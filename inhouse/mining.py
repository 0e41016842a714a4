"""Which pairs the mined strategies use: class slots, batch_hard's hardest partners, semi_hard's negatives.

Mining reads the N x N distance matrix (`distances.pairwise_distances`) without gradient and returns column
indices; the distances that enter the loss are then measured from differences (`distances.PairDistances`).
Ties go to the first column, as NumPy's argmin / argmax in the oracle give them.
"""
from __future__ import annotations

import math

import torch

from .chunks import anchor_chunks


class ClassSlots:
    """Each anchor's class members as a padded [N, K] table, K the largest class size.

    members[a, k]   column of the k-th member of a's class (a itself included), ascending; 0 where padded
    inside[a, k]    that slot is a real member (not padding)
    positive[a, k]  that slot is a real member other than a: a positive of a
    own[a]          the slot holding a itself
    size[a]         how many members a's class has (a included)
    """

    def __init__(self, labels: torch.Tensor):
        n = len(labels)
        _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        by_class = torch.argsort(labels, stable=True)  # members of each class are contiguous, classes ascending
        starts = torch.cumsum(counts, 0).sub_(counts)
        width = int(counts.max()) if n else 0
        slot = torch.arange(width, device=labels.device)
        self.size = counts.index_select(0, inverse)
        first = starts.index_select(0, inverse)  # where each row's class starts in by_class
        self.inside = slot < self.size[:, None]
        self.members = torch.take(by_class, (first[:, None] + slot).clamp_max_(max(n - 1, 0))).mul_(self.inside)
        rows = torch.arange(n, device=labels.device)
        self.positive = self.inside & (self.members != rows[:, None])
        self.own = torch.empty_like(rows).scatter_(0, by_class, rows).sub_(first)  # place in by_class - first

    @property
    def width(self) -> int:
        """K, the largest class size."""
        return self.members.shape[1]

    def real_members(self) -> torch.Tensor:
        """`members` with each padding slot pointing at the class's first member (a real one), for scatters."""
        return torch.where(self.inside, self.members, self.members[:, :1])


def sorted_negatives(d: torch.Tensor, negative: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's negative distances ascending (non-negatives as +inf at the end), and their columns; equal
    distances keep their column order.

    Distances are >= 0, whose IEEE bit patterns order like integers: sorting them as integers gives the
    same order about 25% faster on CPU than a float sort.
    """
    padded = torch.where(negative, d, torch.full_like(d, float("inf")))
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64}[d.dtype]
    keys, order = torch.sort(padded.view(as_int), dim=1, stable=True)
    return keys.view(d.dtype), order


# --- batch_hard -------------------------------------------------------------------------------------------


def hardest_partners(dist: torch.Tensor, labels: torch.Tensor):
    """Per anchor (no gradient; overwrites `dist`): the column of its farthest positive and of its nearest
    negative (the farthest point of its row when it has no negative, as TF-Addons' masked minimum gives it:
    then every point is of its class), and whether it has a positive and a negative. Class members are read
    from the [N, K] slots, so only the nearest-negative search passes over the N x N matrix. Ties go to the
    first column, as argmax and argmin over the whole row give them (slots hold members in column order)."""
    slots = ClassSlots(labels)
    member_d = dist.gather(1, slots.members)
    lowest = torch.full_like(member_d, -float("inf"))
    positive_slot = torch.where(slots.positive, member_d, lowest).argmax(dim=1, keepdim=True)
    farthest_slot = torch.where(slots.inside, member_d, lowest).argmax(dim=1, keepdim=True)
    nearest_negative = dist.scatter_(1, slots.real_members(), float("inf")).argmin(dim=1)
    has_negative = slots.size < len(labels)
    negative_at = torch.where(has_negative, nearest_negative, slots.members.gather(1, farthest_slot)[:, 0])
    return slots.members.gather(1, positive_slot)[:, 0], negative_at, slots.size > 1, has_negative


# --- semi_hard --------------------------------------------------------------------------------------------
#
# For each anchor a and each positive p: the nearest negative n with d_an > d_ap (strictly), else a's
# farthest negative. Two exact ways to find the nearest farther negative, chosen by K, the largest class:
#
# - masked minimum, O(N^2 K): per anchor, for each of its K class slots, the minimum of the anchor's
#   negative distances over those above d_ap, in chunks of anchors. The comparison is folded into the
#   minimum itself: distances >= 0 order as their IEEE bit patterns read as integers b, so with t = the bits
#   of d_ap, the key (b - t - 1) read as an unsigned integer is b - t - 1 for b > t and wraps above every such
#   key for b <= t; its minimum is the nearest farther negative. Signed integers hold it without overflow as
#   (b - t - 1) XOR sign_bit. The minimum is taken per block of columns first, so the first column holding it
#   is found in one block instead of another pass over the row.
# - sorting, O(N^2 log N): each anchor's negative distances sorted once, every d_ap located among them by
#   searchsorted. For large classes (one class of N would make the masked minimum O(N^3)).

KEY_BLOCK = 64  # columns per block of the masked minimum
SELECTION_ELEMENTS = 1 << 20  # keys per chunk on the CPU (4 MiB of int32; 2 to 4 MiB measured fastest)
# The masked minimum costs K passes over each anchor's row (a subtraction, an XOR and a minimum each), a row
# sort a cost that grows with log2 N. On one CPU thread (float32, D = 64) they break even near K = 64 at
# N = 1024 and K = 90 at N = 4096; the masked minimum is used up to K = this many times log2 N.
MASKED_MINIMUM_PASSES_PER_LOG2_N = 7


def semi_hard_negatives(dist: torch.Tensor, labels: torch.Tensor, slots: ClassSlots) -> torch.Tensor:
    """[N, K]: TF-Addons' negative for each (anchor a, positive members[a, k]), a column of `dist`: the first
    nearest negative with d_an > d_ap, else the anchor's first farthest negative. Anchors without negatives
    (their term uses the constant 0) and slots that are no positive get an arbitrary valid column."""
    n = len(labels)
    if slots.width <= MASKED_MINIMUM_PASSES_PER_LOG2_N * math.log2(max(n, 2)):
        chosen = _nearest_farther_by_masked_minimum(dist, slots)
    else:
        chosen = _nearest_farther_by_sorting(dist, labels, slots)
    missing = (chosen < 0) & slots.positive & (slots.size < n)[:, None]
    lacking = missing.any(dim=1).nonzero()[:, 0]  # anchors that fall back: usually few
    if len(lacking):
        farthest = torch.empty_like(lacking)
        for part in anchor_chunks(len(lacking), n):
            farthest[part] = _farthest_negatives(dist, labels, lacking[part])
        fallback = torch.zeros_like(chosen)
        fallback[lacking] = farthest[:, None]
        chosen = torch.where(missing, fallback, chosen)
    return chosen.clamp_min_(0)


def _farthest_negatives(dist: torch.Tensor, labels: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """The first column of each anchor's farthest negative."""
    negative = labels[anchors, None] != labels[None, :]
    d = dist[anchors]
    return torch.where(negative, d, torch.full_like(d, -float("inf"))).argmax(dim=1)


def _nearest_farther_by_masked_minimum(dist: torch.Tensor, slots: ClassSlots) -> torch.Tensor:
    """[N, K]: the first column of the nearest negative with d_an > d_a,members[a,k], -1 where none."""
    n, width = dist.shape[0], slots.width
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64}[dist.dtype]
    top, sign = torch.iinfo(as_int).max, torch.iinfo(as_int).min  # top: above the bits of every distance
    blocks = -(-n // KEY_BLOCK)
    padded = blocks * KEY_BLOCK
    budget = SELECTION_ELEMENTS if dist.device.type == "cpu" else None
    chunks = list(anchor_chunks(n, width * padded, budget))
    most = max((c.stop - c.start for c in chunks), default=0)
    # One buffer each for the chunks' bits and keys; the columns past N stay `top`: never a negative.
    bits_buffer = torch.full((most, padded), top, dtype=as_int, device=dist.device)
    keys_buffer = torch.empty(most * width * padded, dtype=as_int, device=dist.device)
    real_members = slots.real_members()
    chosen = torch.empty_like(slots.members)
    for anchors in chunks:
        count = anchors.stop - anchors.start
        bits = bits_buffer[:count]
        # the sign bit cleared: -0.0 reads as 0 (distances are >= 0; a NaN stays above every number)
        torch.bitwise_and(dist[anchors].view(as_int), top, out=bits[:, :n])
        threshold = bits.gather(1, slots.members[anchors]).clamp_max_(top - 1)  # d_ap; clamped: t + 1 fits
        bits.scatter_(1, real_members[anchors], top)  # the anchor's own class holds no negative
        keys = keys_buffer[: count * width * padded].view(count, width, padded)
        torch.sub(bits[:, None, :], (threshold + 1)[:, :, None], out=keys)  # b - t - 1: no overflow
        keys.bitwise_xor_(sign)  # unsigned order as signed: farther negatives first, nearest lowest
        smallest, block = keys.view(count, width, blocks, KEY_BLOCK).amin(dim=3).min(dim=2)
        offset = smallest ^ sign  # b - t - 1 of the winner: >= 0 iff it is farther
        value = offset + threshold + 1
        in_blocks = bits.view(count, blocks, KEY_BLOCK)
        candidates = in_blocks.gather(1, block[:, :, None].expand(count, width, KEY_BLOCK))  # each winner's block
        first = (candidates == value[:, :, None]).to(torch.uint8).argmax(dim=2)
        found = (offset >= 0) & (value < top)  # `top`: only the anchor's class or padding was left
        chosen[anchors] = torch.where(found, block * KEY_BLOCK + first, torch.full_like(first, -1))
    return chosen


def _nearest_farther_by_sorting(dist: torch.Tensor, labels: torch.Tensor, slots: ClassSlots) -> torch.Tensor:
    """`_nearest_farther_by_masked_minimum` by sorting each anchor's negatives and searchsorted."""
    n = len(labels)
    chosen = torch.empty_like(slots.members)
    for anchors in anchor_chunks(n, n):
        d = dist[anchors]
        negative = labels[anchors, None] != labels[None, :]
        ordered, order = sorted_negatives(d, negative)
        rank = torch.searchsorted(ordered, d.gather(1, slots.members[anchors]), right=True)  # first d_an > d_ap
        found = rank < (n - slots.size[anchors])[:, None]
        column = order.gather(1, rank.clamp_max(n - 1))
        chosen[anchors] = torch.where(found, column, torch.full_like(column, -1))
    return chosen
