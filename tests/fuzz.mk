# libFuzzer targets (tests/fuzz/README): included from the Makefile.
#
#   make fuzz                 each target for FUZZ_SECONDS (600), one after
#                             another; make -j2 fuzz runs two at a time
#   make fuzz FUZZ_TARGETS=data FUZZ_SECONDS=1800   (FUZZ_ARGS: more libFuzzer options)
#   make fuzz-run-session     one target
#   make fuzz-smoke           each target for 20 s: the seed corpus (every
#                             regression input) and then new inputs; any
#                             crash, leak or sanitizer report fails
#   make fuzz-build, fuzz-clean
#
# The project's sources are compiled again into tests/fuzz/build/ with
# coverage and sanitizers (src/*.o of the normal build are not touched).
# New inputs go to tests/fuzz/build/corpus/<target>/, crashes to
# tests/fuzz/build/<target>-crash-*; the seeds in tests/fuzz/corpus/ are
# only read.  Needs clang and its runtime (libclang-rt-dev): make deps-test.

FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 600
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_TARGETS  ?= session addr data envelope dns reply sasl logstat
FUZZ_ARGS     ?=
FUZZ_DIR       = tests/fuzz
FUZZ_BUILD     = $(FUZZ_DIR)/build
FUZZ_SAN       = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS    = -std=c17 -g -O1 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unknown-warning-option \
                 -D_GNU_SOURCE $(FUZZ_SAN)

# What each target links besides its harness.
FUZZ_OBJS_session  = session txn privsep fdpass status reply conn fileio lineio addr users peer queue deliver mailbox lock mbox maildir mh numbered config log privs sasl authdb pwfile tls_off
FUZZ_OBJS_sasl     = sasl
FUZZ_OBJS_logstat  = logparse tally topn log
FUZZ_OBJS_addr     = addr
FUZZ_OBJS_data     = conn fileio lineio
FUZZ_OBJS_envelope = queue fileio addr
FUZZ_OBJS_dns      = mx
FUZZ_OBJS_reply    = smtpc conn fileio lineio log tls tls_key
FUZZ_LIBS_dns      = -lresolv
FUZZ_LIBS_session  = -lcrypt
FUZZ_LIBS_reply    = -lssl -lcrypto

# Per target: the longest input, and options (the session logs to stderr,
# which its harness silences; libFuzzer keeps its own output).
FUZZ_MAXLEN_session  = 65536
FUZZ_MAXLEN_data     = 65536
FUZZ_MAXLEN_envelope = 16384
FUZZ_MAXLEN_addr     = 1024
FUZZ_MAXLEN_dns      = 4096
FUZZ_MAXLEN_reply    = 16384
FUZZ_MAXLEN_sasl     = 1100
FUZZ_MAXLEN_logstat  = 16384
FUZZ_DICT_session    = -dict=$(FUZZ_DIR)/smtp.dict
FUZZ_DICT_addr       = -dict=$(FUZZ_DIR)/smtp.dict
FUZZ_DICT_reply      = -dict=$(FUZZ_DIR)/smtp.dict
FUZZ_DICT_envelope   = -dict=$(FUZZ_DIR)/envelope.dict
FUZZ_OPTS = -max_len=$(FUZZ_MAXLEN_$*) $(FUZZ_DICT_$*) -timeout=30 -rss_limit_mb=4096 \
            -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/$*- $(FUZZ_ARGS)

FUZZ_BINS = $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-clean

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(@D)
	@echo "  CC  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

define FUZZ_LINK
$(FUZZ_BUILD)/fuzz_$(1): $(FUZZ_DIR)/fuzz_$(1).c $(FUZZ_DIR)/fuzz_util.h $(patsubst %,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_OBJS_$(1)))
	@echo "  LD  $$@"
	@$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer -o $$@ $$< \
		$(patsubst %,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_OBJS_$(1))) $(FUZZ_LIBS_$(1)) -lpthread
endef
$(foreach t,session addr data envelope dns reply sasl logstat,$(eval $(call FUZZ_LINK,$(t))))

fuzz: $(addprefix fuzz-run-,$(FUZZ_TARGETS))
fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	@mkdir -p $(FUZZ_BUILD)/corpus/$*
	@echo "  FUZZ $* for $(FUZZ_SECONDS) s"
	$< $(FUZZ_OPTS) -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus/$* $(FUZZ_DIR)/corpus/$*

# A fresh work corpus each time, so the smoke run is the same on every machine.
fuzz-smoke: $(addprefix fuzz-smoke-,$(FUZZ_TARGETS))
fuzz-smoke-%: $(FUZZ_BUILD)/fuzz_%
	@rm -rf $(FUZZ_BUILD)/smoke/$* && mkdir -p $(FUZZ_BUILD)/smoke/$*
	@echo "  FUZZ $* for $(FUZZ_SMOKE_SECONDS) s (smoke)"
	@$< $(FUZZ_OPTS) -max_total_time=$(FUZZ_SMOKE_SECONDS) $(FUZZ_BUILD)/smoke/$* $(FUZZ_DIR)/corpus/$* \
		2>$(FUZZ_BUILD)/smoke/$*.log || { tail -n 60 $(FUZZ_BUILD)/smoke/$*.log; \
		echo "fuzz-smoke: $* failed (log: $(FUZZ_BUILD)/smoke/$*.log)"; exit 1; }
	@grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_BUILD)/smoke/$*.log | tail -n 1 || true

fuzz-clean:
	rm -rf $(FUZZ_BUILD)
