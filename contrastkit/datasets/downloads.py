"""The files of an archive dataset (CIFAR-10, STL-10): found under ``root``, or fetched when the recipe asks.

:func:`require_files` checks that every file a split reads is there. Only with ``download = true``
and only when some are missing does it fetch and extract the official archive into ``root``, with
torchvision's md5-checked downloader (:func:`download_archive`); whatever is still missing then is
an error naming the first such file.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> require_files([root / "stl10_binary" / "test_X.bin"], title="STL-10", folder="stl10_binary", root=root,
    ...               given="data", download=False, torchvision_dataset="STL10")
    Traceback (most recent call last):
    ...
    contrastkit.errors.InvalidParameter: root: STL-10 not found here (no stl10_binary/test_X.bin); set download = true or point root at the extracted stl10_binary folder's parent (got 'data')
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from contrastkit.errors import InvalidParameter

__all__ = ["download_archive", "require_files"]


def download_archive(torchvision_dataset: str, root: Path) -> None:
    """Fetch and extract the official archive of torchvision's ``torchvision_dataset`` class into ``root``.

    The url, file name and md5 are torchvision's; its downloader checks the md5.

    Example:
        >>> import torchvision.datasets
        >>> torchvision.datasets.CIFAR10.filename  # what download_archive("CIFAR10", root) fetches
        'cifar-10-python.tar.gz'
    """
    import torchvision.datasets
    from torchvision.datasets.utils import download_and_extract_archive

    source = getattr(torchvision.datasets, torchvision_dataset)
    download_and_extract_archive(source.url, os.fspath(root), filename=source.filename, md5=source.tgz_md5)


def require_files(
    files: Sequence[Path], *, title: str, folder: str, root: Path, given: str, download: bool, torchvision_dataset: str
) -> None:
    """Return when every one of ``files`` exists, downloading first if allowed and needed; else ``InvalidParameter``.

    ``title`` names the dataset in the message, ``folder`` the archive's top folder, ``given`` is the
    recipe's ``root`` as written.

    Example:
        >>> import tempfile
        >>> present = Path(tempfile.mkdtemp()) / "x.bin"
        >>> _ = present.write_bytes(b"")
        >>> require_files([present], title="X", folder="x", root=present.parent, given="r", download=True,
        ...               torchvision_dataset="STL10")  # nothing missing: nothing fetched
    """
    missing = [f for f in files if not f.is_file()]
    if missing and download:
        download_archive(torchvision_dataset, root)
        missing = [f for f in files if not f.is_file()]
    if missing:
        raise InvalidParameter(
            "root",
            f"{title} not found here (no {folder}/{missing[0].name}); set download = true or point root at "
            f"the extracted {folder} folder's parent",
            given,
        )
