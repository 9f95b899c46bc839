# syntax=docker/dockerfile:1
# A static casesync image: the engine alone on distroless/static (CA
# certificates, tzdata, a nonroot user; no shell). Not built in CI; see
# README.md, "Running it as a service".
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t casesync .
#   docker run -d --name casesync-kh \
#     -v /etc/casesync/specs/cambodia:/etc/casesync/specs:ro \
#     -v /etc/casesync/cambodia.env:/run/secrets/casesync.env:ro \
#     -v casesync-kh:/var/lib/casesync \
#     -p 127.0.0.1:8080:8080 -p 127.0.0.1:8081:8081 casesync
#
# The secrets file must be readable by the image's nonroot user (uid 65532:
# chown 65532 /etc/casesync/cambodia.env; chmod 600) and holds
# CASESYNC_ADMIN_TOKEN too: the admin endpoints
# listen on every interface of the container, so they require that bearer
# token (curl -H "Authorization: Bearer …" http://127.0.0.1:8081/status).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git is not copied (.dockerignore), so the revision comes as an argument.
ARG REVISION=unknown
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X casesync/internal/version.revision=${REVISION} -X casesync/internal/version.version=${VERSION}" \
      -o /out/engine ./cmd/engine \
 && /out/engine --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/engine /usr/local/bin/engine
# The daemon's state (SQLite) lives on this volume; keep it.
VOLUME /var/lib/casesync
EXPOSE 8080 8081
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/engine"]
CMD ["run", "--specs", "/etc/casesync/specs", "--state", "/var/lib/casesync/casesync.db", \
     "--secrets-file", "/run/secrets/casesync.env", "--log-format", "json", \
     "--addr", ":8080", "--admin-addr", ":8081", "--admin-token-secret", "CASESYNC_ADMIN_TOKEN"]
