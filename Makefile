# smserve - a SageMaker inference server in one C file.
#
#   make                          ./smserve with the default model (model.c)
#   make MODEL=examples/echo/model.c
#   make run                      serve the default model on port 8080
#   make check                    the fast loop: parser and HTTP tests, plain build (under a minute)
#   make test                     the whole test suite, no benchmark (bash test.sh; one script:
#                                 bash test.sh http; see tests/README.md)
#   make bench                    the benchmarks: bench/run.sh, latency.sh, xgboost_native.sh,
#                                 batch.sh, json.sh
#   make fuzz                     the libFuzzer targets, SECONDS each (default 60)
#   make static                   stripped static binary ./smserve-static
#   make image                    the scratch image (docker, podman or buildah)
#   make asan                     sanitizer builds used by the tests
#   make lint                     cppcheck and clang-tidy
#
# CC, CFLAGS, LDFLAGS and PREFIX can be overridden; WERROR=1 turns warnings
# into errors (test.sh and CI set it).

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
MODEL   ?= model.c
MODEL_DIR ?= models/iris
PORT    ?= 8080
IMAGE   ?= smserve:latest
# What plug-ins may include from lib/ (a change there rebuilds them).
PLUGIN_LIB = lib/attributes.h lib/formats.h lib/instances.h lib/invoke.h lib/numtext.h lib/recordio.h lib/npy.h

# The strict warning set every file is built with (CI adds -Werror).
WARN    = -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wundef -Wcast-align -Wpointer-arith \
          $(if $(WERROR),-Werror)
SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
MUSL_GCC := $(shell command -v musl-gcc 2>/dev/null)
STATIC_CC = $(if $(MUSL_GCC),musl-gcc,$(CC))

# Remember which plug-in (and static flags) ./smserve and smserve-static
# were built with, so MODEL=..., STATIC_OPT=... or a new flag rebuilds them;
# and the compiler and flags of the static server object, which MODEL does
# not change.
.model: FORCE
	@echo '$(MODEL) $(STATIC_CC) $(STATIC_FLAGS)' | cmp -s - $@ || echo '$(MODEL) $(STATIC_CC) $(STATIC_FLAGS)' > $@
.server-static: FORCE
	@echo '$(STATIC_CC) $(STATIC_CFLAGS) $(SERVER_OPT)' | cmp -s - $@ || echo '$(STATIC_CC) $(STATIC_CFLAGS) $(SERVER_OPT)' > $@

# A recipe that fails part way (the trim after the link) leaves no target.
.DELETE_ON_ERROR:

# The plug-in is compiled apart from the server, with its allocation
# functions renamed to smserve's (smserve.c, section 16b): in a multi-model
# loader they allocate inside the model's shared extent, everywhere else
# they are libc's. smserve.c itself keeps calling libc's.
PLUGIN_ALLOC = -Dmalloc=smserve_plugin_malloc -Dcalloc=smserve_plugin_calloc \
               -Drealloc=smserve_plugin_realloc -Dfree=smserve_plugin_free \
               -Dstrdup=smserve_plugin_strdup -Dstrndup=smserve_plugin_strndup

smserve: smserve.c model.h $(PLUGIN_LIB) $(MODEL) .model
	@mkdir -p build
	$(CC) $(WARN) $(CFLAGS) $(PLUGIN_ALLOC) -c -o build/plugin.o $(MODEL)
	$(CC) $(WARN) $(CFLAGS) -o $@ smserve.c build/plugin.o $(LDFLAGS) -lm

# Size matters in a scratch image: drop unused functions and unwind tables,
# and do not pad the file to page boundaries. RELRO is off: in a static
# binary it covers only .init_array/.fini_array (336 bytes here) and costs up
# to a page of padding; a small common page size stops ld from padding the
# data segment's file offset to save a page of memory (4% of the image);
# sorting sections by alignment leaves less padding between them; a switch
# compiled to compares rather than a jump table is smaller (224 bytes) and,
# measured with bench/model.sh and bench/run.sh, no slower.
# The image is built for speed: -O2, as the engineering standard asks (its
# files stay under 200,000 bytes with every feature; bash bench/image.sh).
# -Os saved about 14 KB and cost the model a fifth of its batch speed.
STATIC_OPT ?= -O2
# -s keeps the section headers, their names and .comment (the compilers'
# version strings): about 1 KB that only readelf and objdump read.
# tools/elf_trim.c, built with the host compiler, cuts the file after the
# last byte the kernel loads.
ELF_TRIM = build/elf_trim
# elf_trim runs on the build machine, so it is built for it, even when CC cross-compiles.
BUILD_CC ?= cc
STATIC_CFLAGS = $(STATIC_OPT) -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
                -fno-unwind-tables -fno-jump-tables
STATIC_LDFLAGS = -static -s -Wl,--gc-sections -Wl,-z,noseparate-code -Wl,-z,norelro \
                 -Wl,-z,common-page-size=16 -Wl,--sort-section=alignment
STATIC_FLAGS = $(STATIC_CFLAGS) $(STATIC_LDFLAGS)
# The server object, built apart from the model (MODEL does not rebuild it).
SERVER_OPT ?= -O2
build/server-static.o: smserve.c model.h .server-static
	@mkdir -p build
	$(STATIC_CC) $(WARN) $(STATIC_CFLAGS) $(SERVER_OPT) -c -o $@ smserve.c

$(ELF_TRIM): tools/elf_trim.c
	@mkdir -p build
	$(BUILD_CC) $(WARN) -O2 -o $@ tools/elf_trim.c

smserve-static: build/server-static.o $(PLUGIN_LIB) $(MODEL) .model $(ELF_TRIM)
	$(STATIC_CC) $(WARN) $(STATIC_CFLAGS) $(PLUGIN_ALLOC) -c -o build/plugin-static.o $(MODEL)
	$(STATIC_CC) $(WARN) $(STATIC_FLAGS) -o $@ build/server-static.o build/plugin-static.o -lm
	$(ELF_TRIM) $@

static: smserve-static

# The image: docker if a daemon answers, else podman, else buildah. The
# docker format keeps the HEALTHCHECK (OCI drops it).
image: smserve-static
	@if docker info >/dev/null 2>&1; then \
		docker build --build-arg MODEL_DIR=$(MODEL_DIR) -t $(IMAGE) . ; \
	elif command -v podman >/dev/null; then \
		podman build --format docker --build-arg MODEL_DIR=$(MODEL_DIR) -t $(IMAGE) . ; \
	elif command -v buildah >/dev/null; then \
		buildah bud --format docker --build-arg MODEL_DIR=$(MODEL_DIR) -t $(IMAGE) . ; \
	else echo "make image: no docker daemon, podman or buildah found" >&2; exit 1; fi

# Test builds: the echo plug-in and the fault-injecting test plug-in, plain
# and with AddressSanitizer + UndefinedBehaviorSanitizer.
build/smserve-%: smserve.c model.h $(PLUGIN_LIB)
	@mkdir -p build
	$(CC) $(WARN) $(CFLAGS) $(PLUGIN_ALLOC) -c -o $@-plugin.o $(PLUGIN_$*)
	$(CC) $(WARN) $(CFLAGS) -o $@ smserve.c $@-plugin.o $(LDFLAGS) -lm
build/asan-%: smserve.c model.h $(PLUGIN_LIB)
	@mkdir -p build
	$(CC) $(WARN) -O1 -g $(SAN) $(PLUGIN_ALLOC) -c -o $@-plugin.o $(PLUGIN_$*)
	$(CC) $(WARN) -O1 -g $(SAN) -o $@ smserve.c $@-plugin.o -lm

# Static (musl when installed) builds of the same plug-ins, as the image ships them.
build/static-%: build/server-static.o $(PLUGIN_LIB) $(ELF_TRIM)
	$(STATIC_CC) $(WARN) $(STATIC_CFLAGS) $(PLUGIN_ALLOC) -c -o $@-plugin.o $(PLUGIN_$*)
	$(STATIC_CC) $(WARN) $(STATIC_FLAGS) -o $@ build/server-static.o $@-plugin.o -lm
	$(ELF_TRIM) $@
build/static-echo: examples/echo/model.c
build/static-default: model.c

PLUGIN_echo   = examples/echo/model.c
PLUGIN_faulty = tests/plugins/faulty.c
PLUGIN_default = model.c
PLUGIN_xgboost = examples/xgboost/model.c
build/smserve-echo build/asan-echo: examples/echo/model.c
build/smserve-faulty build/asan-faulty: tests/plugins/faulty.c
build/smserve-default build/asan-default: model.c
build/smserve-xgboost build/asan-xgboost: examples/xgboost/model.c

test-bins: build/smserve-echo build/smserve-faulty build/smserve-default build/smserve-xgboost
asan: build/asan-echo build/asan-faulty build/asan-default build/asan-xgboost

run: smserve
	./smserve serve --port $(PORT) --model-dir $(MODEL_DIR)

bench:
	bash bench/run.sh
	bash bench/latency.sh
	bash bench/xgboost_native.sh
	bash bench/batch.sh
	bash bench/json.sh

# test.sh builds what the scripts it runs need (warnings as errors).
check:
	bash test.sh --check

test:
	bash test.sh

fuzz:
	bash fuzz/run.sh $(or $(SECONDS),60)

LINT_FILES = smserve.c model.c examples/echo/model.c examples/xgboost/model.c tests/plugins/faulty.c \
             bench/model_speed.c tools/elf_trim.c tests/codecs_test.c fuzz/fuzz_recordio.c fuzz/fuzz_npy.c \
             tests/numtext_check.c
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--std=c11 --inline-suppr $(LINT_FILES)
	@# one file per run: clang-tidy 14 reports false va_list errors when given several
	for f in $(LINT_FILES); do \
		clang-tidy --quiet $$f -- -std=c11 -D_POSIX_C_SOURCE=200809L || exit 1; done

install: smserve
	install -D -m 755 smserve $(DESTDIR)$(PREFIX)/bin/smserve

clean:
	rm -rf smserve smserve-static build .model .server-static

.PHONY: FORCE bench fuzz static image test-bins asan run check test lint install clean
