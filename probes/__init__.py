"""The eBPF probes: `vethtrace.bpf.c` and the one header that defines what crosses the
kernel/user boundary, `vethtrace.h`.  The compiled object, `vethtrace.bpf.o`, is built
by probes/Makefile (at `make setup` and when a wheel is built) and shipped in the package."""
