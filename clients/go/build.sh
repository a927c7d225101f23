#!/bin/sh
# Builds the Go example (clients/go/health) offline with Debian's Go toolchain and gRPC
# packages, in GOPATH mode: stubs generated from proto/ into a GOPATH of their own (their
# import path is the .proto files' go_package), everything else from /usr/share/gocode.
#
#   make go    # Debian's golang-go, golang-google-grpc-dev, golang-github-golang-protobuf-1-5-dev,
#              # golang-google-protobuf-dev, protoc-gen-go and protoc-gen-go-grpc
#   clients/go/build.sh [WORK_DIR]              # prints the binary's path (default var/go)
#
# protoc is grpcio-tools' in .venv (make setup); the plugins are Debian's protoc-gen-go and
# protoc-gen-go-grpc, whose output matches Debian's grpc-go.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mkdir -p "${1:-$repo/var/go}" && cd "${1:-$repo/var/go}" && pwd)

rm -rf "$work/src" && mkdir -p "$work/src/spoton-health" "$work/bin"
"$repo/.venv/bin/python" -m grpc_tools.protoc -I"$repo/proto" \
  --plugin=protoc-gen-go=/usr/bin/protoc-gen-go --plugin=protoc-gen-go-grpc=/usr/bin/protoc-gen-go-grpc \
  --go_out="$work/src" --go-grpc_out="$work/src" "$repo"/proto/spoton/v1/*.proto
cp "$repo/clients/go/health/main.go" "$work/src/spoton-health/"
cd "$work/src/spoton-health"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOPROXY=off GOFLAGS= go build -o "$work/bin/spoton-health" .
echo "$work/bin/spoton-health"
