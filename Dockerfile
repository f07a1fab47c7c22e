# pop2imap in a container: a static binary on a distroless base, running as
# a non-root user, with its journals in the /state volume.
#
#   docker build -t pop2imap .
#   docker run --rm pop2imap version
#
# deploy/compose.yaml runs the bridge with it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same build as CI's: deploy/build-static.sh (CGO_ENABLED=0, -trimpath).
RUN deploy/build-static.sh /out/pop2imap && /out/pop2imap version
# The state directory, owned by the image's non-root user (65532), so that a
# new named volume mounted there starts out writable by it.
RUN mkdir -p /out/state && chown 65532:65532 /out/state && chmod 0700 /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pop2imap /usr/local/bin/pop2imap
COPY --from=build --chown=65532:65532 /out/state /state
USER 65532:65532
# Journals: the default journal path is $XDG_STATE_HOME/pop2imap/...
ENV XDG_STATE_HOME=/state
VOLUME ["/state"]
# The status page, /metrics and /healthz, when --metrics-addr is :9465.
EXPOSE 9465
ENTRYPOINT ["/usr/local/bin/pop2imap"]
CMD ["bridge", "--config", "/config/bridge.toml", "--log-format", "json", "--metrics-addr", ":9465"]
