"""The people endpoints: people (groups of faces), their names, the owner, merges, moved faces, and
square face crops cut from the large thumbnail. Plain `def` endpoints, as in routes.py (thread pool)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi import Path as PathParam
from PIL import Image, UnidentifiedImageError

from smartalbum.api import models as m
from smartalbum.api.files import PHOTO_CACHE, etag_matches
from smartalbum.api.routes import ERRORS, IMAGE, NOT_MODIFIED
from smartalbum.errors import NotFoundError
from smartalbum.ingest.decode import thumb_path
from smartalbum.library import Library

CROP_MARGIN = 0.35  # around the face box, as a share of its size on each side
CROP_SIZE = 256  # the size the API's crop links ask for
CROP_QUALITY = 85

PersonId = Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="a person's id")]
FaceId = Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="a face's id")]


def crop_key(face: dict[str, Any]) -> str:
    """Names a face's pixels: the photo's content and the box. A face id the catalog reuses after a delete
    gets another key, so a browser never shows a cached crop of a face that is gone."""
    text = f"{face['hash']}:{face['x']:.6f}:{face['y']:.6f}:{face['w']:.6f}:{face['h']:.6f}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def crop_url(face: dict[str, Any], size: int = CROP_SIZE) -> str:
    return f"/api/faces/{face['id']}/crop?size={size}&v={crop_key(face)}"


def crop_box(
    box: tuple[float, float, float, float], width: int, height: int, margin: float = CROP_MARGIN
) -> tuple[int, int, int, int]:
    """A square around a relative face box with a margin, moved (and if need be shrunk) to lie inside a
    `width` x `height` image. Returns (left, top, right, bottom) in pixels."""
    x, y, w, h = box
    face = max(w * width, h * height, 1.0)
    side = min(face * (1 + 2 * margin), float(width), float(height))
    cx, cy = (x + w / 2) * width, (y + h / 2) * height
    left = min(max(cx - side / 2, 0.0), width - side)
    top = min(max(cy - side / 2, 0.0), height - side)
    side_px = max(1, round(side))
    left_px, top_px = round(left), round(top)
    left_px = min(left_px, width - side_px)
    top_px = min(top_px, height - side_px)
    return left_px, top_px, left_px + side_px, top_px + side_px


def face_crop(thumb: Path, box: tuple[float, float, float, float], size: int) -> bytes:
    try:
        with Image.open(thumb) as image:
            image.load()
            square = image.crop(crop_box(box, image.width, image.height)).convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise NotFoundError("the photo's thumbnail cannot be read", "run `smartalbum doctor --fix`") from exc
    square = square.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    square.save(out, "JPEG", quality=CROP_QUALITY)
    return out.getvalue()


def face_out(face: dict[str, Any]) -> m.FaceOut:
    return m.FaceOut(
        id=face["id"],
        photo_id=face["photo_id"],
        x=face["x"],
        y=face["y"],
        w=face["w"],
        h=face["h"],
        score=face["score"],
        person_id=face["person_id"],
        name=face["name"],
        assigned_by=face["assigned_by"],
        crop=crop_url(face),
    )


def build_people_router(library: Library) -> APIRouter:
    api = APIRouter(prefix="/api", responses=ERRORS, tags=["people"])

    def person_out(p: dict[str, Any]) -> m.PersonOut:
        cover = None
        if p.get("cover"):
            face = library.face(p["cover"]["face_id"])
            cover = m.Cover(face_id=face["id"], photo_id=face["photo_id"], crop=crop_url(face))
        return m.PersonOut(
            id=p["id"],
            name=p["name"],
            names=p["names"],
            is_me=p["is_me"],
            hidden=p["hidden"],
            faces=p["faces"],
            photos=p["photos"],
            cover=cover,
            created_at=p["created_at"],
            updated_at=p["updated_at"],
        )

    @api.get("/people")
    def people(
        all_: Annotated[bool, Query(alias="all", description="also hidden people")] = False,
        min_faces: Annotated[
            int, Query(ge=1, le=100_000, description="leave out unnamed groups with fewer faces")
        ] = 1,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> list[m.PersonOut]:
        """People, the owner first, then by number of faces; named people are listed even with few faces."""
        rows = library.people(include_hidden=all_, min_faces=min_faces)[:limit]
        return [person_out(p) for p in rows]

    @api.get("/people/{person_id}")
    def person(person_id: PersonId, limit: Annotated[int, Query(ge=0, le=1000)] = 100) -> m.PersonDetail:
        """One person with up to `limit` of their faces (ids for moving them, boxes, crops)."""
        p = library.person(person_id, faces=limit)
        faces = [face_out(f) for f in p.get("face_list", [])]
        return m.PersonDetail(**person_out(p).model_dump(), face_list=faces)

    @api.post("/people/{person_id}/name")
    def name_person(person_id: PersonId, body: m.NameIn) -> m.PersonOut:
        """Name a person, with aliases in any language (妈妈, 老妈, Mum); `add` keeps the names they have.
        A name belongs to one person: one that another person has is refused (merge them instead)."""
        return person_out(library.name_person(person_id, list(body.names), add=body.add))

    @api.post("/people/me")
    def set_me(body: m.MeIn) -> m.PersonOut | None:
        """Mark which person is the library's owner: 我 / me / my in a question mean them (null: nobody)."""
        p = library.set_me(body.person_id)
        return person_out(p) if p is not None else None

    @api.post("/people/{person_id}/hide")
    def hide_person(person_id: PersonId, body: m.HideIn) -> m.PersonOut:
        """Hide a person (strangers in the background) or show them again."""
        return person_out(library.hide_person(person_id, body.hidden))

    @api.post("/people/merge")
    def merge_people(body: m.MergeIn) -> m.PersonOut:
        """Merge people into the target: it keeps every face and name; the others are deleted."""
        return person_out(library.merge_people(list(body.sources), body.target))

    @api.delete("/people/{person_id}")
    def forget_person(person_id: PersonId) -> m.ForgetOut:
        """Forget a person: names, faces and face vectors are deleted; the photos are not scanned again."""
        return m.ForgetOut(person_id=person_id, faces_deleted=library.forget_person(person_id))

    @api.post("/faces/move")
    def move_faces(body: m.MoveFacesIn) -> m.PersonOut:
        """Give faces to a person, or (person_id null) to a new person of their own; no run undoes it."""
        return person_out(library.move_faces(list(body.face_ids), body.person_id))

    @api.get("/photos/{photo_id}/faces", tags=["photos"])
    def photo_faces(
        photo_id: Annotated[int, PathParam(ge=1, le=m.MAX_ID, description="a photo's id")],
    ) -> list[m.FaceOut]:
        """The faces found in a photo, left to right, with who they are (hidden people show as nobody)."""
        photo = library.catalog.photo(photo_id)
        if photo["id"] != photo_id:  # an id only, never a path or hash prefix
            raise NotFoundError(f"no photo {photo_id} in the catalog")
        return [face_out(f) for f in library.photo_faces(photo_id)]

    @api.get(
        "/faces/{face_id}/crop",
        response_class=Response,
        responses={200: IMAGE, **NOT_MODIFIED},
    )
    def face_crop_image(
        face_id: FaceId,
        size: Annotated[int, Query(ge=16, le=m.MAX_CROP, description="pixels on each side")] = CROP_SIZE,
        v: Annotated[str | None, Query(max_length=32, description="cache key from the API's links")] = None,
        if_none_match: Annotated[str | None, Header(max_length=2000)] = None,
    ) -> Response:
        """A square JPEG of a face with a margin around it, cut from the photo's large upright thumbnail."""
        face = library.face(face_id)
        etag = f'"face-{crop_key(face)}-{size}"'
        headers = {"etag": etag, "cache-control": PHOTO_CACHE}
        if etag_matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        thumb = thumb_path(library.settings.thumbs_dir, face["hash"], max(library.settings.thumb_sizes))
        if not thumb.is_file():
            raise NotFoundError(f"photo {face['photo_id']} has no thumbnail", "run `smartalbum index`")
        box = (face["x"], face["y"], face["w"], face["h"])
        return Response(face_crop(thumb, box, size), media_type="image/jpeg", headers=headers)

    return api
