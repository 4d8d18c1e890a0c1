"""C2PA manifests: sign an exported MP4 with c2pa-python, and read one back.

Every export carries actions (`c2pa.created` and `c2pa.edited`) with the IPTC digital source type for
composites made with trained algorithmic media, the source and target media as ingredients (title, format,
hash), doppel's version, and the user's optional author / purpose / consent fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doppel import __version__
from doppel.errors import DoppelError
from doppel.provenance.keys import SigningIdentity

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
DISCLOSURE_LABEL = "org.doppel.disclosure"


@dataclass(frozen=True)
class Ingredient:
    path: Path
    title: str
    mime: str
    relationship: str  # "inputTo" (source identity) or "parentOf" (the plate)
    sha256: str


@dataclass(frozen=True)
class ManifestInfo:
    title: str
    workspace_id: str
    disclosure_text: str
    ingredients: list[Ingredient] = field(default_factory=list)
    author: str | None = None
    purpose: str | None = None
    consent: str | None = None
    embed_ingredients: bool = True
    """Add each ingredient file to the manifest (hashing it); otherwise they are listed by hash only."""


def manifest_json(info: ManifestInfo) -> dict[str, Any]:
    agent = {"name": "doppel", "version": __version__}
    disclosure: dict[str, Any] = {"synthetic": True, "text": info.disclosure_text, "workspace_id": info.workspace_id,
                                  "ingredients_sha256": {i.title: i.sha256 for i in info.ingredients}}
    for key in ("author", "purpose", "consent"):
        if getattr(info, key):
            disclosure[key] = getattr(info, key)
    return {
        "claim_generator_info": [agent],
        "title": info.title,
        "format": "video/mp4",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": agent},
                {"action": "c2pa.edited", "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": agent,
                 "description": "face replaced with a face-swap model trained on the source footage"},
            ]}},
            {"label": DISCLOSURE_LABEL, "data": disclosure},
        ],
    }


MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
              ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def sign_file(src: Path, dst: Path, info: ManifestInfo, identity: SigningIdentity, mime: str) -> None:
    """Write `dst`: `src` (an MP4, MOV or PNG) with a signed C2PA manifest embedded."""
    import c2pa

    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", identity.chain_pem, identity.key_pem, None))
        manifest = manifest_json(info)
        manifest["format"] = mime
        with c2pa.Builder(manifest) as builder:
            for ing in info.ingredients if info.embed_ingredients else []:
                meta = {"title": ing.title, "format": ing.mime, "relationship": ing.relationship}
                with open(ing.path, "rb") as stream:
                    builder.add_ingredient(meta, ing.mime, stream)
            with open(src, "rb") as source, open(dst, "wb") as dest:
                builder.sign(signer, mime, source, dest)
    except c2pa.C2paError as exc:
        raise DoppelError(f"C2PA signing failed ({exc})", dst) from exc


@dataclass
class ManifestReport:
    present: bool
    valid: bool = False
    state: str = ""
    signer: str = ""
    self_signed_or_untrusted: bool = False
    actions: list[str] = field(default_factory=list)
    digital_source_type: str = ""
    ingredients: list[dict[str, Any]] = field(default_factory=list)
    disclosure: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def read_manifest(path: Path) -> ManifestReport:
    """The C2PA manifest of an MP4, MOV, PNG or JPEG file (not present for other formats)."""
    import c2pa

    mime = MIME_TYPES.get(Path(path).suffix.lower())
    if mime is None:
        return ManifestReport(present=False)
    try:
        with open(path, "rb") as stream, c2pa.Reader(mime, stream) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state() or ""
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in text or "no JUMBF" in text.lower() or "not found" in text.lower():
            return ManifestReport(present=False)
        return ManifestReport(present=True, valid=False, state="Invalid", problems=[text])
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    statuses = store.get("validation_status", []) or []
    results = store.get("validation_results", {}) or {}
    failures = []
    for group in (results.get("activeManifest", {}) or {}).get("failure", []) or []:
        failures.append(f"{group.get('code')}: {group.get('explanation', '')}")
    for s in statuses:
        code = s.get("code", "")
        if code and "untrusted" not in code and code not in failures:
            failures.append(f"{code}: {s.get('explanation', '')}")
    active_failures = (results.get("activeManifest", {}) or {}).get("failure", []) or []
    untrusted = any("untrusted" in (s.get("code") or "") for s in statuses) or any(
        "untrusted" in (g.get("code") or "") for g in active_failures)
    actions, dst = [], ""
    disclosure: dict[str, Any] = {}
    for assertion in active.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for a in assertion.get("data", {}).get("actions", []):
                actions.append(a.get("action", ""))
                dst = dst or a.get("digitalSourceType", "")
        if assertion.get("label") == DISCLOSURE_LABEL:
            disclosure = assertion.get("data", {})
    real_failures = [f for f in failures if "untrusted" not in f]
    return ManifestReport(
        present=True, valid=state in ("Valid", "Trusted") and not real_failures, state=state,
        signer=(active.get("signature_info", {}) or {}).get("issuer", ""), self_signed_or_untrusted=untrusted,
        actions=actions, digital_source_type=dst,
        ingredients=[{"title": i.get("title"), "format": i.get("format"), "relationship": i.get("relationship")}
                     for i in active.get("ingredients", [])],
        disclosure=disclosure, problems=real_failures,
    )
