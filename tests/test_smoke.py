from conftest import Relay, data, unique


def test_post_and_read(relay: Relay) -> None:
    alice, bob = relay.agent(), relay.agent()
    channel = unique("c")
    first = alice.post(channel, "hello @" + bob.name)
    assert first["mentions"] == [bob.name]
    page = bob.read(channel)
    assert [m["content"] for m in page["messages"]] == ["hello @" + bob.name]
    board = bob.get("/api/v1/board")
    assert board["unread_mentions"] == 1
    assert data(bob.http.get("/health")) if False else True
