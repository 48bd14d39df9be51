#!/usr/bin/env python3
"""A TLS man in the middle for the attested-TLS tests: what a malicious host can do to a client of vhsmd.

It listens on 127.0.0.1, terminates TLS with its OWN self-signed certificate (a new P-256 key made at start) and
forwards every byte of every connection, sys/attestation included, over a new TLS connection to the real vhsmd
(upstream not verified), and the answers back. A client that trusts the certificate's evidence or the answer of
sys/attestation without checking the binding to the handshake's key is fooled; vhsm's clients must refuse it.

  --cert/--key   serve this certificate and key instead (an attacker who has vhsmd's key, for the replay test)
  --replay FILE  answer GET /v1/sys/attestation with FILE (a recorded answer, e.g. for another nonce) instead of
                 forwarding it; other requests are still forwarded

Usage: scripts/mitm-proxy.py UPSTREAM_HOST:PORT [--port N] [--cert PEM --key PEM] [--replay FILE]
Prints "mitm-proxy: listening on 127.0.0.1:PORT, TLS SPKI SHA-256 HEX" when ready; SIGTERM stops it (exit 0).
"""

import argparse
import datetime
import hashlib
import ipaddress
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory):
    """A new key and self-signed certificate for 127.0.0.1, written as PEM files; their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mitm-proxy")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(cert_path, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def pump(source, destination):
    """Copies bytes until source ends, then ends destination's sending side."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            destination.sendall(data)
    except OSError:
        pass
    finally:
        try:
            destination.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def replay_answer(client, recorded):
    """Reads one request head; when it asks for sys/attestation, answers the recorded body. Returns the bytes
    already read when the request is to be forwarded, None when it was answered."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = client.recv(65536)
        if not data:
            break
        head += data
    if not head.split(b" ", 2)[1:2] or not head.split(b" ", 2)[1].startswith(b"/v1/sys/attestation"):
        return head
    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n%s" % (len(recorded), recorded))
    return None


def serve(connection, upstream, server_context, recorded):
    upstream_context = ssl.create_default_context()
    upstream_context.check_hostname, upstream_context.verify_mode = False, ssl.CERT_NONE
    try:
        with server_context.wrap_socket(connection, server_side=True) as client:
            first = b""
            if recorded is not None:
                first = replay_answer(client, recorded)
                if first is None:
                    return
            with socket.create_connection(upstream, timeout=30) as raw, \
                    upstream_context.wrap_socket(raw, server_hostname=upstream[0]) as server:
                server.sendall(first)
                back = threading.Thread(target=pump, args=(server, client), daemon=True)
                back.start()
                pump(client, server)
                back.join()
    except (OSError, ssl.SSLError):
        pass  # a client or vhsmd that hangs up ends this connection only
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", help="the real vhsmd, HOST:PORT")
    parser.add_argument("--port", type=int, default=0, help="listening port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--cert", help="serve this certificate (PEM) instead of a new one; needs --key")
    parser.add_argument("--key", help="the private key (PEM) of --cert")
    parser.add_argument("--replay", help="answer sys/attestation with this recorded answer (raw HTTP body)")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit() or bool(args.cert) != bool(args.key):
        parser.error("UPSTREAM is HOST:PORT, and --cert and --key go together")
    recorded = open(args.replay, "rb").read() if args.replay else None

    with tempfile.TemporaryDirectory() as directory:
        cert_path, key_path = (args.cert, args.key) if args.cert else self_signed(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        with open(cert_path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)

    listener = socket.create_server(("127.0.0.1", args.port))
    stopping = threading.Event()

    def stop(signum, frame):
        stopping.set()
        listener.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"mitm-proxy: listening on 127.0.0.1:{listener.getsockname()[1]}, TLS SPKI SHA-256 "
          f"{hashlib.sha256(spki).hexdigest()}", flush=True)
    while not stopping.is_set():
        try:
            connection, _ = listener.accept()
        except OSError:
            break
        threading.Thread(target=serve, args=(connection, (host, int(port)), context, recorded), daemon=True).start()
    print("mitm-proxy: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
