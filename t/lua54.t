#!/usr/bin/perl

# The hook engine embeds LuaJIT by default and must build and behave the
# same with PUC Lua 5.4 (./configure --with-lua=lua5.4).  This builds that
# variant next to the tree's build (BUILDDIR/lua5.4, with the same
# configure options, so an ASan build is checked under ASan too; the
# directory is kept, so the next run rebuilds only what changed), and runs
# every Lua test file against it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $root = Facteur::Test->root;
my $objs = $Facteur::Test::OBJS;
plan skip_all => "no $objs/configure.args (configure first)" unless -f "$objs/configure.args";
plan skip_all => 'this is the Lua 5.4 build already'
    if -f "$objs/fa_auto_config.h" && `cat '$objs/fa_auto_config.h'` =~ /lua=lua5\.4/;

my $build = "$objs/lua5.4";
my @args = grep { !/^--(builddir|with-lua)=/ } split ' ', `cat '$objs/configure.args'`;
my $log = "$objs/lua5.4.log";

sub sh {
    my ($cmd) = @_;
    return system("($cmd) >>'$log' 2>&1") == 0;
}

# a make of its own: variables given to an outer make (make test BUILDDIR=x)
# would reach the build's Makefile through MAKEFLAGS and point it elsewhere
delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES)};
unlink $log;
ok(sh("cd '$root' && ./configure --builddir='$build' --with-lua=lua5.4 @args"),
   './configure --with-lua=lua5.4') or diag(`tail -20 '$log'`);
ok(sh("make -f '$build/Makefile' -j2"), 'it builds') or diag(`tail -30 '$log'`);
like(`ldd '$build/facteur' 2>&1`, qr/liblua5\.4/, 'facteur is linked with Lua 5.4');
unlike(`ldd '$build/facteur' 2>&1`, qr/luajit/, 'and not with LuaJIT');

my @files = sort grep { !m{/lua54\.t$} } (glob("$root/t/lua*.t"), "$root/t/smtp_domains.t");
SKIP: {
    skip 'nothing to run the tests against', 2 unless -x "$build/facteur";
    my $out = `cd '$root' && FACTEUR_BUILDDIR='$build' prove -j2 @files 2>&1`;
    is($? >> 8, 0, 'the Lua tests pass against it: ' . join(' ', map { m{([^/]+)$} } @files))
        or diag($out);
    unlike($out, qr/skipped/i, 'none of them was skipped') or diag($out);
}

done_testing;
