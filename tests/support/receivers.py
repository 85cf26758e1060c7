"""Real HTTP and HTTPS receivers on 127.0.0.1, each a server in a thread that records
every request and answers from a script, plus the certificates the tests need."""

import datetime
import ipaddress
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int  # the status the receiver answered (or began to, for a slow answer)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """Answers from `script` in order, then `default`; `requests` holds what arrived."""

    def __init__(self, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.requests: list[Received] = []
        self.script: deque[Answer] = deque()
        self.by_body: list[tuple[bytes, deque[Answer]]] = []
        self.default = Answer()
        self.in_flight = 0
        self.most_in_flight = 0  # the most requests it held unanswered at one time
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/hook"

    def answer(self, *answers: Answer | int) -> None:
        """Queues the next answers (a bare int is a status with the default body)."""
        self.script.extend(Answer(a) if isinstance(a, int) else a for a in answers)

    def answer_when(self, needle: bytes, *answers: Answer | int) -> None:
        """Queues answers for the requests whose body contains `needle`, ahead of `script`."""
        queued = deque(Answer(a) if isinstance(a, int) else a for a in answers)
        self.by_body.append((needle, queued))

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"receiver got {len(self.requests)} requests, expected {count}"
                )
            time.sleep(0.02)
        return list(self.requests)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_answer(self, body: bytes) -> Answer:
        with self._lock:
            for needle, answers in self.by_body:
                if answers and needle in body:
                    return answers.popleft()
            return self.script.popleft() if self.script else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                answer = receiver._next_answer(body)
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                receiver.requests.append(
                    Received(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                        answered=answer.status,
                    )
                )
                if answer.delay:
                    time.sleep(answer.delay)
                with receiver._lock:  # answered from here on: the sender may go on
                    receiver.in_flight -= 1
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up (a timeout test): nothing to answer

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


class TestCA:
    """A CA of the tests' own: its server certificate for localhost/127.0.0.1 is trusted
    through STOREHOOKS_CA_BUNDLE; a self-signed certificate is not."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA()
        self.bundle = directory / "test-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.bundle))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        return context


def self_signed_context(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "self-signed.pem", directory / "self-signed.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
