"""A huge request body is refused at once, without the broker's process reading it into memory."""

from __future__ import annotations

import socket
import threading

import pytest

from airflow_provider_jira_auth.auth import broker_protocol

HUGE = 512 * 1024 * 1024
CHUNK = 256 * 1024
#: What the client sends of the HUGE body it announces before it waits for the answer: the cap many
#: times over, and more than the server may grow by, so that a server keeping what it reads shows.
SENT_AT_MOST = 64 * 1024 * 1024
#: How long the client waits for the answer, holding back the rest of the body: none would ever
#: come from a server waiting for the whole body.
ANSWER_TIMEOUT = 30.0
MAX_GROWTH_KB = 20 * 1024


def read_head(sock: socket.socket) -> bytes:
    """What the server answers, up to the end of its header (or until it closes)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    return answer


def wait_for_close(sock: socket.socket) -> None:
    """Read (and drop) whatever else the server sends, until it closes the connection."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass  # closed with our unread body still on its side: closed all the same


def send_huge_body(url_port: int, *, chunked: bool) -> tuple[bytes, int]:
    """Announce a 512 MiB body, send at most its first SENT_AT_MOST bytes and wait for the answer
    while holding back the rest; returns (answer head, bytes sent), once the server has closed.

    The body is written by a thread while this one waits for the answer, as a client that does
    not wait for ``100 Continue`` would. An answer comes only from a server that refuses the body
    without waiting for all of it: otherwise the read times out, and the head is empty.
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
    head = (
        f"POST {broker_protocol.PATH} HTTP/1.1\r\nHost: 127.0.0.1:{url_port}\r\n"
        f"Content-Type: application/json\r\n{broker_protocol.SIGNATURE_HEADER}: {'0' * 64}\r\n{framing}\r\n\r\n"
    ).encode()
    zeros = b"0" * CHUNK
    sent = 0

    def body():
        nonlocal sent
        try:
            while sent < SENT_AT_MOST:  # and never the rest, nor the chunked body's end
                sock.sendall(b"%x\r\n%s\r\n" % (CHUNK, zeros) if chunked else zeros)
                sent += CHUNK
        except OSError:
            pass  # the server closed the connection: what it should do

    sock = socket.create_connection(("127.0.0.1", url_port))
    sock.settimeout(ANSWER_TIMEOUT)
    sock.sendall(head)
    writer = threading.Thread(target=body, daemon=True)
    writer.start()
    try:
        try:
            answer = read_head(sock)
        except TimeoutError:
            answer = b""
        else:
            wait_for_close(sock)
    finally:
        sock.close()
        writer.join(30)
    return answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_512_mib_body_gets_413_before_it_is_all_sent_and_the_server_does_not_grow(start_broker, chunked):
    server = start_broker()
    # Warm up the path (imports, thread pool) so that the figures below measure the big request only.
    assert server.post(b"{}", "0" * 64).status_code in (400, 403)
    rss_before = server.status_kb("VmRSS")
    peak_before = server.status_kb("VmHWM")

    answer, sent = send_huge_body(server.port, chunked=chunked)

    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), (
        status_line, f"{sent >> 20} of {HUGE >> 20} MiB sent", server.log()[-2000:]
    )
    grown = server.status_kb("VmRSS") - rss_before
    peak_grown = server.status_kb("VmHWM") - peak_before
    assert grown < MAX_GROWTH_KB and peak_grown < MAX_GROWTH_KB, (
        f"the server grew by {grown} kB (peak by {peak_grown} kB) on a refused request"
    )
    # And it still serves.
    assert server.post(b"{}", "0" * 64).status_code in (400, 403)


#: How long the client waits for the answer to a request whose body it never sends.
NO_BODY_TIMEOUT = 5.0


def test_a_declared_length_over_the_cap_gets_413_without_waiting_for_a_body_that_never_comes(start_broker):
    from airflow_provider_jira_auth.plugins.token_broker import MAX_BODY

    server = start_broker()
    assert server.post(b"{}", "0" * 64).status_code in (400, 403)  # warmed up, as above
    head = (
        f"POST {broker_protocol.PATH} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\n{broker_protocol.SIGNATURE_HEADER}: {'0' * 64}\r\n"
        f"Content-Length: {MAX_BODY + 1}\r\n\r\n"
    ).encode()

    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(NO_BODY_TIMEOUT)
        sock.sendall(head)  # and not a byte of the body
        try:
            answer = read_head(sock)
        except TimeoutError:
            answer = b""

    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), (status_line, server.log()[-2000:])
    # And it still serves.
    assert server.post(b"{}", "0" * 64).status_code in (400, 403)
