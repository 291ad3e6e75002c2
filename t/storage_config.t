#!/usr/bin/perl

# "storage NAME { ... }" selects a backend by name among the loaded modules;
# what cannot work is refused at load time with FILE:LINE.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Facteur::Test;

my $t = Facteur::Test->new;

my @cases = (
    [ 'unknown backend', "storage nosuchstore {\n}\n",
      qr/facteur\.conf:2: unknown storage backend "nosuchstore" \(available: [^)]*\)/ ],
    [ 'invalid name', "storage Bad/Name { }\n",
      qr/facteur\.conf:2: invalid storage backend name "Bad\/Name"/ ],
    [ 'duplicate store', "storage s1 { }\nstorage s1 { }\n",
      qr/facteur\.conf:3: duplicate "storage s1" \(first in \S+facteur\.conf:2\)/ ],
    [ 'storage inside a block', "smtp {\n    storage s1 { }\n}\n",
      qr/facteur\.conf:3: "storage" directive is not allowed here/ ],
    # a domain names a store ("storage NAME;"); it does not define one
    [ 'a store block in a domain', "domain example.org {\n    storage s1 { }\n}\n",
      qr/facteur\.conf:3: directive "storage" is not terminated by ";"/ ],
);

for my $case (@cases) {
    my ($name, $conf, $re) = @$case;
    $t->write_file('facteur.conf', "pid facteur.pid;\n" . $conf);
    my ($rc, $out) = $t->run_config_test;
    isnt($rc, 0, "$name: refused");
    like($out, $re, "$name: says where and why") or diag($out);
}

done_testing;
