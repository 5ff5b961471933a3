"""Whether the built slots fit together: what each asks of the others, checked before training starts.

An objective that takes positives from a label needs a dataset with that label and a sampler that can
mark them; NT-Xent's same-view negatives need a sampler that can add them; the negatives and the
regulariser must agree on one momentum encoder; and the reverse direction of a pair may be the
forward one transposed only for a critic that declares its scores symmetric.

Example:
    >>> from contrastkit.negatives.in_batch import InBatchNegatives
    >>> from contrastkit.objectives.infonce import InfoNCE
    >>> pair_keywords(InfoNCE(same_view_negatives=True), InBatchNegatives(num_views=2, dataset_size=0, embedding_dim=4))
    {'same_view': True}
"""

from __future__ import annotations

import inspect
from typing import Any

from contrastkit.errors import ConfigError, close_matches
from contrastkit.interfaces import LabelledObjective, PositiveSampler, describe
from contrastkit.optional_hooks import MomentumKeyed, SameViewObjective

__all__ = ["declares_symmetric_scores", "key_momentum", "objective_label", "pair_keywords"]


def objective_label(objective: Any, *, negatives: Any, dataset: Any) -> str | None:
    """The batch label an objective takes positives from (``None``: one positive per row), checked.

    Example:
        >>> from contrastkit.negatives.in_batch import InBatchNegatives
        >>> from contrastkit.objectives.supcon import SupCon
        >>> objective_label(SupCon(label="digit"), negatives=InBatchNegatives(num_views=2, dataset_size=0,
        ...                 embedding_dim=4), dataset=None)
        'digit'
    """
    label = objective.label if isinstance(objective, LabelledObjective) else None
    if label is None:
        return None
    name = describe(objective)
    if dataset is not None:
        keys = tuple(getattr(dataset, "label_keys", ()))
        if label not in keys:
            matches = close_matches(label, keys)
            hint = f"did you mean {matches[0]!r}?" if matches else f"the dataset's labels: {', '.join(keys) or 'none'}"
            raise ConfigError(f"objective.label: {name} takes positives from label {label!r}, which the "
                              f"dataset does not have; {hint} (got {label!r})")
    if not isinstance(negatives, PositiveSampler):
        raise ConfigError(f"objective.label: {name} needs a negative sampler that can mark same-label "
                          f"candidates; negatives.{describe(negatives)} cannot (no positive_mask): use "
                          "negatives = \"in-batch\", or remove objective.label")
    return label


def pair_keywords(objective: Any, negatives: Any) -> dict[str, Any]:
    """Extra ``pair_logits`` keywords: ``same_view=True`` when the objective asks for same-view negatives.

    An objective with ``same_view_negatives = True`` (``infonce``'s NT-Xent form) needs a sampler
    whose ``pair_logits`` takes a ``same_view`` keyword (``in-batch`` does); others are refused.

    Example:
        >>> from contrastkit.objectives.infonce import InfoNCE
        >>> pair_keywords(InfoNCE(), None)
        {}
    """
    if not (isinstance(objective, SameViewObjective) and objective.same_view_negatives):
        return {}
    try:
        params = list(inspect.signature(negatives.pair_logits).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: assume the keyword is absent
        params = []
    if not any(p.name == "same_view" or p.kind is p.VAR_KEYWORD for p in params):
        raise ConfigError(
            f"objective.same_view_negatives: {describe(objective)} with same-view negatives (NT-Xent) "
            f"needs a negative sampler that can add the anchor view's other samples; negatives."
            f"{describe(negatives)} cannot (its pair_logits takes no same_view keyword); use "
            "negatives = \"in-batch\" or set same_view_negatives = false"
        )
    return {"same_view": True}


def key_momentum(*, negatives: Any, regularizer: Any) -> float | None:
    """``key_momentum`` requested by the negatives or the regulariser (``None``: no momentum target).

    Example:
        >>> from contrastkit.negatives.queue import QueueNegatives
        >>> key_momentum(negatives=QueueNegatives(num_views=2, dataset_size=0, embedding_dim=4), regularizer=None)
        0.999
    """
    requested = {
        slot: float(m)
        for slot, component in (("negatives", negatives), ("regularizer", regularizer))
        if isinstance(component, MomentumKeyed) and (m := component.key_momentum) is not None
    }
    if len(set(requested.values())) > 1:
        raise ConfigError(
            "regularizer: negatives and regularizer ask for different momentum encoders ("
            + ", ".join(f"{slot} {m:g}" for slot, m in requested.items())
            + "); give both the same momentum"
        )
    return next(iter(requested.values()), None)


def declares_symmetric_scores(critic: Any) -> bool:
    """Whether ``critic`` declares ``score(a, b) == score(b, a).T`` on the class that defines its ``score``.

    A subclass that overrides ``score`` does not inherit its parent's ``symmetric = True``.

    Example:
        >>> from contrastkit.critics.bilinear import BilinearCritic
        >>> from contrastkit.critics.cosine import CosineCritic
        >>> class Shifted(CosineCritic):
        ...     def score(self, anchors, candidates):
        ...         return super().score(anchors, candidates) + 1.0
        >>> [declares_symmetric_scores(c(feature_dims=(4, 4))) for c in (CosineCritic, BilinearCritic, Shifted)]
        [True, False, False]
    """
    owner = next((cls for cls in type(critic).__mro__ if "score" in vars(cls)), None)
    return owner is not None and vars(owner).get("symmetric", False) is True
