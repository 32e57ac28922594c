# mcuc developer entry points: `make demo` and `make test` set up everything they need.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm cmake gcc libc6-dev make dataset-fashion-mnist chromium
DEMO_OUT := build/demo

.PHONY: all demo test ctest lint sysdeps venv clean

all: test

sysdeps:
	@missing=""; \
	for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check mcuc tests bench
	$(VENV)/bin/mypy mcuc

ctest: sysdeps
	cmake -S . -B build/runtime -DCMAKE_BUILD_TYPE=Release > /dev/null
	cmake --build build/runtime -j 2
	cd build/runtime && ctest --output-on-failure

test: sysdeps venv lint ctest
	$(VENV)/bin/pytest -q -rs -n 2 -p no:cacheprovider tests

demo: sysdeps venv
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/mcuc compile mcuc/zoo/data/demo_fmnist.onnx --board qemu-mps2-an386 --calib mcuc/zoo/data/demo_calib.npy -o $(DEMO_OUT)
	$(PY) -m mcuc.demo $(DEMO_OUT)

clean:
	rm -rf build
