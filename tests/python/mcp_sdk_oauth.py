"""The official MCP Python SDK's OAuth client against tokportal-mcp --oauth.

Run by tests/mcp_sdk_clients.rs:

    python -B tests/python/mcp_sdk_oauth.py MCP_URL API_KEY

`mcp.client.auth.OAuthClientProvider` does everything a connector does on
its own: the 401, discovery, dynamic registration, PKCE, the code exchange
and the refresh. Only the person is played here: the redirect handler
answers the consent page over HTTP (GET the authorize URL, read the CSRF
token and the cookie, POST the form with the key and `access=full`, read
`code` and `state` from the 303), and the callback handler hands them back.

Then `initialize`, `tools/list` and `tools/call getCurrentUser`; the access
token is then made to look expired, so a second session goes through the
SDK's refresh. One JSON line on stdout says what happened, for the Rust test
to check. Nothing here talks to anything but the URL it is given.
"""

import asyncio
import importlib.metadata
import json
import re
import sys
import time
from urllib.parse import parse_qs, urlparse

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

try:  # mcp >= 1.24: the client is given an httpx client
    from mcp.client.streamable_http import streamable_http_client
except ImportError:  # older: the auth is given to the transport
    streamable_http_client = None
    from mcp.client.streamable_http import streamablehttp_client

REDIRECT = "http://127.0.0.1:33418/callback"


class Storage(TokenStorage):
    """In memory; keeps every token response the SDK stores."""

    def __init__(self):
        self.tokens: list[OAuthToken] = []
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens):
        self.tokens.append(tokens)

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


class Person:
    """The consent page, answered over HTTP as a person answers it."""

    def __init__(self, key: str):
        self.key = key
        self.back: dict[str, str] = {}
        self.authorize_url = ""

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorize_url = authorization_url
        async with httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=30) as http:
            page = await http.get(authorization_url)
            if page.status_code != 200:
                raise RuntimeError(f"the consent page: {page.status_code} {page.text}")
            cookie = page.headers["set-cookie"].split(";", 1)[0]
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            if csrf is None:
                raise RuntimeError(f"no CSRF token on the consent page: {page.text}")
            # The form's action, as the page names it.
            action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
            target = httpx.URL(authorization_url).join(action.group(1) if action else "/authorize")
            answered = await http.post(
                target,
                headers={"cookie": cookie},
                data={
                    "csrf": csrf.group(1),
                    "api_key": self.key,
                    "access": "full",
                    "decision": "allow",
                },
            )
            if answered.status_code != 303:
                raise RuntimeError(f"the consent: {answered.status_code} {answered.text}")
            location = answered.headers["location"]
            if not location.startswith(REDIRECT):
                raise RuntimeError(f"sent back elsewhere: {location}")
            query = parse_qs(urlparse(location).query)
            self.back = {k: v[0] for k, v in query.items()}

    async def callback_handler(self) -> tuple[str, str | None]:
        return self.back["code"], self.back.get("state")


async def session(url: str, auth: OAuthClientProvider, calls):
    """One MCP session with the SDK's OAuth, running `calls` on it."""
    if streamable_http_client is not None:
        async with httpx.AsyncClient(auth=auth, trust_env=False, follow_redirects=False, timeout=60) as http:
            async with streamable_http_client(url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as s:
                    return await calls(s)
    async with streamablehttp_client(url, auth=auth) as (read, write, _):
        async with ClientSession(read, write) as s:
            return await calls(s)


async def main(url: str, key: str) -> dict:
    storage = Storage()
    person = Person(key)
    auth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK (tokportal test)",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler,
    )

    async def first(s: ClientSession):
        init = await s.initialize()
        tools = await s.list_tools()
        user = await s.call_tool("getCurrentUser", {})
        return init, tools, user

    init, tools, user = await session(url, auth, first)
    after_consent = len(storage.tokens)

    # The access token, as if it had expired: the next session refreshes.
    auth.context.token_expiry_time = time.time() - 1

    async def second(s: ClientSession):
        await s.initialize()
        return await s.call_tool("getCurrentUser", {})

    again = await session(url, auth, second)

    def text(result) -> str:
        return "".join(getattr(c, "text", "") for c in result.content)

    def email(result):
        structured = getattr(result, "structuredContent", None) or {}
        found = re.search(r'"email"\s*:\s*"([^"]+)"', json.dumps(structured) + text(result))
        return found.group(1) if found else None

    asked = urlparse(person.authorize_url)
    query = parse_qs(asked.query)
    return {
        "sdk": importlib.metadata.version("mcp"),
        "server": init.serverInfo.name,
        "protocol": init.protocolVersion,
        "tools": len(tools.tools),
        "is_error": bool(user.isError),
        "email": email(user),
        "client_id": storage.client.client_id if storage.client else None,
        "authorize": {
            "origin": f"{asked.scheme}://{asked.netloc}",
            "path": asked.path,
            "client_id": (query.get("client_id") or [None])[0],
            "resource": (query.get("resource") or [None])[0],
            "scope": (query.get("scope") or [None])[0],
        },
        # What came back to the redirect URI (no code printed): its names.
        "callback": sorted(person.back),
        "iss": person.back.get("iss"),
        "token_responses_after_consent": after_consent,
        "token_responses": len(storage.tokens),
        "access_changed": len(storage.tokens) >= 2 and storage.tokens[0].access_token != storage.tokens[-1].access_token,
        "refresh_changed": len(storage.tokens) >= 2
        and storage.tokens[0].refresh_token != storage.tokens[-1].refresh_token,
        "scope": storage.tokens[0].scope if storage.tokens else None,
        "again_is_error": bool(again.isError),
        "again_email": email(again),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))), flush=True)
