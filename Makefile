# RoboTracer ROS 2 — the commands a user needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test lint format demo demo-g1 lock clean bench

help:  ## list the commands
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## install and build the robot-side workspace (EXTRAS=local-model: + torch, transformers)
	@EXTRAS='$(EXTRAS)' bash scripts/setup.sh

# The tests cover the in-process transformers backend too: `make test` sets up the local-model
# extra unless told otherwise (`make test EXTRAS=` for the robot-side install alone; those
# tests then skip with the reason printed).
test: EXTRAS ?= local-model
test: setup  ## run every test of every package and the linters
	@bash scripts/test.sh

lint: setup  ## ruff (lint + format check), 99 columns
	@bash scripts/test.sh --lint-only

format: setup  ## apply ruff's formatting and safe fixes
	@source setup.bash && ruff format . && ruff check --fix .

demo: setup  ## run the UR5 simulator demo and write out/demo/
	@bash scripts/demo.sh ur5

demo-g1: setup  ## run the G1 simulator demo and write out/demo-g1/
	@bash scripts/demo.sh g1

bench: setup  ## run the benchmarks (JSON on stdout)
	@source setup.bash && for b in bench/*.py; do echo "== $$b"; python $$b || exit 1; done

lock:  ## re-pin requirements/constraints.txt for Python 3.10-3.12 from the public index
	@bash scripts/lock.sh

clean:  ## remove build outputs (keeps .venv)
	rm -rf build install log out
