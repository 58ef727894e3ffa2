"""The project folder and the only way the studio turns a name from a request into a file.

Every path a browser sends is relative to the project folder. :meth:`Project.resolve` refuses
absolute paths, ``..`` parts, NUL bytes and anything whose real path (symlinks followed) lies
outside the folder, so no request can read or write a file the user did not put in the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from facetwin.faceset import DB_NAME
from facetwin.media.image import is_image_path
from facetwin.media.video import is_video_path
from facetwin.model_meta import SNAPSHOTS
from facetwin.train.config import LOSS_LOG, PREVIEW_FILE

#: Where the studio puts what it makes; the CLI may put its files anywhere in the project.
MEDIA_DIR = "media"
FACESETS_DIR = "facesets"
MODELS_DIR = "models"
OUTPUTS_DIR = "outputs"
REPORTS_DIR = "reports"
#: Folders never listed (the job queue's state, convert's resumable parts).
HIDDEN = (".facetwin", ".git", ".venv", "__pycache__")


class PathRefused(ValueError):
    """A request named a path outside the project (or an impossible one)."""


@dataclass(frozen=True)
class Project:
    """A project folder: face sets, models, conversions and reports, the CLI's own files."""

    root: Path

    @classmethod
    def open(cls, root: str | Path) -> Project:
        path = Path(root).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def resolve(self, rel: str) -> Path:
        """The file ``rel`` names inside the project; :class:`PathRefused` for anything else.

        The check runs on the real path (symlinks resolved), so a link inside the project that
        points out of it is refused as well as a literal ``..``.
        """
        if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
            raise PathRefused("a path inside the project is required")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or any(p == ".." for p in pure.parts):
            raise PathRefused(f"{rel!r}: only paths inside the project are allowed")
        path = (self.root / pure).resolve()
        if path != self.root and self.root not in path.parents:
            raise PathRefused(f"{rel!r} leads outside the project")
        return path

    def rel(self, path: Path) -> str:
        """``path`` as the browser names it: relative, with forward slashes."""
        return path.resolve().relative_to(self.root).as_posix()

    def walk(self) -> list[Path]:
        """Every file and folder of the project, hidden folders and symlinks left out."""
        out: list[Path] = []
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for p in entries:
                if p.is_symlink() or p.name in HIDDEN or p.name.endswith(".parts"):
                    continue
                out.append(p)
                if p.is_dir() and not (p / DB_NAME).is_file():
                    stack.append(p)
        return out

    def inventory(self) -> dict[str, list[str]]:
        """What the views offer to pick: media files, face sets, models, outputs, reports."""
        found: dict[str, list[str]] = {
            "videos": [],
            "images": [],
            "facesets": [],
            "models": [],
            "reports": [],
        }
        for p in self.walk():
            if p.is_dir() and (p / DB_NAME).is_file():
                found["facesets"].append(self.rel(p))
            elif p.is_dir() and (p / "config.json").is_file() and _is_model(p):
                found["models"].append(self.rel(p))
            elif p.is_file() and p.name == "metrics.json":
                found["reports"].append(self.rel(p.parent))
            elif p.is_file() and is_video_path(p):
                found["videos"].append(self.rel(p))
            elif p.is_file() and is_image_path(p) and p.parent.name != "faces":
                found["images"].append(self.rel(p))
        return {k: sorted(v) for k, v in found.items()}


def _is_model(folder: Path) -> bool:
    """A model folder: the trainer's config plus a loss log, a preview or a snapshot."""
    return (
        (folder / LOSS_LOG).is_file()
        or (folder / PREVIEW_FILE).is_file()
        or (folder / SNAPSHOTS).is_dir()
    )
