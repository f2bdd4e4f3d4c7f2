"""LTI Dynamic Registration as Moodle 5 does it, started by an admin's one-time registration link, against the
independent platform's registration endpoint (on loopback: allowed as the link's host or by
LTI_ALLOWED_PLATFORM_HOSTS, as an institution allows its internal Moodle)."""

import datetime
import logging
import socket
from urllib.parse import urlparse

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django.utils.html import escape

from lti import outbound
from lti.dynamic_registration import FAILED, LINK_REFUSED, new_registration_link
from lti.models import Deployment, Registration, RegistrationLink
from tests.lti_support import ROLE, FakeLMS, browser

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lms(live_server):
    platform = FakeLMS(live_server.url)  # not registered in the tool: dynamic registration does it
    yield platform
    platform.close()


def _link(allowed_host="127.0.0.1", **kwargs):
    """A new registration link's path (the admin pastes PUBLIC_URL + path into the LMS)."""
    _row, url = new_registration_link(allowed_host, **kwargs)
    return urlparse(url).path


def _register(live_server, lms, path, token="reg-token-1"):
    """What Moodle's startltiadvregistration.php does: open the pasted URL with the two parameters."""
    return browser().get(live_server.url + path, params={
        "openid_configuration": lms.base + "/.well-known/openid-configuration", "registration_token": token})


def _message(page):
    """(the page says the registration failed, the page says the link is not valid)"""
    return escape(str(FAILED)) in page.text, escape(str(LINK_REFUSED)) in page.text


# --- what an admin does: create the link, paste it, Moodle opens it ------------------------------------

def test_registration_sends_what_moodle_requires_and_waits_for_the_admins_click(lms, live_server):
    page = _register(live_server, lms, _link("127.0.0.1"))

    assert page.status_code == 200, page.text
    assert "/static/lti/registered.js" in page.text and "<script>" not in page.text  # no inline script (CSP)
    assert "Show in activity chooser" in page.text
    headers, sent = lms.registration_requests[0]
    assert headers["Authorization"] == "Bearer reg-token-1"
    assert "id_token" in sent["response_types"]
    assert sent["initiate_login_uri"] == live_server.url + "/lti/login"
    assert sent["redirect_uris"] == [live_server.url + "/lti/launch"]
    assert sent["jwks_uri"] == live_server.url + "/lti/jwks"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    config = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert config["domain"] == live_server.url.split("://")[1] == config["target_link_uri"].split("/")[2]
    assert {"LtiDeepLinkingRequest"} == {m["type"] for m in config["messages"]}
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in sent["scope"].split()
    assert "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" in sent["scope"].split()

    registration = Registration.objects.get()
    assert (registration.issuer, registration.client_id) == (lms.issuer, lms.client_id)
    assert registration.key_set_url == lms.base + "/jwks" and registration.auth_token_url == lms.base + "/token"
    assert Deployment.objects.get().deployment_id == lms.deployment_id
    assert registration.status == Registration.ACTIVE  # the admin named this host in the link
    link = RegistrationLink.objects.get()
    assert link.used_at and link.registration == registration


def test_each_registration_tells_moodle_the_tool_s_host_and_day(lms, live_server):
    """After "register as a new tool" Moodle lists the registrations by their name and description: each carries
    the tool's host and the day it was registered, not "Course tutor" alone (issue 24 §6)."""
    _register(live_server, lms, _link("127.0.0.1"))
    _headers, sent = lms.registration_requests[0]
    host = urlparse(live_server.url).netloc
    assert sent["client_name"] == f"Course tutor ({host})"
    description = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["description"]
    assert f"{host}, registered {timezone.localdate().isoformat()}" in description


def test_registration_page_may_be_framed_by_the_registering_platform(lms, live_server):
    """Moodle shows the page in an iframe of its admin page, before the platform is active."""
    page = _register(live_server, lms, _link("127.0.0.1"))
    assert page.headers["Content-Security-Policy"] == f"frame-ancestors 'self' {lms.base}"
    refused = _register(live_server, lms, "/lti/register/")
    assert refused.headers["Content-Security-Policy"] == f"frame-ancestors 'self' {lms.base}"
    odd = browser().get(live_server.url + "/lti/register/", params={"openid_configuration": "http://a;b/x"})
    assert odd.headers["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_platform_from_a_public_host_starts_pending_until_activated(lms, live_server, monkeypatch, caplog):
    """A link without a host: any public platform may use it, and an admin activates what registered."""
    monkeypatch.setattr(outbound, "refusal", lambda address: None)  # the loopback LMS stands in for a public one
    page = _register(live_server, lms, _link(""))
    assert page.status_code == 200, page.text
    assert Registration.objects.get().status == Registration.PENDING
    assert "must activate" in page.text

    with caplog.at_level(logging.WARNING):
        refused = browser().get(live_server.url + "/lti/login", params={
            "iss": lms.issuer, "client_id": lms.client_id, "login_hint": "u", "target_link_uri": live_server.url})
    assert refused.status_code == 400 and "not registered" in refused.text

    Registration.objects.update(status=Registration.ACTIVE)  # the admin action "Activate"
    response = lms.launch(browser(), user_id="teacher", roles=[ROLE + "Instructor"])
    assert response.status_code == 302 and "/c/" in response.headers["Location"]


def test_allowed_platform_hosts_setting_allows_a_loopback_platform(lms, live_server, settings):
    settings.LTI_ALLOWED_PLATFORM_HOSTS = ["127.0.0.1"]
    assert _register(live_server, lms, _link("")).status_code == 200
    assert Registration.objects.get().status == Registration.ACTIVE


def test_a_platform_name_resolving_to_loopback_registers_at_the_checked_address(live_server, monkeypatch):
    """An internal Moodle by name (moodle.test, which no real DNS knows): the admin's link names the host."""
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [(socket.AF_INET, "127.0.0.1")]
                        if host == "moodle.test" else socket.getaddrinfo(host, port))
    lms = FakeLMS(live_server.url, host="moodle.test")
    try:
        page = _register(live_server, lms, _link("moodle.test"))
        assert page.status_code == 200, page.text
        assert Registration.objects.get().issuer == lms.issuer == f"http://moodle.test:{lms.server.server_port}"
        assert {h["Host"] for _m, _p, h in lms.requests} == {f"moodle.test:{lms.server.server_port}"}
    finally:
        lms.close()


# --- finding 5: nobody without a link makes the tool fetch anything ------------------------------------

@pytest.mark.parametrize("state", ["no link", "unknown", "used", "expired"])
def test_without_a_usable_link_nothing_is_fetched_and_one_message_is_shown(lms, live_server, state, caplog):
    path = "/lti/register/" if state == "no link" else _link("127.0.0.1")
    if state == "unknown":
        path = "/lti/register/not-a-link/"
    elif state == "used":
        RegistrationLink.objects.update(used_at=timezone.now())
    elif state == "expired":
        RegistrationLink.objects.update(expires_at=timezone.now())
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms, path)

    assert page.status_code == 403
    assert _message(page) == (False, True)
    assert lms.requests == [] and not Registration.objects.exists()
    assert "no usable registration link" in caplog.text


def test_a_link_works_once(lms, live_server):
    path = _link("127.0.0.1")
    assert _register(live_server, lms, path).status_code == 200
    contacted = len(lms.requests)
    again = _register(live_server, lms, path)
    assert again.status_code == 403 and _message(again) == (False, True)
    assert len(lms.requests) == contacted and Registration.objects.count() == 1


def test_loopback_platform_without_the_admins_allowance_is_not_contacted(lms, live_server, caplog):
    path = _link("")
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms, path)
    assert page.status_code == 400 and _message(page) == (True, False)
    assert lms.requests == [] and not Registration.objects.exists()
    assert "127.0.0.1 (loopback), not allowed" in caplog.text
    assert RegistrationLink.objects.usable().count() == 1  # a failed registration leaves the link usable


def test_link_for_another_host_is_refused_without_contacting_it(lms, live_server, caplog):
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms, _link("moodle.example.edu"))
    assert page.status_code == 400 and _message(page) == (True, False)
    assert lms.requests == [] and not Registration.objects.exists()
    assert "is for moodle.example.edu, not 127.0.0.1" in caplog.text


def test_host_outside_the_allowed_list_is_not_contacted(lms, live_server, settings, caplog):
    settings.LTI_ALLOWED_PLATFORM_HOSTS = ["moodle.example.edu"]
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms, _link(""))
    assert page.status_code == 400 and _message(page) == (True, False)
    assert lms.requests == [] and not Registration.objects.exists()
    assert "not in LTI_ALLOWED_PLATFORM_HOSTS" in caplog.text


def test_an_address_that_answers_and_one_that_does_not_look_the_same(lms, live_server, caplog):
    """The page tells nothing about the network (no port scan through the tool); the log tells the admin."""
    lms.openid_configuration = lambda: {"issuer": lms.issuer}  # answers, but incomplete
    answering = _register(live_server, lms, _link("127.0.0.1"))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    with caplog.at_level(logging.WARNING):
        silent = browser().get(live_server.url + _link("127.0.0.1"), params={
            "openid_configuration": f"http://127.0.0.1:{port}/.well-known/openid-configuration"})
    assert answering.status_code == silent.status_code == 400
    assert _message(answering) == _message(silent) == (True, False)
    assert "reached" not in silent.text and "incomplete" not in answering.text
    assert "configuration lacks" in caplog.text and "Failed to connect" in caplog.text


@pytest.mark.parametrize("configuration", [
    lambda lms: ["not", "an", "object"],
    lambda lms: {**FakeLMS.openid_configuration(lms), "issuer": lms.base + "/" + "x" * 600},
    lambda lms: {**FakeLMS.openid_configuration(lms), "jwks_uri": {"url": lms.base + "/jwks"}},
], ids=["list", "overlong issuer", "jwks_uri not a string"])
def test_a_platform_answering_nonsense_gets_the_generic_message(lms, live_server, configuration, caplog):
    lms.openid_configuration = lambda: configuration(lms)
    with caplog.at_level(logging.WARNING):
        page = _register(live_server, lms, _link("127.0.0.1"))
    assert page.status_code == 400 and _message(page) == (True, False)
    assert lms.registration_requests == [] and not Registration.objects.exists()
    assert "dynamic registration failed" in caplog.text
    assert RegistrationLink.objects.usable().count() == 1


def test_configuration_naming_another_host_is_refused(lms, live_server, caplog):
    for key, value in [("issuer", "https://elsewhere.example"), ("jwks_uri", "http://169.254.169.254/keys")]:
        lms.openid_configuration = lambda k=key, v=value: {**FakeLMS.openid_configuration(lms), k: v}
        with caplog.at_level(logging.WARNING):
            page = _register(live_server, lms, _link("127.0.0.1"))
        assert page.status_code == 400 and _message(page) == (True, False)
        assert f"names another host than 127.0.0.1:{lms.server.server_port} in ['{key}']" in caplog.text
    assert lms.registration_requests == [] and not Registration.objects.exists()


def test_a_redirect_is_not_followed(lms, live_server, caplog):
    other = FakeLMS(live_server.url)
    try:
        lms.redirects["/.well-known/openid-configuration"] = other.base + "/.well-known/openid-configuration"
        with caplog.at_level(logging.WARNING):
            page = _register(live_server, lms, _link("127.0.0.1"))
        assert page.status_code == 400 and _message(page) == (True, False)
        assert other.requests == [] and "redirects are not followed" in caplog.text
    finally:
        other.close()


# --- how an admin makes a link ----------------------------------------------------------------------------

def test_registration_link_command_prints_a_one_time_link_stored_hashed(settings, capsys):
    call_command("registration_link", "--allow-host", "Moodle.Example.EDU", "--hours", "2", "--note", "Moodle 5")
    url = capsys.readouterr().out.strip()
    assert url.startswith(settings.PUBLIC_URL + "/lti/register/")
    secret = url.rstrip("/").rsplit("/", 1)[1]
    link = RegistrationLink.objects.get()
    assert (link.allowed_host, link.note) == ("moodle.example.edu", "Moodle 5")
    assert secret not in link.secret_hash and RegistrationLink.objects.for_secret(secret).get() == link
    assert timezone.timedelta(hours=1.9) < link.expires_at - timezone.now() <= timezone.timedelta(hours=2)
    with pytest.raises(CommandError, match="is not a host name"):
        call_command("registration_link", "--allow-host", "https://moodle.example.edu/")
    with pytest.raises(CommandError, match="1 to 720 hours"):
        call_command("registration_link", "--hours", "0")
    settings.LTI_ALLOWED_PLATFORM_HOSTS = ["moodle.example.edu"]
    with pytest.raises(CommandError, match="not in LTI_ALLOWED_PLATFORM_HOSTS"):
        call_command("registration_link", "--allow-host", "other.example.edu")
    assert RegistrationLink.objects.count() == 1


def test_registration_link_says_which_address_it_used_with_the_default_public_url(settings, capsys):
    """The LMS must reach the tool at the printed link's host: with PUBLIC_URL unset the command says so, and how to
    change it; --public-url gives the address for this link, and a cross-site pair is explained."""
    settings.PUBLIC_URL, settings.PUBLIC_URL_IS_DEFAULT = "http://localhost:8000", True
    call_command("registration_link", "--allow-host", "127.0.0.1")
    printed = capsys.readouterr()
    assert printed.out.strip().startswith("http://localhost:8000/lti/register/")
    assert "The link uses http://localhost:8000, the default PUBLIC_URL" in printed.err
    assert "set PUBLIC_URL" in printed.err and "--public-url" in printed.err
    assert "different sites" in printed.err and "third-party frame" in printed.err  # Moodle on 127.0.0.1

    call_command("registration_link", "--allow-host", "127.0.0.1", "--public-url", "http://127.0.0.1:8000/")
    printed = capsys.readouterr()
    assert printed.out.strip().startswith("http://127.0.0.1:8000/lti/register/")
    assert "default PUBLIC_URL" not in printed.err and "different sites" not in printed.err

    settings.PUBLIC_URL, settings.PUBLIC_URL_IS_DEFAULT = "https://tutor.example.edu", False
    call_command("registration_link", "--allow-host", "moodle.example.edu")
    printed = capsys.readouterr()
    assert printed.out.strip().startswith("https://tutor.example.edu/lti/register/")
    assert "default PUBLIC_URL" not in printed.err and "different sites" not in printed.err
    with pytest.raises(CommandError, match="is not an address"):
        call_command("registration_link", "--public-url", "tutor.example.edu")


def test_admin_creates_a_link_in_the_admin_site_and_sees_it_once(admin_client, settings):
    page = admin_client.post("/admin/lti/registrationlink/add/", {"allowed_host": "moodle.example.edu",
                                                                  "hours": "24", "note": ""}, follow=True)
    text = page.content.decode()
    assert page.status_code == 200 and 'id="registration-link"' in text
    url = text.split('id="registration-link">')[1].split("<")[0]
    assert url.startswith(settings.PUBLIC_URL + "/lti/register/")
    link = RegistrationLink.objects.get()
    assert link.allowed_host == "moodle.example.edu" and link.status == "usable"
    assert RegistrationLink.objects.for_secret(url.rstrip("/").rsplit("/", 1)[1]).get() == link
    listing = admin_client.get("/admin/lti/registrationlink/").content.decode()
    assert url not in listing  # shown only once
    bad = admin_client.post("/admin/lti/registrationlink/add/", {"allowed_host": "https://x/", "hours": "24"})
    assert bad.status_code == 200 and "is not a host name" in bad.content.decode()
    admin_client.post("/admin/lti/registrationlink/", {"action": "expire", "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.status == "expired"


def test_the_links_admin_list_shows_every_time_in_one_labelled_time_zone(admin_client, settings):
    """The link's name and its columns both in TIME_ZONE, with the zone's name (the name was UTC, the columns local
    time, neither labelled: issue 24 §6)."""
    settings.TIME_ZONE = "Europe/Berlin"
    link, _url = new_registration_link("moodle.example.edu", 24)
    RegistrationLink.objects.filter(pk=link.pk).update(
        created_at=datetime.datetime(2026, 12, 6, 21, 30, tzinfo=datetime.UTC),
        expires_at=datetime.datetime(2026, 12, 7, 21, 30, tzinfo=datetime.UTC))
    listing = admin_client.get("/admin/lti/registrationlink/").content.decode()
    assert "moodle.example.edu, valid until 2026-12-07 22:30 CET" in listing  # the name
    assert 'class="field-created">2026-12-06 22:30 CET<' in listing
    assert 'class="field-valid_until">2026-12-07 22:30 CET<' in listing
    assert "21:30" not in listing
    detail = admin_client.get(f"/admin/lti/registrationlink/{link.pk}/change/").content.decode()
    assert "2026-12-06 22:30 CET" in detail and "2026-12-07 22:30 CET" in detail and "21:30" not in detail


# --- what the admin sees in Moodle's registration dialog ----------------------------------------------------

MOODLE_DIALOG = """<!doctype html><html><body>
<ul id="closed"></ul>
<iframe id="registration" src="{src}" width="800" height="500"></iframe>
<script>
window.addEventListener("message", function (e) {{
  if (e.data && e.data.subject === "org.imsglobal.lti.close") {{
    var item = document.createElement("li"); item.textContent = "closed"; document.getElementById("closed").appendChild(item);
  }}
}});
</script></body></html>"""


@pytest.mark.browser
def test_the_registration_dialog_stays_open_until_the_admin_clicks_close(lms, live_server):
    """Moodle frames the registration page and closes its dialog on org.imsglobal.lti.close: that message
    comes when the admin clicks Close, not when the page loads."""
    from urllib.parse import urlencode

    from tests.support import chromium

    query = urlencode({"openid_configuration": lms.base + "/.well-known/openid-configuration",
                       "registration_token": "reg-token-1"})
    lms.pages["/admin/tool/lti"] = MOODLE_DIALOG.format(src=f"{live_server.url}{_link('127.0.0.1')}?{query}")
    with chromium(locale="en-US") as (context, _watch):
        page = context.new_page()
        failed = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
        page.goto(lms.base + "/admin/tool/lti")
        frame = page.frame_locator("#registration")
        frame.locator("h1").wait_for()
        page.wait_for_load_state("load")  # the frame's script has run

        assert frame.locator("h1").inner_text() == "The course tutor is registered"
        assert page.locator("#closed li").count() == 0  # the admin can read the page
        frame.locator("#close").click()
        page.locator("#closed li").wait_for()
        assert page.locator("#closed li").count() == 1
        assert failed == []  # registered.js was loaded (no inline script under the CSP)
