# The operator and agent image (`bpfglobals operator` / `bpfglobals agent`).
# Multi-stage: wheels are built in the first stage, the runtime has no compiler or pip cache.
# The base is pinned to an exact release; pin it further by digest in your registry mirror.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[k8s]"

FROM python:3.11.11-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "bpfglobals[k8s]" \
 && rm -rf /wheels
# Non-root by default (the operator). The agent's DaemonSet runs it as uid 0 with only
# CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, to write the host's bpffs.
USER 65532:65532
ENTRYPOINT ["bpfglobals"]
CMD ["--help"]
