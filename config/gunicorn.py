"""Gunicorn settings for the web process: `gunicorn -c config/gunicorn.py wsgi:app`.

Every value can be overridden from the environment: `PORT`, `WEB_CONCURRENCY`,
`GUNICORN_BIND`, `GUNICORN_WORKER_CONNECTIONS`, `GUNICORN_CONTROL_SOCKET`.
"""

import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Agent consoles hold a server-sent event stream open. gevent workers hold
# thousands of them, where a sync worker would be blocked by the first one.
worker_class = "gevent"
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "4000"))

# A stream sends a keep-alive every STREAM_HEARTBEAT_S (15 s by default).
timeout = 60
graceful_timeout = 20
keepalive = 75

# Gunicorn 25.1+ opens a control socket at one fixed path per user by default, so a
# second installation on the machine (or a test server) would take over the first
# one's socket. It is opened only where GUNICORN_CONTROL_SOCKET names a path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")

accesslog = "-"
# The query string of a stream URL carries a token: log the path only. `pid=` names
# the worker process that served the request.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms pid=%(p)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Give the worker processes one directory for their Prometheus metrics."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="callcard-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this master created; a configured one is kept."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(directory).startswith("callcard-metrics-"):
        shutil.rmtree(directory, ignore_errors=True)
