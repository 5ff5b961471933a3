"""``factor-pair``: seed 000's Table 1 views — two images that share exactly the chosen factors.

InfoMin's colourful-moving-MNIST experiment (Tian et al. 2020, "What makes for good views", Table 1)
builds positive pairs that share only some factors of the image — the digit, the background, the
digit's position — and shows that the representation learns what the views share: sharing the
digit wins the digit task, sharing the background the background task, and so on.

``factor-pair`` with ``share = ["digit"]`` (any subset of ``"digit"``, ``"background"``,
``"position"``) asks its dataset for such pairs: it declares ``dataset_parameters = {"pair":
share}``, which the pipeline passes to the dataset (``colorful-moving-digits`` renders, for every
sample, an ``image_pair`` sharing exactly those factors with ``image``, everything else and the
digit's colour drawn afresh). A recipe that also sets ``data.pair`` must give the same list. View 1
is ``image``, view 2 is ``image_pair``, each through its own view's augmentation; in eval mode both
views are ``image`` (the probes describe the image the labels belong to), as in ``image-pair``.

Example:
    >>> import torch
    >>> maker = FactorPairViews(share=["background"])
    >>> maker.dataset_parameters, maker.view_channels
    ({'pair': ['background']}, (3, 3))
    >>> batch = {"image": torch.zeros(2, 3, 8, 8), "image_pair": torch.ones(2, 3, 8, 8)}
    >>> [float(v.mean()) for v in maker(batch, lambda x, view: x)]
    [0.0, 1.0]
"""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit.datasets.colorful_moving_digits import FACTORS
from contrastkit.errors import InvalidParameter, close_matches
from contrastkit.interfaces import AugmentFn, Batch
from contrastkit.views.image_pair import pair_views

__all__ = ["FactorPairViews"]


class FactorPairViews(nn.Module):
    """Views ``(image, image_pair)`` whose images share exactly the factors ``share``.

    Example:
        >>> FactorPairViews(share=["digit", "position"]).share
        ('digit', 'position')
    """

    #: Batch entries this view maker reads besides ``image`` (checked against the dataset before training).
    required_keys = ("image_pair",)

    def __init__(self, *, share: list[str] | None = None, channels: int = 3) -> None:
        super().__init__()
        share = ["digit"] if share is None else list(share)
        for factor in share:
            if factor not in FACTORS:
                hint = close_matches(str(factor), FACTORS)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                raise InvalidParameter(
                    "share", f"unknown factor {factor!r}; choose from {', '.join(map(repr, FACTORS))}{suggestion}",
                    share,
                )
        if len(set(share)) != len(share):
            raise InvalidParameter("share", "lists a factor twice", share)
        if channels < 1:
            raise InvalidParameter("channels", "must be >= 1", channels)
        self.share = tuple(share)
        self.channels = channels

    @property
    def dataset_parameters(self) -> dict[str, list[str]]:
        """What the dataset must be built with: ``{"pair": share}`` (the pipeline passes it on)."""
        return {"pair": list(self.share)}

    @property
    def view_channels(self) -> tuple[int, int]:
        """``(channels, channels)``."""
        return (self.channels, self.channels)

    def forward(self, batch: Batch, augment: AugmentFn) -> list[Tensor]:
        """``image`` and ``image_pair`` ``[B, C, H, W]`` -> two views (``image`` twice in eval mode)."""
        return pair_views(batch, augment, channels=self.channels, training=self.training, name="factor-pair")

    def extra_repr(self) -> str:
        return f"share={list(self.share)}, channels={self.channels}"
