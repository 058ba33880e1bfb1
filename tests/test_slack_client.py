"""The Web API client keeps its connections to Slack open and still answers, fails and retries
exactly as slack_sdk's own client does."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from bot.settings import Settings
from bot.slack.client import KeepAliveWebClient, PooledRespond
from bot.wiring.app import make_client
from tests.fakeslack import FakeSlack


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def test_calls_share_one_connection(slack: FakeSlack) -> None:
    client = KeepAliveWebClient(token="xoxb-test", base_url=slack.url)
    for n in range(5):
        assert client.chat_postMessage(channel="C1", text=f"hello {n}")["ok"]
    assert [c.args["text"] for c in slack.calls_to("chat.postMessage")] == [
        f"hello {n}" for n in range(5)
    ]
    assert slack.connections == 1


def test_concurrent_calls_each_get_a_connection_of_their_own(slack: FakeSlack) -> None:
    client = KeepAliveWebClient(token="xoxb-test", base_url=slack.url)
    slack.slow["chat.postMessage"] = 0.2  # all four are in flight at once
    threads = [
        threading.Thread(target=client.chat_postMessage, kwargs={"channel": "C1", "text": str(n)})
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c.args["text"] for c in slack.calls_to("chat.postMessage")) == list("0123")
    assert slack.connections == 4
    client.chat_postMessage(channel="C1", text="after")
    assert slack.connections == 4  # an idle one was reused


def test_errors_and_retries_are_slack_sdks(slack: FakeSlack) -> None:
    client = KeepAliveWebClient(token="xoxb-test", base_url=slack.url)
    slack.fail("chat.postMessage", 500)
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C1", text="x")
    assert failed.value.response.status_code == 500
    assert failed.value.response["error"] == "internal_error"

    quick = FixedValueRetryIntervalCalculator(0.01)
    client.retry_handlers = [
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2, interval_calculator=quick),
    ]
    slack.fail("chat.postMessage", 429, retry_after=0)
    slack.fail("chat.postMessage", 503)
    assert client.chat_postMessage(channel="C1", text="third time")["ok"] is True
    texts = [c.args["text"] for c in slack.calls_to("chat.postMessage")]
    assert texts == ["x"] + ["third time"] * 3  # 429, 503, then ok
    assert slack.connections == 1  # error answers leave the connection usable


def test_make_client_is_the_keep_alive_client(slack: FakeSlack) -> None:
    client = make_client(Settings.from_env({"SLACK_API_URL": slack.url}))
    assert isinstance(client, KeepAliveWebClient)
    client.auth_test()
    client.auth_test()
    assert slack.connections == 1


class _ClosingServer:
    """Answers one request per connection, then hangs up without saying so in the answer,
    as a server or load balancer does when it drops an idle kept-alive connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                answer = b'{"ok": true}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )


def test_a_connection_the_server_dropped_is_not_reused() -> None:
    server = _ClosingServer()
    client = KeepAliveWebClient(token="xoxb-test", base_url=server.url)
    try:
        for _ in range(3):
            assert client.auth_test()["ok"]
        assert server.connections == 3
    finally:
        server.sock.close()


def test_respond_posts_over_one_kept_alive_connection(slack: FakeSlack) -> None:
    client = KeepAliveWebClient(token="xoxb-test", base_url=slack.url)
    respond = PooledRespond(
        response_url=slack.response_url, pool=client.pool, logger=logging.getLogger("t")
    )
    assert respond("plain", response_type="ephemeral").status_code == 200
    assert respond({"text": "as a dict", "replace_original": False}).status_code == 200
    assert slack.responses == [
        {"text": "plain", "response_type": "ephemeral"},
        {"text": "as a dict", "replace_original": False},
    ]
    assert slack.connections == 1
    slack.fail("broken", 500)
    broken = PooledRespond(
        response_url=slack.url + "broken", pool=client.pool, logger=logging.getLogger("t")
    )
    assert broken("x").status_code == 500  # an error answer comes back, as with Bolt's own
    assert respond("after").status_code == 200
