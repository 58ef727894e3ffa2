"""Still images: one image, a folder of images, and the one-frame preview of any input.

They share a shape that video does not: each picture is read whole, planned, rendered and
written atomically, so there is no segment state to resume. A folder resumes through its
journal instead (:class:`~facetwin.convert.outputs.FolderJournal`): an image converted by an
earlier, interrupted run with the same settings is counted, not redone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from facetwin.convert.config import Outcome, image_output_path
from facetwin.convert.converter import Converter
from facetwin.convert.faces import FacePlan
from facetwin.convert.outputs import FolderJournal, job_digest
from facetwin.errors import InputError, UsageError
from facetwin.media.files import atomic_write_bytes
from facetwin.media.image import list_images, read_image, write_image
from facetwin.media.video import decode_frames

log = logging.getLogger(__name__)


def convert_image(conv: Converter, path: Path, output: Path) -> Outcome:
    """One image into ``output`` (.png or .jpg); NoFaceError when it has no face to swap."""
    if image_output_path(output) != output:
        raise UsageError(f"{output}: write a converted image as .png or .jpg")
    with conv.timer("decode"):
        img = read_image(path)
    plan = conv.plan_image(path, img)
    if not plan.swapped:
        raise conv.no_face_error(str(path), plan)
    conv.save_image(output, conv.render(img, plan.faces(0), False))
    return Outcome(1, 1, plan.swapped, plan.other)


# -- a folder ----------------------------------------------------------------------------------


def convert_folder(conv: Converter, folder: Path, output: Path) -> Outcome:
    """Every image of ``folder`` into the folder ``output``, resuming an interrupted run.

    Images without a face to swap are copied unchanged and unreadable ones skipped; only a
    folder in which no face at all was swapped is an error.
    """
    images = list_images(folder)
    if not images:
        raise InputError(f"{folder}: folder holds no images")
    if output.is_file():
        raise UsageError(f"{output}: the output of a folder must be a folder")
    output.mkdir(parents=True, exist_ok=True)
    result = Outcome(0, 0, 0, 0)
    found = 0
    journal = FolderJournal(output, job_digest(conv.job(None)))
    for path in tqdm(images, desc="convert", unit="img", disable=not conv.cfg.progress):
        entry = journal.done(path)
        if entry is not None:  # converted by an earlier, interrupted run with these settings
            result.resumed_segments += 1
        else:
            out = output / image_output_path(Path(path.name))
            entry = convert_folder_image(conv, path, out)
            if entry is None:
                result.skipped.append(str(path))
                continue
            journal.add(path, out, entry)
        found += count_image(result, entry)
    check_folder_outcome(conv, folder, output, result, found)
    return result


def convert_folder_image(conv: Converter, path: Path, out: Path) -> dict[str, int] | None:
    """Convert one image of a folder into ``out`` (copied unchanged when no face is swapped);
    its face counts, or None when it is unreadable."""
    try:
        with conv.timer("decode"):
            img = read_image(path)
    except InputError:
        log.warning("skipping unreadable image %s", path)
        return None
    plan = conv.plan_image(path, img)
    if plan.swapped:
        conv.save_image(out, conv.render(img, plan.faces(0), False))
    else:
        with conv.timer("encode"):  # nothing to swap: the image is copied unchanged
            if out.suffix == path.suffix:
                atomic_write_bytes(out, path.read_bytes())
            else:
                write_image(out, img, conv.cfg.jpeg_quality)
    return {"swapped": plan.swapped, "other": plan.other, "found": plan.found}


def count_image(result: Outcome, entry: dict[str, Any]) -> int:
    """Add one finished image's counts (a journal entry) to ``result``; its faces found."""
    result.frames += 1
    result.frames_swapped += int(entry["swapped"] > 0)
    result.faces_swapped += entry["swapped"]
    result.faces_other += entry["other"]
    return int(entry["found"])


def check_folder_outcome(
    conv: Converter, folder: Path, output: Path, result: Outcome, found: int
) -> None:
    """Log what a folder run resumed and copied; NoFaceError when it swapped nothing at all."""
    if result.resumed_segments:
        log.info("resumed %s: %d images were already converted", output, result.resumed_segments)
    if not result.faces_swapped:
        raise conv.no_face_error(str(folder), FacePlan(found=found, other=result.faces_other))
    if result.frames > result.frames_swapped:
        log.info(
            "%d images had no face to swap and were copied unchanged",
            result.frames - result.frames_swapped,
        )


# -- a preview ---------------------------------------------------------------------------------


def preview_frame(path: Path, kind: str, n: int) -> tuple[np.ndarray, Path, int]:
    """Frame ``n`` of a video (image ``n`` of a folder, or the image itself): the picture, the
    file it comes from and its frame index there; UsageError when ``n`` is out of range."""
    if kind == "video":
        frame = next(iter(decode_frames(path, n)), None)
        if frame is None:
            raise UsageError(f"preview frame {n} is past the end of {path}")
        return frame.image, path, n
    images = [path] if kind == "image" else list_images(path)
    if not 0 <= n < len(images):
        raise UsageError(f"preview {n} is out of range: {path} holds {len(images)} images")
    return read_image(images[n]), images[n], 0


def convert_preview(conv: Converter, path: Path, kind: str, output: Path) -> Outcome:
    """Convert frame ``cfg.preview`` only (image ``preview`` of a folder) into an image."""
    n = int(conv.cfg.preview or 0)
    img, source, index = preview_frame(path, kind, n)
    plan = conv.plan_image(source, img)
    if conv.faceset is None:
        index = 0  # detected on this one picture: its faces are frame 0's
    faces = plan.faces(index)
    if not faces:
        raise conv.no_face_error(f"{path} frame {n}", plan)
    conv.save_image(output, conv.render(img, faces, False))
    return Outcome(1, 1, len(faces), plan.other)


__all__ = ["convert_folder", "convert_image", "convert_preview"]
