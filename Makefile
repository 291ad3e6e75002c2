# Facteur: the two commands are `make run` and `make test`.  Both install
# missing Debian packages (auto/deps), configure if needed, and build.

BUILDDIR  ?= objs
PROVE_JOBS ?= 2

.PHONY: all build deps run test bench install clean

all: build

deps:
	@sh auto/deps

# configure once; again when configure or auto/ changes, with the same options
$(BUILDDIR)/Makefile: configure auto/options auto/init auto/libs auto/modules auto/make \
                   auto/facteur-config.in auto/facteur.pc.in \
                   $(wildcard modules/*/config) $(wildcard t/modules/*/config)
	@if [ -f $(BUILDDIR)/configure.args ]; then \
	    ./configure $$(cat $(BUILDDIR)/configure.args); \
	else \
	    ./configure --builddir=$(BUILDDIR); \
	fi

build: deps $(BUILDDIR)/Makefile
	$(MAKE) -f $(BUILDDIR)/Makefile

run: build
	@sh auto/devcert var/ssl
	@mkdir -p var/log
	$(BUILDDIR)/facteur -p ./ -c conf/facteur.conf

test: build
	@sh auto/devcert var/ssl
	$(MAKE) -f $(BUILDDIR)/Makefile unit test-modules
	FACTEUR_BUILDDIR=$(BUILDDIR) prove -j$(PROVE_JOBS) -r t/

bench: build
	@for b in t/bench/*.sh; do echo "== $$b"; sh $$b || exit 1; done

install: build
	$(MAKE) -f $(BUILDDIR)/Makefile install

clean:
	rm -rf $(BUILDDIR)
