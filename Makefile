# RoboTracer ROS 2 — the commands a user needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test lint format demo demo-g1 lock clean bench

help:  ## list the commands
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## install everything and build the workspace (idempotent; seconds when nothing changed)
	@bash scripts/setup.sh

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

lock:  ## re-pin requirements/constraints.txt from requirements/requirements.in
	@bash scripts/lock.sh

clean:  ## remove build outputs (keeps .venv)
	rm -rf build install log out
