# Thin wrapper around Meson and Ninja.  `make` builds build/wharf,
# `make run` starts a server on embedded defaults, `make check` runs
# every test.  Each of run and check installs missing packages first.

BUILD    ?= build
ASAN     ?= build-asan
MESON    ?= meson
PYTHON   ?= /usr/bin/python3

.PHONY: all deps run check unit e2e asan clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

deps:
	./scripts/install-deps.sh

run: deps
	$(MAKE) all
	./scripts/run.sh

check: deps
	$(MAKE) all
	./scripts/check.sh

clean:
	rm -rf $(BUILD) $(ASAN)
