# The operator and agent image (`bpfglobals operator` / `bpfglobals agent`).
# Multi-stage: the project and its dependencies are installed into a virtualenv in the first
# stage; the runtime stage copies only that (no compiler, no pip cache, no build tools).
# BASE: any Debian-based image with python3 (>= 3.11) and its venv module. The default is the
# public Python image, pinned to an exact release (pin it further by digest in your mirror);
# `make image` builds here from a Debian base made by debootstrap (tools/image/base.sh).
ARG BASE=python:3.11.11-slim-bookworm

FROM ${BASE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
# A virtualenv: Debian's own python refuses system-wide pip installs (PEP 668).
RUN python3 -m venv /opt/bpfglobals \
 && /opt/bpfglobals/bin/pip install --no-cache-dir --disable-pip-version-check ".[k8s]" \
 && /opt/bpfglobals/bin/pip uninstall -y --disable-pip-version-check pip setuptools \
 # kubernetes ships a second, asyncio copy of its client (~68 MB) that nothing here imports
 && rm -rf /opt/bpfglobals/lib/python3*/site-packages/kubernetes/aio \
 && /opt/bpfglobals/bin/python -m compileall -q /opt/bpfglobals >/dev/null

FROM ${BASE}
# A named user for uid 65532: kopf asks getpass.getuser() for its identity, which fails
# without a passwd entry.
RUN echo 'bpfglobals:x:65532:65532:bpfglobals:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'bpfglobals:x:65532:' >>/etc/group
COPY --from=build /opt/bpfglobals /opt/bpfglobals
# Byte code is compiled above: the root filesystem is read-only in the chart.
ENV PATH=/opt/bpfglobals/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Non-root by default (the operator). The agent's DaemonSet runs it as uid 0 with only
# CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, to write the host's bpffs.
USER 65532:65532
ENTRYPOINT ["bpfglobals"]
CMD ["--help"]
