"""Typed per-platform methods: ``sidecar.facebook.post(...)``, ``sidecar.whatsapp.send(...)``, ``.validate``,
``.refresh``, and on existing posts ``.delete``, ``.insights``, ``.status``.

Keyword arguments are snake_case and become the camelCase wire params of ``protocol/PROTOCOL.md`` §3; ``None`` means
"not sent". ``extra_params`` passes wire params this version does not name yet, as they are.

Every method also takes ``timeout`` (seconds: the whole call's budget, sent as ``deadlineMs``; default: the
:class:`~social_sidecar.Sidecar`'s) and ``on_progress`` (a callable receiving each
:class:`~social_sidecar.types.Progress` of the call: upload bytes, processing waits).
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from .types import (
    DeleteResult,
    InsightsResult,
    PostResult,
    RefreshResult,
    StatusResult,
    ValidationResult,
    to_camel,
    wire_time,
)

if TYPE_CHECKING:
    from .client import ProgressCallback, Sidecar

__all__ = ["PlatformClient", "Facebook", "Instagram", "LinkedIn", "YouTube", "WhatsApp"]


def _params(values: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    wire = {to_camel(name): value for name, value in values.items() if value is not None}
    if extra:
        wire.update(extra)
    return wire


class PlatformClient:
    """Operations every platform has: ``validate``, ``refresh``, and ``delete``, ``insights``, ``status`` of a post
    (:class:`~social_sidecar.errors.Unsupported` where the platform's API offers one not; ``supports()`` tells)."""

    name: ClassVar[str] = ""

    def __init__(self, sidecar: "Sidecar") -> None:
        self._sidecar = sidecar

    async def validate(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> ValidationResult:
        """Prove the credential works for its account and has what posting needs (``missing`` lists what it lacks)."""
        params = _params(
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
            ),
            extra_params,
        )
        return ValidationResult.from_wire(await self._call("validate", params, timeout, on_progress))

    async def refresh(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> RefreshResult:
        """Refresh the access token now; the new token arrives through ``on_credentials_updated`` first.

        Raises :class:`~social_sidecar.errors.Unsupported` where the platform has no refresh (Meta page and
        system-user tokens).
        """
        params = _params(
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
            ),
            extra_params,
        )
        return RefreshResult.from_wire(await self._call("refresh", params, timeout, on_progress))

    async def delete(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        post_id: str,
        agent_id: str | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> DeleteResult:
        """Delete the post ``post_id``; one already gone answers ``deleted=False`` with the ``reason``."""
        params = _params(
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
                post_id=post_id,
            ),
            extra_params,
        )
        return DeleteResult.from_wire(await self._call("delete", params, timeout))

    async def insights(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        post_id: str,
        metrics: Sequence[str] | None = None,
        agent_id: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> InsightsResult:
        """The post's metrics (``views``, ``impressions``, ``reach``, ``likes``, ``comments``, ``shares``, ``saves``,
        ``clicks``: those the platform reports), narrowed to ``metrics`` when given."""
        params = _params(
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                post_id=post_id,
                metrics=list(metrics) if metrics is not None else None,
            ),
            extra_params,
        )
        return InsightsResult.from_wire(await self._call("insights", params, timeout))

    async def status(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        post_id: str,
        agent_id: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> StatusResult:
        """What became of the post: ``processing``, ``published``, ``scheduled``, ``failed`` or ``deleted``."""
        params = _params(
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                post_id=post_id,
            ),
            extra_params,
        )
        return StatusResult.from_wire(await self._call("status", params, timeout))

    async def _call(
        self, operation: str, params: Mapping[str, Any], timeout: float | None,
        on_progress: ProgressCallback | None = None,
    ) -> Any:
        return await self._sidecar.call_platform(
            f"{self.name}/{operation}", params, timeout=timeout, on_progress=on_progress
        )

    async def _publish(
        self,
        operation: str,
        common: Mapping[str, Any],
        content: Mapping[str, Any],
        timeout: float | None,
        on_progress: ProgressCallback | None,
        extra: Mapping[str, Any] | None,
    ) -> PostResult:
        params = _params({**common, **content}, extra)
        return PostResult.from_wire(await self._call(operation, params, timeout, on_progress))


def _items(items: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [{to_camel(str(k)): v for k, v in item.items()} for item in items]


def _object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(value) if value is not None else None


class Facebook(PlatformClient):
    """Facebook Pages: feed posts (text, link, photo, photos, video), stories and reels."""

    name = "facebook"

    async def post(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str,
        text: str | None = None,
        link: str | None = None,
        image_url: str | None = None,
        image_urls: Sequence[str] | None = None,
        video_url: str | None = None,
        kind: str | None = None,
        video_path: str | None = None,
        alt_text: str | None = None,
        video_title: str | None = None,
        thumbnail_url: str | None = None,
        call_to_action: str | None = None,
        publish_at: str | _dt.datetime | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> PostResult:
        """Publish to the page; ``kind`` is ``feed`` (default), ``story`` or ``reel``; ``alt_text`` describes a single
        photo, ``video_title`` names a video post and ``thumbnail_url`` sets its thumbnail (``video_url`` only);
        ``video_path`` uploads a local video (a feed video, reel or story), resuming after a failure;
        ``call_to_action`` (``SHOP_NOW``, ``LEARN_MORE``...) puts a button on a ``link`` post.
        ``publish_at`` (RFC 3339 text or a datetime, 10 minutes to 30 days ahead) schedules a feed post: ``status`` is
        then ``scheduled``."""
        return await self._publish(
            "post",
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
            ),
            dict(
                text=text,
                link=link,
                image_url=image_url,
                image_urls=list(image_urls) if image_urls is not None else None,
                video_url=video_url,
                kind=kind,
                video_path=video_path,
                alt_text=alt_text,
                video_title=video_title,
                thumbnail_url=thumbnail_url,
                call_to_action=call_to_action,
                publish_at=wire_time(publish_at),
            ),
            timeout,
            on_progress,
            extra_params,
        )


class Instagram(PlatformClient):
    """Instagram professional accounts: feed images, reels, stories and carousels."""

    name = "instagram"

    async def post(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str,
        caption: str | None = None,
        image_url: str | None = None,
        video_url: str | None = None,
        video_path: str | None = None,
        items: Sequence[Mapping[str, Any]] | None = None,
        kind: str | None = None,
        alt_text: str | None = None,
        user_tags: Sequence[Mapping[str, Any]] | None = None,
        collaborators: Sequence[str] | None = None,
        location_id: str | None = None,
        cover_url: str | None = None,
        thumb_offset_ms: int | None = None,
        share_to_feed: bool | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> PostResult:
        """Publish; ``items`` is a carousel (``[{"image_url": ...}, {"video_url": ...}]``); ``kind`` is inferred when
        absent (``feed``, ``reel``, ``story``, ``carousel``). ``alt_text`` (a feed image), ``user_tags``
        (``[{"username", "x", "y"}]``; reels: username only), ``collaborators`` (1-3 usernames), ``location_id``, and
        for reels ``cover_url`` or ``thumb_offset_ms``, ``share_to_feed``; ``video_path`` uploads a local reel
        (Facebook Login accounts)."""
        return await self._publish(
            "post",
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
            ),
            dict(
                caption=caption,
                image_url=image_url,
                video_url=video_url,
                video_path=video_path,
                items=_items(items),
                kind=kind,
                alt_text=alt_text,
                user_tags=[dict(tag) for tag in user_tags] if user_tags is not None else None,
                collaborators=list(collaborators) if collaborators is not None else None,
                location_id=location_id,
                cover_url=cover_url,
                thumb_offset_ms=thumb_offset_ms,
                share_to_feed=share_to_feed,
            ),
            timeout,
            on_progress,
            extra_params,
        )


class LinkedIn(PlatformClient):
    """LinkedIn organization pages: text, image, multi-image, link, document and video posts."""

    name = "linkedin"

    async def post(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str,
        text: str | None = None,
        image_url: str | None = None,
        link: str | None = None,
        visibility: str | None = None,
        image_urls: Sequence[str] | None = None,
        alt_text: str | None = None,
        link_title: str | None = None,
        link_description: str | None = None,
        link_thumbnail_url: str | None = None,
        document_url: str | None = None,
        document_path: str | None = None,
        document_title: str | None = None,
        video_url: str | None = None,
        video_path: str | None = None,
        captions_url: str | None = None,
        captions_path: str | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> PostResult:
        """Publish as the organization; ``visibility`` defaults to ``PUBLIC``. One attachment at most: ``image_url``
        (``alt_text``), ``image_urls`` (2-20), ``link`` (``link_title``, ``link_description``, ``link_thumbnail_url``),
        ``document_url`` or ``document_path`` with ``document_title``, or ``video_url`` or ``video_path`` with optional
        captions from ``captions_url`` or ``captions_path`` (a SubRip .srt file)."""
        return await self._publish(
            "post",
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
            ),
            dict(
                text=text,
                image_url=image_url,
                link=link,
                visibility=visibility,
                image_urls=list(image_urls) if image_urls is not None else None,
                alt_text=alt_text,
                link_title=link_title,
                link_description=link_description,
                link_thumbnail_url=link_thumbnail_url,
                document_url=document_url,
                document_path=document_path,
                document_title=document_title,
                video_url=video_url,
                video_path=video_path,
                captions_url=captions_url,
                captions_path=captions_path,
            ),
            timeout,
            on_progress,
            extra_params,
        )


class YouTube(PlatformClient):
    """YouTube channels: video uploads (a text-only post is refused as invalid params)."""

    name = "youtube"

    async def post(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str,
        title: str | None = None,
        description: str | None = None,
        video_url: str | None = None,
        video_path: str | None = None,
        tags: Sequence[str] | None = None,
        privacy_status: str | None = None,
        category_id: str | None = None,
        made_for_kids: bool | None = None,
        notify_subscribers: bool | None = None,
        default_language: str | None = None,
        contains_synthetic_media: bool | None = None,
        license: str | None = None,
        embeddable: bool | None = None,
        thumbnail_url: str | None = None,
        thumbnail_path: str | None = None,
        playlist_id: str | None = None,
        publish_at: str | _dt.datetime | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> PostResult:
        """Upload a video from ``video_url`` or ``video_path`` (a file under the ``media.localRoots`` setting, which is
        empty by default); ``status`` may be ``processing`` on return.

        ``license`` is ``youtube`` or ``creativeCommon``. ``thumbnail_url`` or ``thumbnail_path`` (JPEG/PNG ≤ 2 MB) and
        ``playlist_id`` are applied once the video exists; if one fails, the error names the published video (it is not
        uploaded again). ``publish_at`` (RFC 3339 text or a datetime, in the future) keeps the video private until then:
        ``status`` is ``scheduled``.
        """
        return await self._publish(
            "post",
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
            ),
            dict(
                title=title,
                description=description,
                video_url=video_url,
                video_path=video_path,
                tags=list(tags) if tags is not None else None,
                privacy_status=privacy_status,
                category_id=category_id,
                made_for_kids=made_for_kids,
                notify_subscribers=notify_subscribers,
                default_language=default_language,
                contains_synthetic_media=contains_synthetic_media,
                license=license,
                embeddable=embeddable,
                thumbnail_url=thumbnail_url,
                thumbnail_path=thumbnail_path,
                playlist_id=playlist_id,
                publish_at=wire_time(publish_at),
            ),
            timeout,
            on_progress,
            extra_params,
        )


class WhatsApp(PlatformClient):
    """WhatsApp Business Cloud API: text, media (image, video, audio, document, sticker), location, contacts,
    interactive (reply buttons, lists), reaction and template messages."""

    name = "whatsapp"

    async def send(
        self,
        *,
        credential_ref: str,
        customer_id: str,
        agent_id: str,
        to: str,
        text: str | None = None,
        image: Mapping[str, Any] | None = None,
        video: Mapping[str, Any] | None = None,
        audio: Mapping[str, Any] | None = None,
        document: Mapping[str, Any] | None = None,
        sticker: Mapping[str, Any] | None = None,
        location: Mapping[str, Any] | None = None,
        contacts: Sequence[Mapping[str, Any]] | None = None,
        interactive: Mapping[str, Any] | None = None,
        reaction: Mapping[str, Any] | None = None,
        template: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
        preview_url: bool | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        extra_params: Mapping[str, Any] | None = None,
    ) -> PostResult:
        """Send to ``to`` (E.164) one of ``text`` (``preview_url`` to show a link preview), ``image``/``video``/
        ``document`` ``={"url" or "path", "caption"?}`` (``"filename"?`` for a document), ``audio``/``sticker``
        ``={"url" or "path"}`` (``path``: a local file, uploaded and sent by its id),
        ``location={"latitude", "longitude", "name"?, "address"?}``, ``contacts`` (the Cloud API's contact cards),
        ``interactive`` (the Cloud API's reply-buttons or list object), ``reaction={"messageId", "emoji"}`` or
        ``template={"name", "language", "components"?}``; ``reply_to`` quotes an earlier message id. ``post_url`` is
        None, ``status`` ``accepted``.
        """
        return await self._publish(
            "send",
            dict(
                credential_ref=credential_ref,
                customer_id=customer_id,
                agent_id=agent_id,
                correlation_id=correlation_id,
                idempotency_key=idempotency_key,
            ),
            dict(
                to=to,
                text=text,
                image=_object(image),
                video=_object(video),
                audio=_object(audio),
                document=_object(document),
                sticker=_object(sticker),
                location=_object(location),
                contacts=[dict(card) for card in contacts] if contacts is not None else None,
                interactive=_object(interactive),
                reaction=_object(reaction),
                template=_object(template),
                reply_to=reply_to,
                preview_url=preview_url,
            ),
            timeout,
            on_progress,
            extra_params,
        )
