# Thin wrapper over CMake (DESIGN.md "Build and run").
#   make run    local redis-server + keyfence with deploy/examples/keyfence.yaml
#   make test   every test: unit, integration (real redis-server), real clients
BUILD ?= build
JOBS ?= $(shell nproc)
CONFIG ?= deploy/examples/keyfence.yaml

.PHONY: all deps build test unit run bench package clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: deps
	@scripts/deps.sh --node
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -j 2

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

run: build
	@scripts/run.sh $(BUILD)/keyfence $(CONFIG)

# build/keyfence_<version>_<arch>.deb (binary, systemd unit, example config, docs).
package: build
	@cd $(BUILD) && cpack -G DEB

bench: build
	@bench/run.sh

clean:
	rm -rf $(BUILD)
