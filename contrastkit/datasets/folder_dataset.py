"""The base class of the datasets read from folders of image files: class labels and ``verify``.

``image-folder``, ``paired-folder`` and ``video-frames`` decode their files lazily, when an item is
read. :class:`FolderDataset` gives them the same :meth:`~FolderDataset.verify`, which opens every
file up front, and ``image-folder`` and ``paired-folder`` the same class labels from top-level
subfolders.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from contrastkit.datasets.image_folder import ImageFolderDataset
    >>> ds = ImageFolderDataset(**ImageFolderDataset.contract_params_for(Path(tempfile.mkdtemp())))
    >>> isinstance(ds, FolderDataset), ds.classes, int(ds.targets[-1])
    (True, ('cat', 'dog'), 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from contrastkit.datasets.images import check_size, class_folders, file_classes, normalize_extensions, verify_image

__all__ = ["FolderDataset"]


class FolderDataset(torch.utils.data.Dataset):
    """Base class of the datasets read from image files; each says which files in ``_image_files``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from contrastkit.datasets.paired_folder import PairedFolderDataset
        >>> ds = PairedFolderDataset(**PairedFolderDataset.contract_params_for(Path(tempfile.mkdtemp())))
        >>> isinstance(ds, FolderDataset), ds.label_keys, ds.targets is None
        (True, (), True)
    """

    label_keys: tuple[str, ...]

    def _image_files(self) -> Iterable[str]:
        """Every image file the dataset reads."""
        raise NotImplementedError

    def _verify_other_files(self, *, decode: bool) -> None:
        """Check the files that are not images (none unless a dataset has some)."""

    def verify(self, *, decode: bool = False) -> None:
        """Open every file and raise the one-line error naming the first unreadable one.

        ``decode=False`` checks headers only (fast); ``decode=True`` decodes every image in full.
        ``video-frames`` with ``flow_root`` checks its flow files too: their header, and that each
        has its frame's size.

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> from contrastkit.datasets.video_frames import VideoFramesDataset
            >>> VideoFramesDataset(**VideoFramesDataset.contract_params_for(Path(tempfile.mkdtemp()))).verify()
        """
        for path in self._image_files():
            verify_image(path, decode=decode)
        self._verify_other_files(decode=decode)

    def _keep_image_parameters(self, *, split: str, image_size: int, extensions: Sequence[str]) -> None:
        """Keep ``split``, and ``image_size`` and ``extensions`` checked (``extensions`` lower case, dotted)."""
        self.split = split
        self.image_size = check_size(image_size)
        self.extensions = normalize_extensions(extensions)

    def _label_by_class_folder(self, folder: Path, files: Sequence[Path], class_roots: Sequence[Path]) -> None:
        """Set ``classes``, ``label_keys`` and ``targets`` for ``files`` under ``folder``.

        When every file lies in a top-level subfolder of ``folder``, the subfolder names are the
        classes: the sorted union of the subfolders of ``class_roots`` (every split's folder, so a
        class has one index in all of them), and ``targets`` holds each file's class index (int64).
        Otherwise there are no labels.
        """
        classes = class_folders(*class_roots)
        names = file_classes(folder, files, classes)
        if names is None:
            self.classes: tuple[str, ...] = ()
            self.label_keys = ()
            self.targets: Tensor | None = None
        else:
            lookup = {name: i for i, name in enumerate(classes)}
            self.classes = classes
            self.label_keys = ("class",)
            self.targets = torch.from_numpy(np.array([lookup[n] for n in names], dtype=np.int64))
