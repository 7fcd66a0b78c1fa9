# The two commands of the README: `make demo` and `make test`.  Both set up first.
.PHONY: setup demo test clean

setup:
	@./scripts/setup

demo: setup
	@.venv/bin/vethtrace demo

test: setup
	.venv/bin/python -m pytest

clean:
	$(MAKE) -C probes clean
	rm -rf .venv
