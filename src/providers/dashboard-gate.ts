/**
 * The dashboard gate: a Python module every member of a TLS cluster loads with `--preload`, so
 * its HTTP server (the dashboard, /health, /metrics, Bokeh's WebSockets) answers only clients
 * that present a certificate of the cluster's CA. Dask serves that server over HTTPS from
 * `distributed.scheduler.dashboard.tls.*`, but its context asks no client certificate.
 *
 * It fails closed: the module replaces the HTTP server class when Dask imports it, before any
 * member creates its server (scheduler: in its constructor; worker: at start), and a server made
 * without TLS raises, so the member does not start. Dask logs and ignores a failing `dask_setup`,
 * so the check there ends the process itself if a server slipped past the gate (a Dask whose
 * order differs).
 */

/** The module's file name: `--preload` takes a path ending in `.py`. */
export const GATE_FILE = 'dcp_dashboard_gate.py';

/** Exit status of a member that found its dashboard ungated; EX_CONFIG. */
export const GATE_EXIT_STATUS = 78;

export const GATE_SOURCE = `"""dcp's dashboard gate: HTTPS with a client certificate of the cluster's CA, or no start."""
import os
import ssl
import sys

import dask
import distributed.node as _node

_VERSIONS = {1.2: ssl.TLSVersion.TLSv1_2, 1.3: ssl.TLSVersion.TLSv1_3}


def _version(key):
    value = dask.config.get(key, None)
    if value is None:
        return None
    if float(value) not in _VERSIONS:
        raise ValueError(f"dcp: {key} is {value!r}: Dask takes 1.2 or 1.3")
    return _VERSIONS[float(value)]


def _gate(context):
    if not isinstance(context, ssl.SSLContext):
        raise RuntimeError(
            "dcp: this member's HTTP server has no TLS certificate"
            " (distributed.scheduler.dashboard.tls.cert): it will not serve the dashboard in the clear"
        )
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = _version("distributed.comm.tls.min-version") or ssl.TLSVersion.TLSv1_2
    maximum = _version("distributed.comm.tls.max-version")
    if maximum is not None:
        context.maximum_version = maximum
    ciphers = dask.config.get("distributed.comm.tls.ciphers", None)
    if ciphers:
        context.set_ciphers(ciphers)
    return context


class GatedHTTPServer(_node.HTTPServer):
    def initialize(self, *args, **kwargs):
        kwargs["ssl_options"] = _gate(kwargs.get("ssl_options"))
        super().initialize(*args, **kwargs)


_node.HTTPServer = GatedHTTPServer


def dask_setup(server):
    http_server = getattr(server, "http_server", None)
    context = getattr(http_server, "ssl_options", None)
    if http_server is not None and not (
        isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    ):
        print("dcp: the dashboard gate is not in place; stopping", file=sys.stderr, flush=True)
        os._exit(${GATE_EXIT_STATUS})
`;
