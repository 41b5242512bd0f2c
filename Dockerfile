# syntax=docker/dockerfile:1
# orderledger as a container: a static Go build (SQLite is pure Go, so no cgo) on a distroless
# base, run as the unprivileged "nonroot" user. Not built on the machine it was written on (no
# Docker engine there): see README.md, "Not verified here".

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a change to the sources does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/orderledger ./cmd/orderledger \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/orderledger /usr/local/bin/orderledger
# The default SQLite store needs a directory the nonroot user (65532) can write.
COPY --from=build --chown=65532:65532 /out/data /var/lib/orderledger
ENV ORDERLEDGER_ADDR=0.0.0.0:8080 \
    ORDERLEDGER_EVENTS=sqlite:/var/lib/orderledger/orderledger.db
VOLUME /var/lib/orderledger
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/orderledger"]
CMD ["serve"]
