"""Projection heads shared by the critics: ``none``, ``linear`` or an ``mlp`` with batch norm.

A critic maps each view's encoder features ``[B, F_i]`` to embeddings ``[B, D]`` through a
projection head before scoring (SimCLR's ``g(.)``; CMC's and ReLIC's "critic network"):

- ``none``: the features themselves (``nn.Identity``), so ``D = F`` and every view needs the same ``F``;
- ``linear``: one ``nn.Linear(F, D)`` (CMC's linear projection);
- ``mlp``: for each width ``h`` in ``hidden``, ``Linear(no bias) -> BatchNorm1d(h) -> ReLU``, then a
  final ``Linear(h_last, D)`` with a bias and no batch norm or activation.

Conventions behind ``mlp``:

- SimCLR (Chen et al. 2020, section 2.1) uses ``g(h) = W2 ReLU(W1 h)`` with one hidden layer as wide as
  the features (2048 for a ResNet-50) and batch norm in its reference code. ``hidden = None`` (the
  default) is that head: one hidden layer of width ``F``, the view's feature size.
- ReLIC (Mitrovic et al. 2020, appendix) sweeps depth and width, with "batch normalization after
  every layer" and ReLU; with a ResNet-50 it used ``hidden = [4096, 2048, 1024, 512]`` and
  ``embedding_dim = 128``.
- The hidden linear layers have no bias, since the batch norm right after them has its own shift.
  The output layer has no batch norm: the cosine critic normalises the embeddings anyway.

``ProjectionHeads`` holds one head per view, or one head shared by every view (``shared=True``,
which needs every view's ``F`` to be equal). Per-view heads are registered as submodules ``"0"``,
``"1"``, ...; a shared head as ``"shared"``.

Example:
    >>> import torch
    >>> head = build_head("mlp", 32, 8, hidden=[64, 16])
    >>> [type(m).__name__ for m in head]
    ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    >>> [m.out_features for m in head if isinstance(m, torch.nn.Linear)]
    [64, 16, 8]
    >>> heads = ProjectionHeads("linear", (32, 24), 8)
    >>> heads(torch.rand(5, 24), view=1).shape
    torch.Size([5, 8])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

from torch import Tensor, nn

from contrastkit.errors import InvalidParameter

__all__ = ["HEAD_KINDS", "HeadKind", "ProjectionHeads", "build_head", "check_hidden"]

HeadKind = Literal["none", "linear", "mlp"]
#: The accepted values of a critic's ``head`` parameter.
HEAD_KINDS: tuple[str, ...] = get_args(HeadKind)


def check_hidden(kind: str, hidden: Sequence[int] | None) -> list[int] | None:
    """Validate ``hidden`` (the mlp's widths) for a head of ``kind``; ``None`` keeps the default.

    Errors name the critic parameter ``hidden``.

    Example:
        >>> check_hidden("mlp", (512, 128))
        [512, 128]
        >>> check_hidden("linear", [64])
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: hidden: only used with head = 'mlp' (head is 'linear'); remove it (got [64])
    """
    if hidden is None:
        return None
    widths = list(hidden)
    if kind != "mlp":
        raise InvalidParameter("hidden", f"only used with head = 'mlp' (head is {kind!r}); remove it", widths)
    if not widths:
        raise InvalidParameter("hidden", "must list at least one width (use head = 'linear' for no hidden layer)", widths)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise InvalidParameter("hidden", "every width must be an integer >= 1", widths)
    return widths


def build_head(
    kind: HeadKind, in_dim: int, embedding_dim: int, hidden: Sequence[int] | None = None
) -> nn.Module:
    """One projection head ``[B, in_dim] -> [B, embedding_dim]`` (``[B, in_dim]`` for ``"none"``).

    ``hidden`` lists the mlp's hidden widths (``None``: one hidden layer of width ``in_dim``, SimCLR's
    head); it must be ``None`` for ``"none"`` and ``"linear"``. Errors name the critic parameters
    ``head``, ``embedding_dim`` and ``hidden``.

    Example:
        >>> build_head("linear", 16, 4)
        Linear(in_features=16, out_features=4, bias=True)
        >>> [type(m).__name__ for m in build_head("mlp", 16, 4)]
        ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']
        >>> build_head("mlp", 2048, 128, hidden=[4096, 2048, 1024, 512])[-1]  # ReLIC's head
        Linear(in_features=512, out_features=128, bias=True)
    """
    if kind not in HEAD_KINDS:
        raise InvalidParameter("head", "must be one of " + ", ".join(repr(k) for k in HEAD_KINDS), kind)
    if embedding_dim < 1:
        raise InvalidParameter("embedding_dim", "must be >= 1", embedding_dim)
    widths = check_hidden(kind, hidden)
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(in_dim, embedding_dim)
    layers: list[nn.Module] = []
    width_in = in_dim
    for width in widths if widths is not None else [in_dim]:
        layers += [nn.Linear(width_in, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        width_in = width
    layers.append(nn.Linear(width_in, embedding_dim))
    return nn.Sequential(*layers)


class ProjectionHeads(nn.Module):
    """The projection heads of a critic: one per view, or one shared by every view.

    ``heads(features, view=i)`` (or ``heads[i](features)``) applies view ``i``'s head.
    ``embedding_dim`` is ``D``: ``embedding_dim`` as given, or ``F`` with ``kind = "none"`` (which
    needs every view's ``F`` to be equal). ``shared=True`` builds a single head used for every view
    (the same parameters and batch-norm statistics); it needs equal feature sizes too. Errors name
    the critic parameters ``head``, ``embedding_dim``, ``hidden`` and ``shared_head``.

    Example:
        >>> heads = ProjectionHeads("mlp", (16, 16), 4, hidden=[8], shared=True)
        >>> heads[0] is heads[1], len(heads), heads.embedding_dim
        (True, 2, 4)
        >>> ProjectionHeads("linear", (16, 8), 4, shared=True)
        Traceback (most recent call last):
        ...
        contrastkit.errors.InvalidParameter: shared_head: a shared head needs every view's encoder to have the same feature size (feature_dims (16, 8)); use per-view heads (shared_head = false) (got True)
    """

    def __init__(
        self,
        kind: HeadKind,
        feature_dims: Sequence[int],
        embedding_dim: int,
        *,
        hidden: Sequence[int] | None = None,
        shared: bool = False,
    ) -> None:
        super().__init__()
        dims = tuple(int(f) for f in feature_dims)
        if not dims:
            raise InvalidParameter("feature_dims", "needs at least one view", dims)
        equal = len(set(dims)) == 1
        if kind == "none" and not equal:
            raise InvalidParameter(
                "head", f"'none' needs every view's encoder to have the same feature size (feature_dims {dims})", kind
            )
        if shared and not equal:
            raise InvalidParameter(
                "shared_head",
                f"a shared head needs every view's encoder to have the same feature size (feature_dims {dims}); "
                "use per-view heads (shared_head = false)",
                shared,
            )
        self.kind = kind
        self.is_shared = bool(shared)
        self.feature_dims = dims
        self.hidden = check_hidden(kind, hidden)
        self.embedding_dim = dims[0] if kind == "none" else int(embedding_dim)
        if self.is_shared:
            self.add_module("shared", build_head(kind, dims[0], embedding_dim, hidden))
            self._names = ["shared"] * len(dims)
        else:  # the names of an nn.ModuleList, so state dicts keep the keys of the earlier critic
            for i, f in enumerate(dims):
                self.add_module(str(i), build_head(kind, f, embedding_dim, hidden))
            self._names = [str(i) for i in range(len(dims))]

    def __len__(self) -> int:
        """The number of views (not of distinct heads)."""
        return len(self._names)

    def __getitem__(self, view: int) -> nn.Module:
        """View ``view``'s head (the same module for every view when shared)."""
        if not 0 <= view < len(self._names):
            raise IndexError(f"view {view} out of range: the critic has heads for {len(self._names)} views")
        return self._modules[self._names[view]]  # type: ignore[return-value]

    def forward(self, features: Tensor, view: int) -> Tensor:
        """``[B, F_view] -> [B, D]`` through view ``view``'s head."""
        return self[view](features)

    def extra_repr(self) -> str:
        hidden = "" if self.kind != "mlp" else f", hidden={self.hidden or 'F'}"
        return f"kind={self.kind}, embedding_dim={self.embedding_dim}{hidden}, shared={self.is_shared}"
