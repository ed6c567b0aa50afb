"""HTTP failures become one actionable sentence, with the registry's words and no credentials."""

from __future__ import annotations

import json

import requests

from pipe.http import USER_AGENT, new_session, registry_error, unreachable_error


def response(status: int, body: object, url: str = "https://u:p@registry.example.com/v2/acme/app/blobs/uploads/"):
    made = requests.Response()
    made.status_code = status
    made._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    made.request = requests.Request("POST", url).prepare()
    made.url = url
    return made


def test_oci_errors_are_quoted_with_a_fix() -> None:
    error = registry_error(
        response(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}), "Uploading a layer"
    )
    assert str(error) == (
        "Uploading a layer failed: https://registry.example.com/v2/acme/app/blobs/uploads/ answered 401 "
        "(UNAUTHORIZED: authentication required): the registry did not accept the credentials: check "
        "BITBUCKET_PACKAGES_USERNAME and BITBUCKET_PACKAGES_TOKEN (an Atlassian API token needs the "
        "write:package:bitbucket scope)."
    )
    assert error.status == 401 and error.code == "UNAUTHORIZED"


def test_publisher_hints_win_and_plain_text_bodies_are_quoted() -> None:
    error = registry_error(response(403, b"forbidden\n  here"), "Publishing", {403: "create the package"})
    assert str(error).endswith("answered 403 (forbidden here): create the package.")


def test_server_errors_say_to_retry() -> None:
    assert "re-run the step" in str(registry_error(response(503, {}), "Reading tags"))


def test_unreachable_hides_credentials() -> None:
    error = unreachable_error("https://u:secret@r.example.com/", requests.ConnectionError("refused"), "Reading")
    assert "secret" not in str(error)
    assert str(error).startswith("Reading failed: could not connect to https://r.example.com/")


def test_session_defaults() -> None:
    session = new_session(auth=("u", "t"))
    assert session.headers["User-Agent"] == USER_AGENT
    assert session.default_timeout[0] > 0 and session.trust_env is False
    retry = session.get_adapter("https://x").max_retries
    assert "GET" in retry.allowed_methods and "PUT" not in retry.allowed_methods
    assert 429 in retry.status_forcelist


def test_html_error_pages_are_reduced_to_their_heading() -> None:
    page = (
        b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>"
        b"\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
    )
    error = registry_error(response(403, page), "Uploading", {403: "use a token that may write"})
    assert str(error).endswith("answered 403 (403 Forbidden): use a token that may write.")


def test_markup_without_heading_is_stripped() -> None:
    error = registry_error(response(502, b"<p>Bad &amp; <b>gateway</b></p>"), "Reading")
    assert "(Bad & gateway)" in str(error)


def test_token_endpoint_details_are_quoted() -> None:
    error = registry_error(response(401, {"details": "incorrect username or password"}), "Signing in")
    assert "(incorrect username or password)" in str(error)
