"""The seeded accounts and test credentials. Every token is an obvious fake (`fake-…`), never
shaped like a real Meta, Google or LinkedIn token. README.md lists them."""

from __future__ import annotations

from .core import DAY, Token, TokenStore

META_APP_ID = "900000001"
META_APP_SECRET = "fake-meta-app-secret"
META_APP_TOKEN = f"{META_APP_ID}|{META_APP_SECRET}"

FB_USER_ID = "10000001"
FB_USER_NAME = "Fake User One"
FB_PAGE_ID = "20000001"
FB_PAGE_2_ID = "20000002"
IG_USER_ID = "17841400000000001"
WA_PHONE_NUMBER_ID = "30000001"
WA_WABA_ID = "30000000"
WA_SYSTEM_USER_ID = "10000099"
WA_DISPLAY_PHONE = "+1 555-010-0000"
WA_OPEN_WINDOW_RECIPIENT = "15550001111"
WA_CLOSED_WINDOW_RECIPIENT = "15550002222"

GOOGLE_CLIENT_ID = "fake-google-client-id.apps.example.test"
GOOGLE_CLIENT_SECRET = "fake-google-client-secret"
GOOGLE_ACCOUNT_ID = "100000000000000000001"
YT_CHANNEL_ID = "UCfakechannel00000000001"
YT_PLAYLIST_ID = "PLfakeplaylist000000000000000001"

LI_CLIENT_ID = "fake-linkedin-client-id"
LI_CLIENT_SECRET = "fake-linkedin-client-secret"
LI_MEMBER_ID = "fakeMember1"
LI_MEMBER_URN = f"urn:li:person:{LI_MEMBER_ID}"
LI_ORG_ID = "40000001"
LI_ORG_URN = f"urn:li:organization:{LI_ORG_ID}"
LI_ORG_2_ID = "40000002"

FB_PAGE_SCOPES = ["pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_metadata",
                  "publish_video", "business_management", "instagram_basic", "instagram_content_publish"]
ALL_PAGE_TASKS = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]
YT_SCOPES = ["https://www.googleapis.com/auth/youtube.upload", "https://www.googleapis.com/auth/youtube.readonly"]
# The seeded channel's own token may also manage (delete) its videos.
YT_MANAGE_SCOPES = YT_SCOPES + ["https://www.googleapis.com/auth/youtube.force-ssl"]
LI_SCOPES = ["openid", "profile", "email", "w_member_social", "w_organization_social", "r_organization_social",
             "rw_organization_admin"]


def meta_accounts() -> dict:
    """Graph objects the fake starts with, keyed by id."""
    return {
        "users": {FB_USER_ID: {"id": FB_USER_ID, "name": FB_USER_NAME}},
        "system_users": {WA_SYSTEM_USER_ID: {"id": WA_SYSTEM_USER_ID, "name": "Fake System User"}},
        "pages": {
            FB_PAGE_ID: {"id": FB_PAGE_ID, "name": "Fake Page One", "username": "fakepageone",
                         "category": "Software", "roles": {FB_USER_ID: ALL_PAGE_TASKS},
                         "instagram": IG_USER_ID, "token": "fake-fb-page-token-1"},
            FB_PAGE_2_ID: {"id": FB_PAGE_2_ID, "name": "Fake Page Two", "username": "fakepagetwo",
                           "category": "Software", "roles": {FB_USER_ID: ["ANALYZE"]}, "instagram": None,
                           "token": "fake-fb-page-token-2"},
        },
        "ig_users": {IG_USER_ID: {"id": IG_USER_ID, "username": "fake_ig_one", "name": "Fake IG One",
                                  "account_type": "BUSINESS", "page": FB_PAGE_ID,
                                  "profile_picture_url": "https://example.test/fake-ig-one.jpg"}},
        "wa_phones": {WA_PHONE_NUMBER_ID: {"id": WA_PHONE_NUMBER_ID, "waba": WA_WABA_ID,
                                           "verified_name": "Fake Business", "display_phone_number": WA_DISPLAY_PHONE,
                                           "quality_rating": "GREEN", "code_verification_status": "VERIFIED",
                                           "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"},
                                           "whatsapp_business_manager_messaging_limit": "TIER_2K"}},
        "wabas": {WA_WABA_ID: {"id": WA_WABA_ID, "name": "Fake WABA", "phones": [WA_PHONE_NUMBER_ID]}},
        "wa_templates": {("hello_world", "en_US"): 0, ("order_update", "en_US"): 1},
    }


def linkedin_accounts() -> dict:
    return {
        "members": {LI_MEMBER_ID: {"sub": LI_MEMBER_ID, "name": "Fake Member", "given_name": "Fake",
                                   "family_name": "Member", "email": "fake.member@example.test"}},
        "organizations": {
            LI_ORG_ID: {"id": int(LI_ORG_ID), "localizedName": "Fake Org One", "vanityName": "fake-org-one"},
            LI_ORG_2_ID: {"id": int(LI_ORG_2_ID), "localizedName": "Fake Org Two", "vanityName": "fake-org-two"},
        },
        "acls": [
            {"roleAssignee": LI_MEMBER_URN, "organization": LI_ORG_URN, "role": "ADMINISTRATOR", "state": "APPROVED"},
            {"roleAssignee": LI_MEMBER_URN, "organization": f"urn:li:organization:{LI_ORG_2_ID}",
             "role": "ANALYST", "state": "APPROVED"},
        ],
    }


def seed_tokens(store: TokenStore) -> None:
    now = store.clock.now()
    add = store.add
    # Meta: a long-lived user token, page tokens minted from it (no expiry), an expired one,
    # Instagram-Login tokens (one old enough to refresh, one not), and a WhatsApp system-user token.
    add(Token("fake-fb-user-token-1", "facebook", "USER", FB_USER_ID, FB_PAGE_SCOPES,
              targets=[FB_PAGE_ID, FB_PAGE_2_ID, IG_USER_ID], issued_at=now - DAY, expires_at=now + 59 * DAY))
    add(Token("fake-fb-page-token-1", "facebook", "PAGE", FB_PAGE_ID, FB_PAGE_SCOPES,
              targets=[FB_PAGE_ID, IG_USER_ID], issued_at=now - DAY, user_id=FB_USER_ID))
    add(Token("fake-fb-page-token-2", "facebook", "PAGE", FB_PAGE_2_ID, FB_PAGE_SCOPES,
              targets=[FB_PAGE_2_ID], issued_at=now - DAY, user_id=FB_USER_ID))
    add(Token("fake-fb-user-token-expired", "facebook", "USER", FB_USER_ID, FB_PAGE_SCOPES,
              targets=[FB_PAGE_ID], issued_at=now - 61 * DAY, expires_at=now - 3600))
    add(Token("fake-ig-login-token-1", "instagram", "IG_USER", IG_USER_ID,
              ["instagram_business_basic", "instagram_business_content_publish"], targets=[IG_USER_ID],
              issued_at=now - 2 * DAY, expires_at=now + 58 * DAY))
    add(Token("fake-ig-login-token-fresh", "instagram", "IG_USER", IG_USER_ID,
              ["instagram_business_basic", "instagram_business_content_publish"], targets=[IG_USER_ID],
              issued_at=now, expires_at=now + 60 * DAY))
    add(Token("fake-wa-system-token-1", "whatsapp", "SYSTEM_USER", WA_SYSTEM_USER_ID,
              ["whatsapp_business_messaging", "whatsapp_business_management"], targets=[WA_WABA_ID],
              issued_at=now - DAY))
    # Google / YouTube.
    add(Token("fake-yt-access-token-1", "youtube", "ACCESS", GOOGLE_ACCOUNT_ID, YT_MANAGE_SCOPES,
              issued_at=now, expires_at=now + 3599, client_id=GOOGLE_CLIENT_ID))
    add(Token("fake-yt-refresh-token-1", "youtube", "REFRESH", GOOGLE_ACCOUNT_ID, YT_MANAGE_SCOPES,
              issued_at=now - DAY, client_id=GOOGLE_CLIENT_ID))
    add(Token("fake-yt-access-token-nochannel", "youtube", "ACCESS", "100000000000000000002", YT_SCOPES,
              issued_at=now, expires_at=now + 3599, client_id=GOOGLE_CLIENT_ID))
    add(Token("fake-yt-access-token-readonly", "youtube", "ACCESS", GOOGLE_ACCOUNT_ID, YT_SCOPES[1:],
              issued_at=now, expires_at=now + 3599, client_id=GOOGLE_CLIENT_ID))
    # LinkedIn: 60-day access token, 365-day refresh token from the same authorization.
    add(Token("fake-li-access-token-1", "linkedin", "ACCESS", LI_MEMBER_ID, LI_SCOPES,
              issued_at=now - DAY, expires_at=now + 59 * DAY, client_id=LI_CLIENT_ID))
    add(Token("fake-li-refresh-token-1", "linkedin", "REFRESH", LI_MEMBER_ID, LI_SCOPES,
              issued_at=now - DAY, expires_at=now + 364 * DAY, client_id=LI_CLIENT_ID, authorized_at=now - DAY))
    add(Token("fake-li-access-token-memberonly", "linkedin", "ACCESS", LI_MEMBER_ID,
              ["openid", "profile", "w_member_social"], issued_at=now - DAY, expires_at=now + 59 * DAY,
              client_id=LI_CLIENT_ID))


def credentials(store: TokenStore) -> dict:
    """Default credentials in the shape of the sidecar's `credentials/resolve` answer."""

    def expiry(value: str) -> int | None:
        token = store.get(value)
        return int(token.expires_at) if token and token.expires_at else None  # Unix seconds, as PROTOCOL.md §4 says

    return {
        "facebook": {"accessToken": "fake-fb-page-token-1", "accountId": FB_PAGE_ID},
        "instagram": {"accessToken": "fake-fb-page-token-1", "accountId": IG_USER_ID},
        "instagram_login": {"accessToken": "fake-ig-login-token-1", "accountId": IG_USER_ID,
                            "expiresAt": expiry("fake-ig-login-token-1")},
        "whatsapp": {"accessToken": "fake-wa-system-token-1", "accountId": WA_PHONE_NUMBER_ID},
        "youtube": {"accessToken": "fake-yt-access-token-1", "refreshToken": "fake-yt-refresh-token-1",
                    "expiresAt": expiry("fake-yt-access-token-1"), "accountId": YT_CHANNEL_ID,
                    "clientId": GOOGLE_CLIENT_ID, "clientSecret": GOOGLE_CLIENT_SECRET},
        "linkedin": {"accessToken": "fake-li-access-token-1", "refreshToken": "fake-li-refresh-token-1",
                     "expiresAt": expiry("fake-li-access-token-1"), "accountId": LI_ORG_URN,
                     "clientId": LI_CLIENT_ID, "clientSecret": LI_CLIENT_SECRET},
        "linkedin_member": {"accessToken": "fake-li-access-token-1", "accountId": LI_MEMBER_URN,
                            "clientId": LI_CLIENT_ID, "clientSecret": LI_CLIENT_SECRET},
        "meta_app": {"appId": META_APP_ID, "appSecret": META_APP_SECRET},
    }
