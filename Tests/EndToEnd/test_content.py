"""Issue 21 end to end: the content types beyond text, image and video, per platform, over the real binary against the
fakes. Each type publishes, and the fake (which checks the platform's field names) confirms the exact request."""
from __future__ import annotations

from test_meta import IMAGE, VIDEO, WA, failed, graph_requests, ok

PDF = "https://cdn.example.test/terms.pdf"
WAMID = "wamid.HBgLMTU1NTAwMDExMTEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"


# ----- WhatsApp ---------------------------------------------------------------------------------------------------


def wa_send(sidecar, to: str = "15550001111", **content) -> dict:
    return ok(sidecar.call("whatsapp/send", {**WA, "to": to, **content}))


BUTTONS = {"type": "button", "body": {"text": "Keep the booking?"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Keep it"}},
                                  {"type": "reply", "reply": {"id": "no", "title": "Cancel"}}]}}
LIST = {"type": "list", "header": {"type": "text", "text": "Slots"}, "body": {"text": "Pick a time"},
        "footer": {"text": "Times are local"},
        "action": {"button": "Times", "sections": [
            {"title": "Morning", "rows": [{"id": "9", "title": "9:00"}, {"id": "10", "title": "10:00"}]},
            {"title": "Afternoon", "rows": [{"id": "14", "title": "14:00", "description": "after lunch"}]}]}}
CONTACT = [{"name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"},
            "phones": [{"phone": "+15550009999", "type": "WORK"}]}]


def test_whatsapp_every_message_type_goes_out_as_the_cloud_api_shapes_it(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.configure({"whatsapp": {"window_open_for_all": True}})
    cases = [
        ({"video": {"url": VIDEO, "caption": "Clip"}}, "video", {"link": VIDEO, "caption": "Clip"}),
        ({"audio": {"url": "https://cdn.example.test/note.ogg"}}, "audio",
         {"link": "https://cdn.example.test/note.ogg"}),
        ({"document": {"url": PDF, "caption": "Terms", "filename": "terms.pdf"}}, "document",
         {"link": PDF, "caption": "Terms", "filename": "terms.pdf"}),
        ({"sticker": {"url": "https://cdn.example.test/s.webp"}}, "sticker", {"link": "https://cdn.example.test/s.webp"}),
        ({"location": {"latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"}}, "location",
         {"latitude": 51.5, "longitude": -0.12, "name": "Office", "address": "1 Main St"}),
        ({"contacts": CONTACT}, "contacts", CONTACT),
        ({"interactive": BUTTONS}, "interactive", BUTTONS),
        ({"interactive": LIST}, "interactive", LIST),
        ({"reaction": {"messageId": WAMID, "emoji": "\U0001F44D"}}, "reaction",
         {"message_id": WAMID, "emoji": "\U0001F44D"}),
        ({"text": "See https://example.com", "previewUrl": True}, "text",
         {"body": "See https://example.com", "preview_url": True}),
    ]
    # One recipient each: the sidecar paces sends to one recipient 6 s apart.
    answers = [wa_send(sidecar, f"1555000{4000 + n}", **params) for n, (params, _, _) in enumerate(cases)]
    sends = graph_requests(fake, "whatsapp", "POST", "/messages$")
    assert len(sends) == len(cases)
    for (params, kind, expected), send, answer in zip(cases, sends, answers):
        assert send["body"]["type"] == kind and send["body"][kind] == expected, params
        assert "context" not in send["body"]
        assert answer["status"] == "accepted" and answer["postId"].startswith("wamid.")
    assert [p["kind"] for p in fake.published(platform="whatsapp")] == [kind for _, kind, _ in cases]


def test_whatsapp_reply_carries_the_context(fake, sidecar_factory):
    sidecar = sidecar_factory()
    fake.configure({"whatsapp": {"window_open_for_all": True}})
    first = wa_send(sidecar, "15550004100", text="Your order shipped")
    wa_send(sidecar, "15550004101", image={"url": IMAGE}, replyTo=first["postId"])
    reply = graph_requests(fake, "whatsapp", "POST", "/messages$")[-1]
    assert reply["body"]["context"] == {"message_id": first["postId"]}
    assert fake.published(platform="whatsapp")[-1]["reply_to"] == first["postId"]


def test_whatsapp_impossible_combinations_are_refused_before_sending(fake, sidecar_factory):
    sidecar = sidecar_factory()
    three_rows = [{"id": str(i), "title": f"Row {i}"} for i in range(4)]
    for params, field in [
        ({"sticker": {"url": "https://cdn.example.test/s.webp", "caption": "hi"}}, "sticker.caption"),
        ({"audio": {"url": "https://cdn.example.test/a.ogg", "caption": "hi"}}, "audio.caption"),
        ({"image": {"url": IMAGE, "filename": "a.jpg"}}, "image.filename"),
        ({"image": {"url": IMAGE}, "previewUrl": True}, "previewUrl"),
        ({"reaction": {"messageId": WAMID, "emoji": "x"}, "replyTo": WAMID}, "replyTo"),
        ({"location": {"latitude": 91, "longitude": 0}}, "location.latitude"),
        ({"location": {"latitude": 1}}, "location.longitude"),
        ({"contacts": [{"phones": []}]}, "contacts[0].name.formatted_name"),
        ({"interactive": {**BUTTONS, "action": {"buttons": BUTTONS["action"]["buttons"] * 2}}},
         "interactive.action.buttons"),
        ({"interactive": {**BUTTONS, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "A title longer than twenty"}}]}}},
         "interactive.action.buttons[0].reply.title"),
        ({"interactive": {**LIST, "action": {"button": "Times", "sections": [
            {"title": "A", "rows": three_rows}, {"title": "B", "rows": [{"id": f"b{i}", "title": "x"}
                                                                          for i in range(7)]}]}}},
         "interactive.action.sections"),
        ({"interactive": {**LIST, "action": {"button": "Times", "sections": [
            {"rows": [{"id": "1", "title": "x"}, {"id": "1", "title": "y"}]}]}}},
         "interactive.action.sections[0].rows[1].id"),
    ]:
        error = failed(sidecar.call("whatsapp/send", {**WA, "to": "15550001111", **params}))
        assert error["code"] == -32602 and error["data"]["field"] == field, (params, error)
    assert not graph_requests(fake, "whatsapp")
