#!/usr/bin/env python3
"""A TLS man in the middle for the attested-TLS tests: what a malicious host can do to a client of vhsmd.

It listens on 127.0.0.1, terminates TLS with its OWN self-signed certificate (a new P-256 key made at start) and
forwards every byte of every connection, sys/attestation included, over a new TLS connection to the real vhsmd
(upstream not verified), and the answers back. A client that trusts the certificate's evidence or the answer of
sys/attestation without checking the binding to the handshake's key is fooled; vhsm's clients must refuse it.

  --cert/--key   serve this certificate and key instead (an attacker who has vhsmd's key, for the replay test)
  --replay FILE  answer GET /v1/sys/attestation with FILE (a recorded answer, e.g. for another nonce) instead of
                 forwarding it; other requests are still forwarded
  --drop-certificates
                 forward GET /v1/sys/attestation, and answer vhsmd's fresh answer with its certificates removed
                 (a host that withholds the VCEK and chain: the client must be given them, --cert and --chain)
  --plain-upstream
                 reach the upstream over plain TCP: a TLS-terminating proxy in front of vhsmd --dev (HTTP), as for
                 auth/sev-snp's audience_spki_sha256

Usage: scripts/mitm-proxy.py UPSTREAM_HOST:PORT [--port N] [--cert PEM --key PEM] [--replay FILE | --drop-certificates]
                             [--plain-upstream]
Prints "mitm-proxy: listening on 127.0.0.1:PORT, TLS SPKI SHA-256 HEX" when ready; SIGTERM stops it (exit 0).
"""

import argparse
import datetime
import hashlib
import ipaddress
import json
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


def read_head(connection):
    """The bytes of one HTTP head (and whatever came with it)."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = connection.recv(65536)
        if not data:
            break
        head += data
    return head


def asks_for_attestation(head):
    return head.split(b" ", 2)[1:2] != [] and head.split(b" ", 2)[1].startswith(b"/v1/sys/attestation")


def without_certificates(head, server):
    """vhsmd's answer to the request `head` (sent over `server`), with data.certificates emptied."""
    server.sendall(head)
    answer = read_head(server)
    answer_head, _, body = answer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in answer_head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), None)
    while length is None or len(body) < length:
        data = server.recv(65536)
        if not data:
            break
        body += data
    answer = json.loads(body)
    answer["data"]["certificates"] = []
    return json.dumps(answer).encode()


def serve(connection, upstream, server_context, recorded, drop_certificates, plain_upstream=False):
    upstream_context = ssl.create_default_context()
    upstream_context.check_hostname, upstream_context.verify_mode = False, ssl.CERT_NONE
    try:
        with server_context.wrap_socket(connection, server_side=True) as client, \
                socket.create_connection(upstream, timeout=30) as raw, \
                (raw if plain_upstream else upstream_context.wrap_socket(raw, server_hostname=upstream[0])) as server:
            first = b""
            if recorded is not None or drop_certificates:
                first = read_head(client)
                if asks_for_attestation(first):
                    body = recorded if recorded is not None else without_certificates(first, server)
                    client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                   b"Connection: close\r\n\r\n%s" % (len(body), body))
                    return
            server.sendall(first)
            back = threading.Thread(target=pump, args=(server, client), daemon=True)
            back.start()
            pump(client, server)
            back.join()
    except (OSError, ssl.SSLError, ValueError, KeyError, TypeError):
        pass  # a client or vhsmd that hangs up (or answers something else) ends this connection only
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream", help="the real vhsmd, HOST:PORT")
    parser.add_argument("--port", type=int, default=0, help="listening port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--cert", help="serve this certificate (PEM) instead of a new one; needs --key")
    parser.add_argument("--key", help="the private key (PEM) of --cert")
    parser.add_argument("--replay", help="answer sys/attestation with this recorded answer (raw HTTP body)")
    parser.add_argument("--drop-certificates", action="store_true",
                        help="answer sys/attestation with vhsmd's fresh answer, its certificates removed")
    parser.add_argument("--plain-upstream", action="store_true",
                        help="reach the upstream over plain TCP (vhsmd --dev), terminating TLS here")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit() or bool(args.cert) != bool(args.key):
        parser.error("UPSTREAM is HOST:PORT, and --cert and --key go together")
    if args.replay and args.drop_certificates:
        parser.error("--replay and --drop-certificates are two different answers: give one")
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
        threading.Thread(target=serve, args=(connection, (host, int(port)), context, recorded, args.drop_certificates,
                                             args.plain_upstream), daemon=True).start()
    print("mitm-proxy: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
