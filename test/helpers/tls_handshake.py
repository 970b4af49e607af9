"""One mutual-TLS exchange between two peers whose ssl contexts come from distributed's own
Security object, exactly as a scheduler listening and a worker or client connecting build them.

argv[1]: JSON {"server": PEER, "client": PEER, "strict": bool}
PEER: {"role": "scheduler"|"worker"|"client", "ca": path, "cert": path|null, "key": path|null}
Prints JSON {"ok": bool, "server_error": str|null, "client_error": str|null}.
"""
import json
import socket
import ssl
import sys
import threading

from distributed.security import Security


def context(peer, listen):
    role = peer["role"]
    if peer.get("cert") is None:
        # distributed refuses to build a TLS context without a certificate; a bare client
        # that trusts the CA but has no certificate of its own is made by hand.
        ctx = ssl.create_default_context(cafile=peer["ca"])
        ctx.check_hostname = False
        return ctx
    security = Security(
        tls_ca_file=peer["ca"],
        require_encryption=True,
        **{f"tls_{role}_cert": peer["cert"], f"tls_{role}_key": peer["key"]},
    )
    args = security.get_listen_args(role) if listen else security.get_connection_args(role)
    return args["ssl_context"]


def main():
    spec = json.loads(sys.argv[1])
    server_ctx = context(spec["server"], listen=True)
    client_ctx = context(spec["client"], listen=False)
    for ctx in (server_ctx, client_ctx):
        assert ctx.verify_mode == ssl.CERT_REQUIRED or spec["client"].get("cert") is None
        if spec.get("strict"):
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    result = {"server_error": None, "client_error": None}

    def serve():
        try:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(10)
                tls.sendall(tls.recv(4))
        except Exception as error:  # noqa: BLE001 - the reason is the result
            result["server_error"] = f"{type(error).__name__}: {error}"

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw) as tls:
                tls.sendall(b"ping")
                if tls.recv(4) != b"ping":
                    raise RuntimeError("echo mismatch")
    except Exception as error:  # noqa: BLE001
        result["client_error"] = f"{type(error).__name__}: {error}"
    thread.join()
    listener.close()
    result["ok"] = result["server_error"] is None and result["client_error"] is None
    print(json.dumps(result))


main()
