# The two commands of the README: `make demo` and `make test`.  Both set up first.
.PHONY: setup demo test install wheel clean

setup:
	@./scripts/setup

demo: setup
	@.venv/bin/vethtrace demo

test: setup
	.venv/bin/python -m pytest

# Puts this checkout's vethtrace on root's PATH, so `ip netns exec NS vethtrace ...` runs as typed.
install: setup
	ln -sfn "$(CURDIR)/.venv/bin/vethtrace" /usr/local/bin/vethtrace

wheel: setup
	.venv/bin/python -m build --wheel --no-isolation --outdir dist .

clean:
	$(MAKE) -C probes clean
	rm -rf .venv build dist
