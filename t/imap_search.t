#!/usr/bin/perl

# IMAP SEARCH, ESEARCH, SORT and THREAD over a corpus built so that every
# key discriminates: flags and keywords (a Maildir imported with them),
# internal dates apart from the Date fields, RFC 2047 subjects and names,
# quoted-printable and base64 bodies in UTF-8 and ISO-8859-1, a multipart
# message with a binary attachment, an attached message, a message of
# 200 KB with a word across the store's 64 KB read chunks, and a
# mailbox of threads with known REFERENCES and ORDEREDSUBJECT trees.
# Bad input gets BAD (or NO [BADCHARSET]); nothing crashes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use MIME::Base64 qw(encode_base64);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap lmdb/);

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; }
imap {
    server { listen 127.0.0.1:%%PORT_1%%; }
    auth_plaintext on;
}
EOF
my $dir = $t->testdir;
mkdir "$dir/var";

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'secret');

# ---- the corpus -------------------------------------------------------------

sub day { my ($d, $h) = @_; return 1706745600 + ($d - 1) * 86400 + ($h // 12) * 3600 }  # Feb 2024

my $big_prefix = join('', map { ('x' x 78) . "\n" } 1 .. 819) . 'yyyyyyyyyyy';
my $big = $big_prefix . "needleinhaystack\n"
    . join('', map { ('z' x 78) . "\n" } 1 .. 1700) . "finalword at the end\n";

my @inbox = (
    # [ name, flags, internal date, message ]
    [ 'm1', 'S', day(5), <<'EOF' ],
From: Alice Martin <alice@example.org>
To: Bob <bob@example.org>
Cc: Carol <carol@example.org>
Subject: Hello world
Date: Mon, 1 Jan 2024 10:00:00 +0000
Message-ID: <m1@example.org>

A plain body about apples.
EOF
    [ 'm2', 'RS', day(3), <<'EOF' ],
From: Bob <bob@example.org>
To: Alice Martin <alice@example.org>
Subject: Re: Hello world
Date: Tue, 2 Jan 2024 11:00:00 +0000
Message-ID: <m2@example.org>
In-Reply-To: <m1@example.org>
References: <m1@example.org>

Thanks! A reply about bananas.
EOF
    [ 'm3', 'F', day(8), <<'EOF' ],
From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <jorg@example.de>
To: alice@example.org
Subject: =?UTF-8?Q?=C3=A9t=C3=A9_en_France?=
Date: Wed, 3 Jan 2024 09:00:00 +0100
Message-ID: <m3@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Nous parlons fran=C3=A7ais, c'est l'=C3=A9t=C3=A9. Soft=
broken line.
EOF
    [ 'm4', 'T', day(1), <<EOF ],
From: Dan <dan\@example.net>
To: alice\@example.org
Subject: Latin body
Date: Thu, 4 Jan 2024 08:00:00 +0000
Message-ID: <m4\@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: base64

@{[ encode_base64("Un \xc9T\xc9 chaud, d\xe9j\xe0 fini.\n") ]}
EOF
    [ 'm5', 'D', day(2), <<EOF ],
From: Eve <eve\@example.com>
To: bob\@example.org
Subject: Multipart message
Date: Fri, 5 Jan 2024 08:00:00 +0000
Message-ID: <m5\@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

preamble words
--XYZ
Content-Type: text/plain; charset=us-ascii

A text part with kiwis.
--XYZ
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

@{[ encode_base64("secretword inside a binary attachment") ]}
--XYZ
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

@{[ encode_base64("<p>html with mangoes</p>") ]}
--XYZ--
EOF
    [ 'm6', 'Sa', day(7), <<'EOF' ],
From: Frank <frank@example.org>
To: alice@example.org
Subject: Forwarded message inside
Message-ID: <m6@example.org>
X-Custom: Special-Value 42
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="B6"

--B6
Content-Type: text/plain

See the attached message.
--B6
Content-Type: message/rfc822

From: Zed <zed@example.org>
Subject: inner subject zebra
Date: Sat, 6 Jan 2024 08:00:00 +0000

Inner body with giraffes.
--B6--
EOF
    [ 'm7', '', day(4), <<EOF . $big ],
From: Grace <grace\@example.org>
To: alice\@example.org
Bcc: hidden\@example.org
Subject: Big one
Date: Sun, 7 Jan 2024 08:00:00 +0000
Message-ID: <m7\@example.org>

EOF
    [ 'm8', 'Sb', day(6), <<'EOF' ],
From: Heidi <heidi@example.org>
To: Bob <bob@example.org>
Subject: [PATCH] Fwd: Re: topic (fwd)
Date: Sun, 7 Jan 2024 23:30:00 -0800
Message-ID: <m8@example.org>

last one
EOF
);

sub put {
    my ($path, $body, $mtime) = @_;
    (my $parent = $path) =~ s{/[^/]+$}{};
    make_path($parent);
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $body;
    close $fh;
    utime $mtime, $mtime, $path;
}

my $md = "$dir/Maildir";
my $i = 0;
for my $msg (@inbox) {
    $i++;
    put("$md/cur/$i.$msg->[0].host:2,$msg->[1]", $msg->[3], $msg->[2]);
}
put("$md/dovecot-keywords", "0 \$Label1\n1 todo\n", day(1));
make_path("$md/new", "$md/tmp");

# the store keeps CRLF: the sizes are those
my @size = map { my $x = $_->[3]; $x =~ s/\n/\r\n/g; length $x } @inbox;

# a mailbox of threads; its first message is expunged, so UIDs are MSNs + 1
my @threads = (
    [ 'x0', 'T', "Message-ID: <zero\@t>\nSubject: gone\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nx\n" ],
    [ 't1', '', "Message-ID: <a\@t>\nSubject: Topic A\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\n1\n" ],
    [ 't2', '', "Message-ID: <b\@t>\nIn-Reply-To: <a\@t>\nReferences: <a\@t>\nSubject: Re: Topic A\nDate: Mon, 1 Jan 2024 11:00:00 +0000\n\n2\n" ],
    [ 't3', '', "Message-ID: <c\@t>\nReferences: <a\@t> <b\@t>\nSubject: Re: Topic A\nDate: Mon, 1 Jan 2024 12:00:00 +0000\n\n3\n" ],
    [ 't4', '', "Message-ID: <d\@t>\nSubject: Other\nDate: Tue, 2 Jan 2024 09:00:00 +0000\n\n4\n" ],
    [ 't5', '', "Message-ID: <e\@t>\nReferences:\n <a\@t>\nSubject: RE: Topic A\nDate: Mon, 1 Jan 2024 13:00:00 +0000\n\n5\n" ],
    [ 't6', '', "Message-ID: <f\@t>\nReferences: <missing\@t>\nSubject: Lost parent\nDate: Wed, 3 Jan 2024 09:00:00 +0000\n\n6\n" ],
    [ 't7', '', "Message-ID: <g\@t>\nReferences: <missing2\@t>\nSubject: Re: Orphans\nDate: Thu, 4 Jan 2024 09:00:00 +0000\n\n7\n" ],
    [ 't8', '', "Message-ID: <h\@t>\nIn-Reply-To: <missing2\@t>\nSubject: Re: Orphans\nDate: Fri, 5 Jan 2024 09:00:00 +0000\n\n8\n" ],
    [ 't9', '', "Message-ID: <i\@t>\nSubject: Re: Other\nDate: Tue, 2 Jan 2024 10:00:00 +0000\n\n9\n" ],
);
my $td = "$dir/Threads";
$i = 0;
for my $msg (@threads) {
    $i++;
    put("$td/cur/$i.$msg->[0].host:2,$msg->[1]", $msg->[2], day($i));
}
make_path("$td/new", "$td/tmp");

# many small messages: several batches of metadata
my $mbox = '';
for my $n (1 .. 700) {
    $mbox .= "From sender\@example.org Mon Jan  1 00:00:00 2024\n"
        . "Subject: number $n\nFrom: s$n\@example.org\n\nvalue " . ($n * 7) . " here\n\n";
}
$t->write_file('many.mbox', $mbox);

# enough messages for answers past the output's high water mark (256 KB)
my $LARGE = 50_000;
$mbox = '';
for my $n (1 .. $LARGE) {
    $mbox .= "From s\@example.org Mon Jan  1 00:00:00 2024\nSubject: s" . ($n % 1000) . "\n\nx\n\n";
}
$t->write_file('large.mbox', $mbox);

my ($rc, $out) = $m->ctl(qw(import maildir alice@example.org), $md);
is($rc, 0, 'import the corpus') or diag($out);
($rc, $out) = $m->ctl(qw(import maildir alice@example.org), $td, '--mailbox=Threads');
is($rc, 0, 'import the threads') or diag($out);
$m->ctl(qw(mailbox create alice@example.org Many));
($rc, $out) = $m->ctl(qw(import mbox alice@example.org), "$dir/many.mbox", '--mailbox=Many');
is($rc, 0, 'import 700 messages') or diag($out);
$m->ctl(qw(mailbox create alice@example.org Empty));
$m->ctl(qw(mailbox create alice@example.org Large));
($rc, $out) = $m->ctl(qw(import mbox alice@example.org), "$dir/large.mbox", '--mailbox=Large');
is($rc, 0, "import $LARGE messages") or diag($out);

$t->run;

# ---- a small IMAP client --------------------------------------------------------

my $tagn = 0;

# send a command; (the tagged line, [the untagged lines])
sub imap {
    my ($c, $cmd) = @_;
    my $tag = 'a' . ++$tagn;
    my @lines;
    $c->send("$tag $cmd\r\n");
    while (defined(my $l = $c->line(20))) {
        return ($l, \@lines) if $l =~ /^\Q$tag\E /;
        push @lines, $l;
    }
    return ('<no answer>', \@lines);
}

# the numbers a SEARCH (SORT) answers, as a string; or the failure
sub result {
    my ($c, $cmd, $word) = @_;
    my ($tagged, $lines) = imap($c, $cmd);
    return "not OK: $tagged" unless $tagged =~ /^\S+ OK /;
    $word //= 'SEARCH';
    my @r = grep { /^\* \Q$word\E\b/ } @$lines;
    return "no $word response" unless @r == 1;
    (my $r = $r[0]) =~ s/^\* \Q$word\E ?//;
    return $r;
}

sub lit { my ($s) = @_; return '{' . length($s) . "+}\r\n$s" }

my $c = $t->connect(port => 1);
$c->check(qr/^\* OK /, 'greeting');
like((imap($c, 'LOGIN alice@example.org secret'))[0], qr/ OK /, 'login');
like((imap($c, 'SELECT INBOX'))[0], qr/ OK /, 'select INBOX');

sub is_search {
    my ($keys, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is(result($c, "SEARCH $keys"), $want, $name // "SEARCH $keys");
}

# ---- flags, keywords, sets ---------------------------------------------------

is_search('ALL', '1 2 3 4 5 6 7 8');
is_search('SEEN', '1 2 6 8');
is_search('UNSEEN', '3 4 5 7');
is_search('ANSWERED', '2');
is_search('UNANSWERED', '1 3 4 5 6 7 8');
is_search('FLAGGED', '3');
is_search('UNFLAGGED', '1 2 4 5 6 7 8');
is_search('DELETED', '4');
is_search('UNDELETED', '1 2 3 5 6 7 8');
is_search('DRAFT', '5');
is_search('UNDRAFT', '1 2 3 4 6 7 8');
is_search('RECENT', '', 'RECENT: nothing is recent');
is_search('NEW', '', 'NEW: nothing is new');
is_search('OLD', '1 2 3 4 5 6 7 8', 'OLD: everything is old');
is_search('KEYWORD $Label1', '6');
is_search('KEYWORD TODO', '8', 'keywords are case-insensitive');
is_search('UNKEYWORD todo', '1 2 3 4 5 6 7');
is_search('KEYWORD nosuchkeyword', '', 'a keyword the mailbox does not have');
is_search('UNKEYWORD nosuchkeyword', '1 2 3 4 5 6 7 8');
is_search('KEYWORD \\Seen', '1 2 6 8', 'KEYWORD with a system flag');
is_search('2:3,7', '2 3 7', 'a sequence set');
is_search('*', '8');
is_search('6:*', '6 7 8');
is_search('UID 3:5', '3 4 5');
is_search('UID 100:*', '8', 'UID 100:* is the last message');
is_search('UID 100', '', 'a UID past the end finds nothing');
is(result($c, 'UID SEARCH UID 2,4:5'), '2 4 5', 'UID SEARCH');

# ---- dates and sizes -------------------------------------------------------------

is_search('BEFORE 3-Feb-2024', '4 5', 'BEFORE (internal date)');
is_search('ON 3-Feb-2024', '2');
is_search('ON "03-Feb-2024"', '2', 'a quoted date with two digits');
is_search('SINCE 7-Feb-2024', '3 6');
is_search('SENTBEFORE 3-Jan-2024', '1 2', 'SENTBEFORE (the Date field)');
is_search('SENTON 3-Jan-2024', '3');
is_search('SENTON 7-Jan-2024', '7 8', 'SENTON takes the day as the sender wrote it');
is_search('SENTSINCE 5-Jan-2024', '5 7 8');
is_search('NOT SENTBEFORE 1-Jan-2030', '6', 'a message without a Date field has no sent date');
my @larger = grep { $size[$_ - 1] > 1000 } 1 .. 8;
my @smaller = grep { $size[$_ - 1] < 400 } 1 .. 8;
is_search('LARGER 1000', "@larger");
is_search('LARGER 100000', '7');
is_search('SMALLER 400', "@smaller");
is_search("LARGER " . ($size[0] - 1) . " SMALLER " . ($size[0] + 1), '1', 'LARGER and SMALLER');

# ---- header fields --------------------------------------------------------------

is_search('FROM alice', '1');
is_search('FROM "Bob"', '2');
is_search('OR FROM alice FROM bob', '1 2');
is_search('TO bob', '1 5 8');
is_search('CC carol', '1');
is_search('BCC hidden', '7');
is_search('SUBJECT hello', '1 2');
is_search('SUBJECT "HELLO WORLD"', '1 2', 'case-insensitive');
is_search('SUBJECT ' . lit('ÉTÉ'), '3', 'an RFC 2047 subject, Unicode case folding');
is_search('CHARSET UTF-8 SUBJECT ' . lit('été en'), '3', 'CHARSET UTF-8');
is_search('FROM ' . lit('jörg müller'), '3', 'an RFC 2047 display name');
is_search('FROM ' . lit('JÖRG'), '3', 'an RFC 2047 display name, upper case');
is_search('HEADER Message-ID m3@', '3', 'HEADER of a cached field');
is_search('HEADER In-Reply-To "<m1@"', '2');
is_search('HEADER References m1@example', '2', 'HEADER of a field read from the message');
is_search('HEADER X-Custom special-value', '6');
is_search('HEADER x-custom ""', '6', 'HEADER name "": the field exists');
is_search('HEADER X-Missing ""', '', 'a field no message has');
is_search('HEADER Cc ""', '1');
is_search('SUBJECT zebra', '', 'an attached message\'s subject is not the subject');
is_search('NOT SUBJECT o', '3 5', 'NOT SUBJECT');

# ---- bodies -----------------------------------------------------------------------

is_search('BODY apples', '1');
is_search('BODY APPLES', '1');
is_search('BODY Thanks', '2');
is_search('BODY alice', '', 'BODY is not the header');
is_search('TEXT alice', '1 2 3 4 6 7', 'TEXT is the header too');
is_search('BODY ' . lit('français'), '3', 'quoted-printable UTF-8');
is_search('BODY softbroken', '3', 'a soft line break');
is_search('BODY ' . lit('été'), '3 4', 'ISO-8859-1 in base64, and quoted-printable');
is_search('BODY ' . lit('DÉJÀ'), '4', 'ISO-8859-1, case folded');
is_search('CHARSET ISO-8859-1 BODY ' . lit("d\xe9j\xe0"), '4', 'a key in ISO-8859-1');
is_search('BODY kiwis', '5', 'a text part of a multipart');
is_search('BODY mangoes', '5', 'a base64 HTML part');
is_search('BODY secretword', '', 'a binary attachment is not searched');
is_search('TEXT octet-stream', '5', 'TEXT sees the MIME headers');
is_search('BODY preamble', '', 'the preamble is not a part');
is_search('BODY giraffes', '6', 'the body of an attached message');
is_search('BODY zebra', '6', 'the header of an attached message is its body');
is_search('BODY needleinhaystack', '7', 'a word across two read chunks');
is_search('BODY NEEDLEINHAYSTACK', '7');
is_search('BODY finalword', '7', 'the end of a 200 KB body');
is_search('BODY yyyyyyneedle', '7');
is_search('BODY ""', '1 2 3 4 5 6 7 8', 'BODY "" matches every message');
is_search('TEXT "inner subject zebra"', '6');
is_search('FLAGGED BODY ' . lit('été'), '3', 'a cheap key and a body key');
is_search('OR BODY kiwis SEEN', '1 2 5 6 8');
is_search('NOT BODY needleinhaystack', '1 2 3 4 5 6 8');

# ---- combinations -----------------------------------------------------------------

is_search('SEEN FLAGGED', '');
is_search('(SEEN FLAGGED)', '');
is_search('OR (SEEN ANSWERED) DRAFT', '2 5');
is_search('NOT (SEEN OR FROM alice FROM bob)', '3 4 5 6 7 8');
is_search('OR OR OR 1 2 3 4', '1 2 3 4', 'left-nested OR');
is_search('OR 1 OR 2 OR 3 4', '1 2 3 4', 'right-nested OR');
is_search('NOT NOT NOT SEEN', '3 4 5 7');
is_search('2:7 NOT 3:6 UNSEEN', '7', 'sets with other keys');
is_search(join(' ', ('NOT') x 500) . ' SEEN', '1 2 6 8', '500 NOTs');
is_search(('(' x 30) . 'SEEN' . (')' x 30), '1 2 6 8', 'nested parentheses');
is_search(join(' ', ('OR SEEN') x 200) . ' DRAFT', '1 2 5 6 8', 'a long OR chain');

# ---- CONDSTORE --------------------------------------------------------------------

my ($tagged, $lines) = imap($c, 'SELECT INBOX (CONDSTORE)');
my ($hms) = join("\n", @$lines) =~ /HIGHESTMODSEQ (\d+)/;
ok($hms, 'SELECT (CONDSTORE) says HIGHESTMODSEQ') or diag(explain($lines));
$hms //= 0;
like(result($c, 'SEARCH MODSEQ 1'), qr/^1 2 3 4 5 6 7 8 \(MODSEQ $hms\)$/,
     'SEARCH MODSEQ ends with the highest MODSEQ');
is(result($c, 'SEARCH MODSEQ ' . ($hms + 1)), '', 'MODSEQ past the highest');
like(result($c, 'SEARCH MODSEQ "/flags/\\\\draft" all 1 DRAFT'), qr/^5 \(MODSEQ \d+\)$/,
     'MODSEQ with an entry name');
like(result($c, 'SEARCH RETURN (COUNT) MODSEQ 1', 'ESEARCH'), qr/COUNT 8 MODSEQ $hms$/,
     'ESEARCH with MODSEQ');

# ---- ESEARCH ----------------------------------------------------------------------

($tagged, $lines) = imap($c, 'SEARCH RETURN (MIN MAX COUNT ALL) SEEN');
like($tagged, qr/ OK /, 'SEARCH RETURN');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") MIN 1 MAX 8 COUNT 4 ALL 1:2,6,8"],
          'ESEARCH MIN MAX COUNT ALL') or diag(explain($lines));
($tagged, $lines) = imap($c, 'UID SEARCH RETURN (COUNT MIN) NEW');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") UID COUNT 0"], 'nothing found: COUNT 0 only')
    or diag(explain($lines));
($tagged, $lines) = imap($c, 'SEARCH RETURN () ALL');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") ALL 1:8"], 'RETURN () is ALL')
    or diag(explain($lines));
($tagged, $lines) = imap($c, 'UID SEARCH RETURN (MAX) UNSEEN');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") UID MAX 7"], 'UID SEARCH RETURN (MAX)')
    or diag(explain($lines));

($tagged, $lines) = imap($c, 'SEARCH RETURN (COUNT) CHARSET UTF-8 BODY ' . lit('été'));
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") COUNT 2"], 'RETURN, then CHARSET')
    or diag(explain($lines));

# ---- bad input --------------------------------------------------------------------

sub is_bad {
    my ($keys, $name, $re) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($tagged) = imap($c, "SEARCH $keys");
    like($tagged, $re // qr/^\S+ BAD /, $name // "BAD: SEARCH $keys");
}

is_bad('FOO', 'an unknown key');
is_bad('', 'no key');
is_bad('BEFORE 1-Foo-2024', 'a bad month');
is_bad('BEFORE 32-Jan-2024', 'a bad day');
is_bad('SINCE 2024-01-01', 'a date in another format');
is_bad('ON', 'a key without its argument');
is_bad('(SEEN', 'an unbalanced parenthesis');
is_bad('SEEN)', 'a stray closing parenthesis');
is_bad('()', 'an empty list');
is_bad('9', 'a sequence number past the end');
is_bad('1:9', 'a range past the end');
is_bad('0', 'sequence number 0');
is_bad('UID x', 'a bad UID set');
is_bad('OR SEEN', 'OR with one key');
is_bad('NOT', 'NOT with no key');
is_bad('LARGER big', 'LARGER without a number');
is_bad('HEADER Subject', 'HEADER without a value');
is_bad('MODSEQ x', 'a bad MODSEQ');
is_bad('RETURN (SAVE) ALL', 'RETURN (SAVE)');
is_bad('RETURN (FOO) ALL', 'an unknown RETURN option');
is_bad('$', 'SEARCHRES');
is_bad(join(' ', ('NOT') x 1100) . ' SEEN', 'NOT nested too deeply');
is_bad(('(' x 40) . 'SEEN' . (')' x 40), 'parentheses nested too deeply');
is_bad('CHARSET KOI8-NOPE BODY x', 'an unknown charset',
       qr/^\S+ NO \[BADCHARSET \(UTF-8 US-ASCII\)\] /);
is_bad('SUBJECT ' . lit("\xff\xfe"), 'a key that is not UTF-8');
is(result($c, 'SEARCH SEEN'), '1 2 6 8', 'the session goes on');

# ---- SORT -------------------------------------------------------------------------

sub is_sort {
    my ($crit, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is(result($c, "SORT ($crit) UTF-8 ALL", 'SORT'), $want, $name // "SORT ($crit)");
}

is_sort('ARRIVAL', '4 5 2 7 1 8 6 3');
is_sort('REVERSE ARRIVAL', '3 6 8 1 7 2 5 4');
is_sort('DATE', '1 2 3 4 5 7 8 6', 'DATE: Date in UTC, else the internal date');
is_sort('REVERSE DATE', '6 8 7 5 4 3 2 1');
my @by_size = sort { $size[$a - 1] <=> $size[$b - 1] || $a <=> $b } 1 .. 8;
is_sort('SIZE', "@by_size");
is_sort('REVERSE SIZE', join(' ', sort { $size[$b - 1] <=> $size[$a - 1] || $a <=> $b } 1 .. 8));
is_sort('SUBJECT', '7 6 1 2 4 5 8 3', 'SUBJECT: base subjects');
is_sort('FROM', '1 2 4 5 6 7 8 3');
is_sort('TO', '2 3 4 6 7 1 5 8');
is_sort('CC', '2 3 4 5 6 7 8 1', 'CC: no Cc sorts first');
is_sort('DISPLAYFROM', '1 2 4 5 6 7 8 3');
is_sort('DISPLAYTO', '2 3 4 6 7 1 8 5', 'DISPLAYTO: the name, else the address');
is_sort('TO DATE', '2 3 4 7 6 1 5 8', 'two criteria');
is_sort('TO REVERSE DATE', '6 7 4 3 2 8 5 1', 'REVERSE on the second');
is(result($c, 'SORT (DATE) UTF-8 SEEN', 'SORT'), '1 2 8 6', 'SORT with search keys');
is(result($c, 'SORT (SUBJECT) US-ASCII BODY ' . lit('été'), 'SORT'), '4 3',
   'SORT with a body key');
is(result($c, 'UID SORT (REVERSE ARRIVAL) UTF-8 1:3', 'SORT'), '3 1 2', 'UID SORT');
like((imap($c, 'SORT (FOO) UTF-8 ALL'))[0], qr/ BAD /, 'SORT: an unknown criterion');
like((imap($c, 'SORT (DATE REVERSE) UTF-8 ALL'))[0], qr/ BAD /, 'SORT: REVERSE at the end');
like((imap($c, 'SORT () UTF-8 ALL'))[0], qr/ BAD /, 'SORT: no criteria');
like((imap($c, 'SORT DATE UTF-8 ALL'))[0], qr/ BAD /, 'SORT: criteria not in a list');
like((imap($c, 'SORT (DATE) UTF-8'))[0], qr/ BAD /, 'SORT: no search keys');
like((imap($c, 'SORT (DATE) NOPE-8 ALL'))[0], qr/ NO \[BADCHARSET/, 'SORT: unknown charset');

# ---- THREAD -----------------------------------------------------------------------

like((imap($c, 'SELECT Threads'))[0], qr/ OK /, 'select Threads');
like((imap($c, 'CLOSE'))[0], qr/ OK /, 'CLOSE expunges the deleted message');
like((imap($c, 'SELECT Threads'))[0], qr/ OK /, 'select Threads again');
is(result($c, 'UID SEARCH ALL'), '2 3 4 5 6 7 8 9 10', 'the UIDs are the MSNs + 1');
is(result($c, 'THREAD REFERENCES UTF-8 ALL', 'THREAD'), '(1 (2 3)(5))(4 9)(6)((7)(8))',
   'THREAD REFERENCES');
is(result($c, 'UID THREAD REFERENCES UTF-8 ALL', 'THREAD'), '(2 (3 4)(6))(5 10)(7)((8)(9))',
   'UID THREAD REFERENCES');
is(result($c, 'THREAD ORDEREDSUBJECT UTF-8 ALL', 'THREAD'), '(1 (2)(3)(5))(4 9)(6)(7 8)',
   'THREAD ORDEREDSUBJECT');
is(result($c, 'THREAD REFERENCES UTF-8 2:9', 'THREAD'), '((2 3)(5))(4 9)(6)((7)(8))',
   'THREAD REFERENCES of some messages: the root is a dummy now');
is(result($c, 'THREAD REFERENCES UTF-8 SUBJECT "topic a"', 'THREAD'), '(1 (2 3)(5))');
is(result($c, 'THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing', 'THREAD'), '',
   'THREAD of no message');
like((imap($c, 'THREAD FOO UTF-8 ALL'))[0], qr/ BAD /, 'THREAD: an unknown algorithm');
like((imap($c, 'THREAD REFERENCES UTF-8'))[0], qr/ BAD /, 'THREAD: no search keys');
like((imap($c, 'THREAD REFERENCES BAD-CS ALL'))[0], qr/ NO \[BADCHARSET/,
     'THREAD: unknown charset');

# ---- an empty mailbox ----------------------------------------------------------------

like((imap($c, 'EXAMINE Empty'))[0], qr/ OK /, 'examine an empty mailbox');
is(result($c, 'SEARCH ALL'), '', 'SEARCH ALL of nothing');
is(result($c, 'SEARCH 1:*'), '', 'SEARCH 1:* of nothing');
is(result($c, 'UID SEARCH UID 1:* BODY x'), '', 'UID SEARCH of nothing');
is(result($c, 'SORT (DATE) UTF-8 ALL', 'SORT'), '', 'SORT of nothing');
is(result($c, 'THREAD REFERENCES UTF-8 ALL', 'THREAD'), '', 'THREAD of nothing');
($tagged, $lines) = imap($c, 'SEARCH RETURN (MIN MAX COUNT ALL) ALL');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") COUNT 0"], 'ESEARCH of nothing')
    or diag(explain($lines));

# ---- batches: 700 messages ---------------------------------------------------------

like((imap($c, 'EXAMINE Many'))[0], qr/ OK /, 'examine Many');
is(result($c, 'SEARCH BODY "value 4893 "'), '699', 'a body across batches');
is(result($c, 'SEARCH SUBJECT "number 25" NOT SUBJECT "number 25 "'),
   join(' ', 25, 250 .. 259), 'a subject across batches');
is(result($c, 'SEARCH 255:258 FROM s25'), '255 256 257 258', 'a set across a batch boundary');
is(result($c, 'SEARCH RETURN (COUNT) ALL', 'ESEARCH'), '(TAG "a' . $tagn . '") COUNT 700');
my $all = result($c, 'SEARCH ALL');
is($all, join(' ', 1 .. 700), 'SEARCH ALL of 700');
is(result($c, 'SORT (REVERSE SUBJECT) UTF-8 SUBJECT "number 69"', 'SORT'),
   '699 698 697 696 695 694 693 692 691 690 69', 'SORT across batches');

# ---- answers longer than the output's ceiling, to a client that reads late -------------

my $c3 = $t->connect(port => 1);
$c3->line;
imap($c3, 'LOGIN alice@example.org secret');
like((imap($c3, 'EXAMINE Large'))[0], qr/ OK /, "examine $LARGE messages");
$c3->send("l1 SEARCH ALL\r\nl2 SORT (REVERSE SUBJECT) UTF-8 ALL\r\n"
          . "l3 THREAD ORDEREDSUBJECT UTF-8 ALL\r\nl4 SEARCH RETURN (ALL COUNT) SUBJECT s7\r\n"
          . "l5 NOOP\r\n");
select(undef, undef, undef, 1);
my %got;
while (defined(my $l = $c3->line(60))) {
    my ($word) = $l =~ /^(\* \S+|l\d \S+)/;
    $got{$word // $l} = $l;
    last if $l =~ /^l5 /;
}
is($got{'* SEARCH'}, '* SEARCH ' . join(' ', 1 .. $LARGE), "SEARCH ALL of $LARGE");
my %subj = map { $_ => 's' . ($_ % 1000) } 1 .. $LARGE;
is($got{'* SORT'}, '* SORT ' . join(' ', sort { $subj{$b} cmp $subj{$a} || $a <=> $b } 1 .. $LARGE),
   "SORT of $LARGE");
my $threads = join('', map { my $r = $_; '(' . $r . ' '
    . join('', map { '(' . ($r + 1000 * $_) . ')' } 1 .. int(($LARGE - $r) / 1000)) . ')' } 1 .. 1000);
is($got{'* THREAD'}, "* THREAD $threads", "THREAD of $LARGE");
my @s7 = grep { $subj{$_} =~ /s7/ } 1 .. $LARGE;
my @ranges;
for my $n (@s7) {
    if (@ranges && $ranges[-1][1] + 1 == $n) { $ranges[-1][1] = $n } else { push @ranges, [$n, $n] }
}
my $compact = join(',', map { $_->[0] == $_->[1] ? $_->[0] : "$_->[0]:$_->[1]" } @ranges);
is($got{'* ESEARCH'}, '* ESEARCH (TAG "l4") COUNT ' . scalar(@s7) . " ALL $compact",
   'ESEARCH ALL as a compact set');
like($got{'l5 OK'} // '', qr/^l5 OK/, 'the session goes on');

# ---- IMAP4rev2: ESEARCH always -------------------------------------------------------

my $c2 = $t->connect(port => 1);
$c2->line;
imap($c2, 'LOGIN alice@example.org secret');
like((imap($c2, 'ENABLE IMAP4rev2'))[0], qr/ OK /, 'ENABLE IMAP4rev2');
imap($c2, 'EXAMINE INBOX');
($tagged, $lines) = imap($c2, 'SEARCH UNSEEN');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") ALL 3:5,7"], 'IMAP4rev2: SEARCH answers ESEARCH')
    or diag(explain($lines));
($tagged, $lines) = imap($c2, 'UID SEARCH DRAFT');
is_deeply($lines, ["* ESEARCH (TAG \"a$tagn\") UID ALL 5"], 'IMAP4rev2: UID SEARCH')
    or diag(explain($lines));

# ---- python imaplib, as a client would ------------------------------------------------

($rc, $out) = $m->python(<<'PY', port => $t->port(1));
import imaplib
M = imaplib.IMAP4('127.0.0.1', PORT)
M.login('alice@example.org', 'secret')
M.select('INBOX')
M.literal = '\u00e9t\u00e9'.encode()
print(M.search('UTF-8', 'BODY'))
print(M.uid('SEARCH', 'CHARSET', 'UTF-8', 'OR', 'FROM', 'frank', 'BCC', 'hidden'))
print(M.sort('(REVERSE DATE)', 'UTF-8', 'UNSEEN'))
M.select('Threads')
print(M.thread('REFERENCES', 'UTF-8', 'ALL'))
M.logout()
PY
is($rc, 0, 'imaplib runs') or diag($out);
like($out, qr/^\('OK', \[b'3 4'\]\)$/m, 'imaplib search with a UTF-8 literal') or diag($out);
like($out, qr/^\('OK', \[b'6 7'\]\)$/m, 'imaplib uid search') or diag($out);
like($out, qr/^\('OK', \[b'7 5 4 3'\]\)$/m, 'imaplib sort') or diag($out);
like($out, qr/^\('OK', \[b'\(1 \(2 3\)\(5\)\)\(4 9\)\(6\)\(\(7\)\(8\)\)'\]\)$/m, 'imaplib thread')
    or diag($out);

imap($c, 'LOGOUT');
imap($c2, 'LOGOUT');
$t->done_testing;
