#!/usr/bin/perl

# configure refuses what it cannot build, in words a person can act on: a
# missing library names the Debian package to install, a bad option or an
# unknown module says what is wrong.  Each run goes to a throwaway build
# directory, so the tree's own objs/ is never touched.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use Facteur::Test;

my $root = Facteur::Test->root;
my $dir = tempdir('facteur-configure-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub configure {
    my ($env, @args) = @_;
    my $out = `cd $root && $env ./configure --builddir=$dir/objs @args 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = configure('PKG_CONFIG_LIBDIR=/nonexistent');
isnt($rc, 0, 'a missing library stops configure');
like($out, qr/apt-get install libssl-dev/, 'and names the Debian package to install');

($rc, $out) = configure('', '--without-nosuchmodule');
isnt($rc, 0, '--without- an unknown module is refused');
like($out, qr/no module "nosuchmodule"/, 'with the module named');

($rc, $out) = configure('', '--with-lua=lua9');
isnt($rc, 0, 'an unknown Lua is refused');
like($out, qr/--with-lua takes luajit or lua5\.4/, 'with the choices');

($rc, $out) = configure('', '--frobnicate');
isnt($rc, 0, 'an unknown option is refused');

($rc, $out) = configure('', '--without-metrics', '--with-lua=lua5.4');
is($rc, 0, '--without-metrics --with-lua=lua5.4 configures') or diag($out);
my $list = do { local (@ARGV, $/) = ("$dir/objs/fa_modules.c"); <> } // '';
unlike($list, qr/fa_metrics_module/, 'the module left out is not in the static list');
my $hdr = do { local (@ARGV, $/) = ("$dir/objs/fa_auto_config.h"); <> } // '';
like($hdr, qr/lua=lua5\.4/, 'the Lua flavour is part of the module signature');

done_testing;
