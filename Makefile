# gridwatch: `make demo` and `make test` set everything up on a fresh Debian machine with Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED := $(abspath ../shared)
export GRIDWATCH_MODEL_MIRROR ?= $(if $(wildcard $(SHARED)/models),$(SHARED)/models,)
export GRIDWATCH_MEDIA_MIRROR ?= $(if $(wildcard $(SHARED)/media),$(SHARED)/media,)
DEMO_MEDIA := var/media
DEBS := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad chromium postgresql mosquitto
APT := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: help setup dev sysdeps models media demo test lint typecheck unit bench bench-gpu clean

help:
	@echo "make demo   - set up and run gridwatch on the demo cameras (alert wall on http://127.0.0.1:8000)"
	@echo "make test   - set up and run lint, type checks and the test suite"
	@echo "make bench  - run the benchmarks (bench/): detectors, visits, providers, rules, video quality, grids, intake, scheduler, change gating, camera fleet, sensors, sensor linkage, redis patrol, alert wall"
	@echo "make bench-gpu - GPU machines: every ONNX Runtime provider at batch 1, 8 and 32 (installs onnxruntime-gpu)"

# the runtime: all `make demo` needs
$(BIN)/gridwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

# tests, lint and benchmarks: also ultralytics + torch (export, naive baseline, bus.jpg/zidane.jpg)
$(VENV)/.dev: $(BIN)/gridwatch
	$(BIN)/pip install -q -e '.[test,export]'
	# ultralytics pulls opencv-python, which shadows the headless build: keep only the headless one
	$(BIN)/pip uninstall -y -q opencv-python
	$(BIN)/pip install -q --no-deps --force-reinstall opencv-python-headless
	touch $@

setup: $(BIN)/gridwatch
dev: $(VENV)/.dev

# Debian packages: the GStreamer RTSP server (tests' cameras), Chromium (alert wall tests), PostgreSQL (the
# storage tests start their own server from its binaries; the package's own cluster is not used) and mosquitto
# (the sensor tests start their own broker on a free port; the system service is not used)
sysdeps:
	@if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer' 2>/dev/null \
	   || ! command -v chromium >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	   || ! { command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; }; then \
	  echo "installing Debian packages: $(DEBS)"; \
	  $(APT) update -qq && $(APT) install -y -qq $(DEBS) >/dev/null; \
	fi

models: setup
	$(BIN)/gridwatch models fetch yolox-nano

media: setup
	@mkdir -p $(DEMO_MEDIA)
	@if [ -n "$(GRIDWATCH_MEDIA_MIRROR)" ] && [ -f "$(GRIDWATCH_MEDIA_MIRROR)/vtest_h264.mp4" ]; then \
	  ln -sf "$(GRIDWATCH_MEDIA_MIRROR)/vtest_h264.mp4" $(DEMO_MEDIA)/vtest_h264.mp4; \
	elif [ ! -f $(DEMO_MEDIA)/vtest_h264.mp4 ]; then \
	  $(APT) update -qq && cd $(DEMO_MEDIA) && apt-get download opencv-doc && \
	  dpkg-deb --fsys-tarfile opencv-doc_*.deb | tar -x --strip-components=7 ./usr/share/doc/opencv-doc/examples/data/vtest.avi && \
	  rm -f opencv-doc_*.deb && cd - >/dev/null && \
	  $(BIN)/python scripts/encode_h264.py $(DEMO_MEDIA)/vtest.avi $(DEMO_MEDIA)/vtest_h264.mp4; \
	fi

demo: setup models media
	@echo "alert wall: http://127.0.0.1:8000"
	GRIDWATCH_DEMO_MEDIA=$(abspath $(DEMO_MEDIA)) $(BIN)/gridwatch run --config configs/demo

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: dev
	$(BIN)/mypy core ingest detectors rules incidents intake api gridwatch bench

unit: dev sysdeps
	$(BIN)/pytest -q

test: lint typecheck unit

bench: dev models sysdeps
	$(BIN)/python -m bench
	$(BIN)/python -m bench.visits
	$(BIN)/python -m bench.providers
	$(BIN)/python -m bench.rules
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.video_quality --write
	$(BIN)/python -m bench.grids
	$(BIN)/python -m bench.scheduler
	$(BIN)/python -m bench.gating --write
	$(BIN)/python -m bench.fleet
	$(BIN)/python -m bench.sensors --write
	$(BIN)/python -m bench.linkage --write
	$(BIN)/python -m bench.redis_patrol
	$(BIN)/python -m bench.wall

# GPU machines only: swap in onnxruntime-gpu (CUDA 13 / cuDNN 9 from PyPI; its newest release is 1.31.1),
# measure every provider at batch 1, 8 and 32, then put back the CPU build that was installed, whatever happens
ORT_GPU := onnxruntime-gpu[cuda,cudnn]==1.31.1
bench-gpu: dev models
	@cpu_ort=$$($(BIN)/pip show onnxruntime 2>/dev/null | sed -n 's/^Version: //p'); \
	restore() { $(BIN)/pip uninstall -q -y onnxruntime-gpu; \
	  $(BIN)/pip install -q --force-reinstall --no-deps "onnxruntime$${cpu_ort:+==$$cpu_ort}"; }; \
	trap restore EXIT; \
	$(BIN)/pip uninstall -q -y onnxruntime && $(BIN)/pip install -q "$(ORT_GPU)" && $(BIN)/python -m bench.providers

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
