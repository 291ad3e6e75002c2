#!/usr/bin/perl

# FETCH and UID FETCH against known messages imported with facteurctl: a
# plain message, a multipart/mixed with a multipart/alternative (one part
# quoted-printable) and a base64 attachment holding NULs, a forwarded
# message/rfc822 with parts of its own, an unknown transfer encoding, and
# a raw NUL.  Every item is checked byte for byte where it matters: FLAGS,
# UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY, BODYSTRUCTURE, the
# macros, BODY[section]<partial> of each kind (HEADER.FIELDS[.NOT] too,
# nested parts), RFC822.*, BINARY / BINARY.PEEK / BINARY.SIZE (decoded
# base64 and quoted-printable, literal8 for NULs, UNKNOWN-CTE), \Seen set
# by BODY[] and not by BODY.PEEK[] nor in a read-only mailbox, UID FETCH,
# MODSEQ and CHANGEDSINCE, VANISHED (EARLIER) and EXPUNGEISSUED, BAD for
# bad sets and items, pipelining, parts of 200-300 KB (decoders across
# 64 KB reads), python3 imaplib as a real client; then FETCH of 2,000
# bodies by a client that reads slowly while the worker's memory is
# watched, and clients that leave in the middle of a FETCH.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MIME::Base64 qw(encode_base64);
use MIME::QuotedPrint qw(encode_qp);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap lmdb/);

# inline_max 2k: small messages live in LMDB, the others in blob files
# (whose pages are not the worker's: its RSS measures its own memory)
$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 1;
auth_directory var/auth;
storage lmdb { path var/mail; inline_max 2k; }
imap { server { listen 127.0.0.1:%%PORT_1%%; } auth_plaintext on; }
EOF
mkdir $t->testdir . '/var';
my $m = Facteur::Mail->new($t);
$m->add_user('bob@example.org', 'bob secret');

# ---- the messages ---------------------------------------------------------

my $plain = <<'EOF';
From: Alice <alice@example.org>
To: Bob <bob@example.org>, carol@example.org
Subject: Hello
Date: Mon, 1 Jan 2024 10:00:00 +0000
Message-ID: <m1@example.org>
X-Folded: first
 second line

Hello Bob.
Line two.
EOF

my $blob = join '', map { chr($_ % 256) } 0 .. 511;     # NULs, every byte value
my $b64 = encode_base64($blob);                          # 76-column lines
my $qp_raw = "Caf=C3=A9 cr=c3=a8me, soft=\nbreak and trailing   \n=3D sign bad =ZZ";
my $qp_decoded = "Caf\xc3\xa9 cr\xc3\xa8me, softbreak and trailing\r\n= sign bad =ZZ";

my $multi = <<"EOF";
From: Carol <carol\@example.org>
To: bob\@example.org
Subject: Report
Date: Tue, 2 Jan 2024 11:30:00 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is a multi-part message.
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

$qp_raw
--inner
Content-Type: text/html; charset=utf-8

<p>Caf\xc3\xa9</p>
--inner--

--outer
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="data.bin"

$b64--outer--
EOF

my $nested = <<'EOF';
From: Dave <dave@example.org>
To: bob@example.org
Subject: Fwd: inner
Date: Wed, 3 Jan 2024 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b3"

--b3
Content-Type: text/plain

See attached.
--b3
Content-Type: message/rfc822

From: Eve <eve@example.org>
To: dave@example.org
Subject: inner
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b4"

--b4
Content-Type: text/plain

inner plain
--b4
Content-Type: text/html

<b>inner html</b>
--b4--
--b3--
EOF

my $uue = <<'EOF';
From: Frank <frank@example.org>
Subject: uuencoded
MIME-Version: 1.0
Content-Type: text/plain
Content-Transfer-Encoding: x-uuencode

begin 644 x
`
end
EOF

my @msgs = ($plain, $multi, $nested, $uue);
my @dates = ('Mon Jan  1 10:00:00 2024', 'Tue Jan  2 10:30:00 2024',
             'Wed Jan  3 12:00:00 2024', 'Thu Jan  4 08:05:09 2024');
my $mbox = join "\n", map { "From sender\@example.org $dates[$_]\n$msgs[$_]" } 0 .. $#msgs;
$t->write_file('inbox.mbox', $mbox);
my ($rc, $out) = $m->ctl('import', 'mbox', 'bob@example.org', $t->testdir . '/inbox.mbox');
is($rc, 0, 'four messages imported into INBOX') or diag($out);
$m->ctl(qw(mailbox create bob@example.org), $_) for qw(Vanish Big);
$m->ctl('import', 'mbox', 'bob@example.org', $t->testdir . '/inbox.mbox', '--mailbox=Vanish');

# as stored (and served): CRLF
my @raw = map { (my $r = $_) =~ s/\n/\r\n/g; $r } @msgs;

# a raw NUL (and 8-bit) through a Maildir file, which is read as bytes
my $nul_msg = "Subject: nul\r\nX-Nul: a\0b\r\nContent-Type: application/octet-stream\r\n\r\n"
    . "ab\0cd\r\n\0\xff\r\n";
mkdir $_ for map { $t->testdir . "/md/$_" } '', 'cur', 'new', 'tmp';
$t->write_file('md/cur/1700000000.1.host:2,', $nul_msg);
($rc, $out) = $m->ctl('import', 'maildir', 'bob@example.org', $t->testdir . '/md',
                      '--mailbox=Nul');
is($rc, 0, 'a message with NUL bytes imported from a Maildir') or diag($out);

# 2,000 messages of about 20 KB for the slow reader
my $big_body = join '', map { sprintf("%05d %s\n", $_, 'x' x 66) } 1 .. 280;
my $big = join "\n", map { "From s\@example.org Fri Jan  5 00:00:00 2024\n"
                           . "Subject: big $_\nFrom: s\@example.org\n\n$big_body" } 1 .. 2000;
$t->write_file('big.mbox', $big);
($rc, $out) = $m->ctl('import', 'mbox', 'bob@example.org', $t->testdir . '/big.mbox',
                      '--mailbox=Big');
is($rc, 0, '2,000 messages imported into Big') or diag($out);
(my $big_raw = "Subject: big 1\nFrom: s\@example.org\n\n$big_body") =~ s/\n/\r\n/g;

# a message whose parts span many 64 KB reads: decoders cross chunk boundaries
srand(42);
my @alphabet = ('a' .. 'z', '0' .. '9', ' ', ' ', '=', "\t", '.', "\xe9", "\xff");
my $large_text = join "\n", map { join '', map { $alphabet[rand @alphabet] } 1 .. int(rand 150) }
    1 .. 3000;
my $large_bin = join '', map { chr(int rand 256) } 1 .. 300000;
my $large = "From: big\@example.org\nSubject: large parts\nMIME-Version: 1.0\n"
    . "Content-Type: multipart/mixed; boundary=\"LB\"\n\n--LB\n"
    . "Content-Type: text/plain; charset=iso-8859-1\n"
    . "Content-Transfer-Encoding: quoted-printable\n\n"
    . encode_qp($large_text, "\n") . "\n--LB\nContent-Type: application/octet-stream\n"
    . "Content-Transfer-Encoding: base64\n\n" . encode_base64($large_bin) . "--LB--\n";
$t->write_file('large.mbox', "From big\@example.org Sat Jan  6 00:00:00 2024\n$large");
$m->ctl(qw(mailbox create bob@example.org Large));
($rc, $out) = $m->ctl('import', 'mbox', 'bob@example.org', $t->testdir . '/large.mbox',
                      '--mailbox=Large');
is($rc, 0, 'a message with 200 KB of quoted-printable and 300 KB of base64') or diag($out);
(my $large_raw = $large) =~ s/\n/\r\n/g;
(my $large_decoded = $large_text) =~ s/\n/\r\n/g;

$t->run;

# ---- a client that understands literals ------------------------------------------

sub client {
    my $c = $t->connect(port => 1, timeout => 20);
    $c->check(qr/^\* OK /, 'greeting');
    return $c;
}

# n bytes from the client's buffer (reading more as needed)
sub read_bytes {
    my ($c, $n, $secs) = @_;
    my $deadline = time + Facteur::Test::timeout($secs // 20);
    while (length $c->{buf} < $n) {
        return undef unless $c->_fill($deadline);
    }
    return substr($c->{buf}, 0, $n, '');
}

# send a command; (tagged line, untagged responses with their literals inline)
sub run {
    my ($c, $tag, $line) = @_;
    $c->cmd("$tag $line");
    return collect($c, $tag);
}

# what comes up to TAG's reply
sub collect {
    my ($c, $tag) = @_;
    my (@resp, $cur);
    $cur = '';
    while (defined(my $l = $c->line(20))) {
        $cur .= $l;
        if ($l =~ /~?\{(\d+)\}\z/) {
            my $data = read_bytes($c, $1);
            return (undef, @resp) unless defined $data;
            $cur .= "\r\n" . $data;
            next;
        }
        return ($cur, @resp) if $cur =~ /^\Q$tag\E /;
        push @resp, $cur;
        $cur = '';
    }
    return (undef, @resp);
}

# the items of "* n FETCH (...)": { NAME => value } (strings unquoted, literals
# as their bytes, lists as written); {_msn} the number, {_lit8}{NAME} literal8
sub items {
    my ($r) = @_;
    my %h;
    return \%h unless defined $r && $r =~ /\A\* (\d+) FETCH \(/g;
    $h{_msn} = $1;
    for (;;) {
        last if $r =~ /\G\)\z/gc;
        $r =~ /\G ?/gc;
        $r =~ /\G([A-Z0-9.]+(?:\[[^\]]*\](?:<\d+>)?)?) /gc or last;
        my $name = $1;
        $h{$name} = value(\$r, \%h, $name);
    }
    return \%h;
}

sub value {
    my ($r, $h, $name) = @_;
    if ($$r =~ /\G(~?)\{(\d+)\}\r\n/gc) {
        $h->{_lit8}{$name} = 1 if $name && $1;
        my $v = substr($$r, pos($$r), $2);
        pos($$r) += $2;
        return $v;
    }
    if ($$r =~ /\G"((?:[^"\\]|\\.)*)"/gc) {
        (my $v = $1) =~ s/\\(.)/$1/g;
        return $v;
    }
    if ($$r =~ /\G\(/gc) {
        my $start = pos($$r) - 1;
        my $depth = 1;
        while ($depth) {
            if ($$r =~ /\G[^()"{]+/gc) { next }
            if ($$r =~ /\G\(/gc) { $depth++; next }
            if ($$r =~ /\G\)/gc) { $depth--; next }
            if ($$r =~ /\G(?="|\{)/gc) { value($r); next }
            if ($$r =~ /\G./gcs) { next }
            last;
        }
        return substr($$r, $start, pos($$r) - $start);
    }
    $$r =~ /\G([^ ()]*)/gc;
    return $1;
}

# one FETCH of one message: (tagged line, items)
sub fetch1 {
    my ($c, $tag, $line) = @_;
    my ($tagged, @resp) = run($c, $tag, $line);
    my @fetch = grep { /^\* \d+ FETCH / } @resp;
    return ($tagged, items($fetch[0]), scalar(@fetch), @resp);
}

my $c = client();
my ($tagged, @r) = run($c, 'l', 'LOGIN bob@example.org "bob secret"');
like($tagged, qr/^l OK /, 'LOGIN');
($tagged, @r) = run($c, 's', 'SELECT INBOX');
like($tagged, qr/^s OK \[READ-WRITE\]/, 'SELECT INBOX');
ok((grep { $_ eq '* 4 EXISTS' } @r), 'four messages');


# the bytes of S after FROM, up to TO (the end without it)
sub cut {
    my ($s, $from, $to) = @_;
    my $i = index($s, $from);
    die "no '$from'" if $i < 0;
    $i += length $from;
    my $j = defined $to ? index($s, $to, $i) : length $s;
    die "no '$to'" if $j < 0;
    return substr($s, $i, $j - $i);
}

# one FETCH of all the items of SPEC ([sent, answered name, bytes, literal8])
sub check_items {
    my ($c, $msn, $what, @spec) = @_;
    my ($tagged, $h) = fetch1($c, 'i', "FETCH $msn (" . join(' ', map { $_->[0] } @spec) . ')');
    like($tagged, qr/^i OK FETCH completed$/, "$what: FETCH $msn with " . scalar(@spec)
         . ' body items');
    for my $s (@spec) {
        my ($sent, $name, $want, $lit8) = @$s;
        my $got = $h->{$name};
        ok(defined $got && $got eq $want, "$what: $sent")
            or diag(explain({ got => $got, want => $want, items => [sort keys %$h] }));
        is(!!$h->{_lit8}{$name}, !!$lit8, "$what: $sent is " . ($lit8 ? '' : 'not ')
           . 'a literal8') if $name =~ /^BINARY\[/;
    }
    ok(!exists $h->{FLAGS}, "$what: no FLAGS (PEEK sets no \\Seen)");
}

# ---- metadata items ------------------------------------------------------------

($tagged, @r) = run($c, 'a', 'FETCH 1:4 (FLAGS INTERNALDATE RFC822.SIZE)');
like($tagged, qr/^a OK FETCH completed$/, 'FETCH 1:4 (FLAGS INTERNALDATE RFC822.SIZE)');
my @h = map { items($_) } grep { /^\* \d+ FETCH / } @r;
is_deeply([map { $_->{_msn} } @h], [1 .. 4], 'four responses, in MSN order');
is_deeply([map { $_->{FLAGS} } @h], [('()') x 4], 'FLAGS: none yet');
is_deeply([map { $_->{INTERNALDATE} } @h],
          [' 1-Jan-2024 10:00:00 +0000', ' 2-Jan-2024 10:30:00 +0000',
           ' 3-Jan-2024 12:00:00 +0000', ' 4-Jan-2024 08:05:09 +0000'],
          'INTERNALDATE: "dd-Mon-yyyy hh:mm:ss +zzzz", the mbox dates');
is_deeply([map { $_->{'RFC822.SIZE'} } @h], [map { length } @raw],
          'RFC822.SIZE: the size as stored (CRLF)');
ok(!(grep { exists $_->{UID} } @h), 'FETCH without UID: no UID');

my ($h, $count);
($tagged, $h) = fetch1($c, 'b', 'FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)');
is($h->{ENVELOPE}, '("Mon, 1 Jan 2024 10:00:00 +0000" "Hello" (("Alice" NIL "alice" '
   . '"example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" '
   . '"example.org")) (("Bob" NIL "bob" "example.org")(NIL NIL "carol" "example.org")) '
   . 'NIL NIL NIL "<m1@example.org>")', 'ENVELOPE (from the cached metadata)');
is($h->{BODY}, '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 23 2)', 'BODY');
is($h->{BODYSTRUCTURE}, '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 23 2 NIL NIL '
   . 'NIL NIL)', 'BODYSTRUCTURE');
($tagged, $h) = fetch1($c, 'c', 'FETCH 2 (BODYSTRUCTURE BODY)');
is($h->{BODYSTRUCTURE}, '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 68 '
   . '3 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 1 NIL NIL NIL NIL) '
   . '"alternative" ("boundary" "inner") NIL NIL NIL)("application" "octet-stream" ("name" '
   . '"data.bin") NIL NIL "base64" 700 NIL ("attachment" ("filename" "data.bin")) NIL NIL) '
   . '"mixed" ("boundary" "outer") NIL NIL NIL)', 'BODYSTRUCTURE of the multipart');
like($h->{BODY},
     qr/^\(\(\("text" "plain" .* "alternative"\)\("application" "octet-stream" .*\) "mixed"\)$/,
     'BODY of the multipart') or diag($h->{BODY});
unlike($h->{BODY}, qr/attachment|boundary/, 'BODY has no extension data');

for my $macro (['FAST', 'FLAGS INTERNALDATE RFC822.SIZE'],
               ['ALL', 'ENVELOPE FLAGS INTERNALDATE RFC822.SIZE'],
               ['FULL', 'BODY ENVELOPE FLAGS INTERNALDATE RFC822.SIZE'])
{
    ($tagged, $h) = fetch1($c, 'm', "FETCH 3 $macro->[0]");
    is(join(' ', sort grep { !/^_/ } keys %$h), $macro->[1], "macro $macro->[0]");
}

# ---- sections of a plain message ---------------------------------------------------

my $hdr0 = substr($raw[0], 0, index($raw[0], "\r\n\r\n") + 4);
my $text0 = substr($raw[0], length $hdr0);
my $folded = "X-Folded: first\r\n second line\r\n\r\n";
check_items($c, 1, 'plain',
    ['BODY.PEEK[]', 'BODY[]', $raw[0]],
    ['BODY.PEEK[HEADER]', 'BODY[HEADER]', $hdr0],
    ['BODY.PEEK[TEXT]', 'BODY[TEXT]', $text0],
    ['BODY.PEEK[1]', 'BODY[1]', $text0],
    ['body.peek[header.fields (From to)]', 'BODY[HEADER.FIELDS (FROM TO)]',
     "From: Alice <alice\@example.org>\r\nTo: Bob <bob\@example.org>, carol\@example.org\r\n\r\n"],
    ['BODY.PEEK[HEADER.FIELDS.NOT (From To Subject Date Message-ID)]',
     'BODY[HEADER.FIELDS.NOT (FROM TO SUBJECT DATE MESSAGE-ID)]', $folded],
    ['BODY.PEEK[HEADER.FIELDS ("x-folded" Nope)]', 'BODY[HEADER.FIELDS (X-FOLDED NOPE)]', $folded],
    ['BODY.PEEK[HEADER.FIELDS (Nope)]', 'BODY[HEADER.FIELDS (NOPE)]', "\r\n"],
    ['BODY.PEEK[]<0.10>', 'BODY[]<0>', substr($raw[0], 0, 10)],
    ['BODY.PEEK[TEXT]<6.3>', 'BODY[TEXT]<6>', 'Bob'],
    ['BODY.PEEK[TEXT]<20.100>', 'BODY[TEXT]<20>', substr($text0, 20)],
    ['BODY.PEEK[]<5000.10>', 'BODY[]<5000>', ''],
    ['BODY.PEEK[HEADER.FIELDS (Subject)]<3.5>', 'BODY[HEADER.FIELDS (SUBJECT)]<3>', 'ject:'],
    ['RFC822.HEADER', 'RFC822.HEADER', $hdr0],
    ['BINARY.PEEK[]', 'BINARY[]', $raw[0]],
    ['BINARY.PEEK[1]', 'BINARY[1]', $text0],
    ['BINARY.SIZE[1]', 'BINARY.SIZE[1]', length $text0],
    ['BINARY.SIZE[]', 'BINARY.SIZE[]', length $raw[0]],
);

# ---- multipart/mixed: alternative (quoted-printable, html) and base64 --------------------

my $p11 = cut($raw[1], "quoted-printable\r\n\r\n", "\r\n--inner\r\n");
my $p2 = cut($raw[1], "filename=\"data.bin\"\r\n\r\n", "\r\n--outer--");
check_items($c, 2, 'multipart',
    ['BODY.PEEK[TEXT]', 'BODY[TEXT]', cut($raw[1], "\r\n\r\n")],
    ['BODY.PEEK[1]', 'BODY[1]', cut($raw[1], "boundary=\"inner\"\r\n\r\n", "\r\n--outer\r\n")],
    ['BODY.PEEK[1.1]', 'BODY[1.1]', $p11],
    ['BODY.PEEK[1.1.MIME]', 'BODY[1.1.MIME]', "Content-Type: text/plain; charset=utf-8\r\n"
     . "Content-Transfer-Encoding: quoted-printable\r\n\r\n"],
    ['BODY.PEEK[1.2]', 'BODY[1.2]', "<p>Caf\xc3\xa9</p>"],
    ['BODY.PEEK[2]', 'BODY[2]', $p2],
    ['BODY.PEEK[3]', 'BODY[3]', ''],
    ['BINARY.PEEK[1.1]', 'BINARY[1.1]', $qp_decoded],
    ['BINARY.SIZE[1.1]', 'BINARY.SIZE[1.1]', length $qp_decoded],
    ['BINARY.PEEK[1.1]<5.4>', 'BINARY[1.1]<5>', substr($qp_decoded, 5, 4)],
    ['BINARY.PEEK[1.2]', 'BINARY[1.2]', "<p>Caf\xc3\xa9</p>"],
    ['BINARY.PEEK[2]', 'BINARY[2]', $blob, 1],
    ['BINARY.SIZE[2]', 'BINARY.SIZE[2]', 512],
    ['BINARY.PEEK[2]<1.3>', 'BINARY[2]<1>', "\x01\x02\x03"],
    ['BINARY.PEEK[2]<255.3>', 'BINARY[2]<255>', "\xff\x00\x01", 1],
    ['BINARY.PEEK[2]<600.10>', 'BINARY[2]<600>', ''],
    ['BINARY.PEEK[1]', 'BINARY[1]', cut($raw[1], "boundary=\"inner\"\r\n\r\n", "\r\n--outer\r\n")],
    ['BINARY.PEEK[9]', 'BINARY[9]', ''],
    ['BINARY.SIZE[9]', 'BINARY.SIZE[9]', 0],
);

# ---- a forwarded message/rfc822 with parts of its own ----------------------------------

my $inner = cut($raw[2], "message/rfc822\r\n\r\n", "\r\n--b3--");
my $inner_hdr = substr($inner, 0, index($inner, "\r\n\r\n") + 4);
check_items($c, 3, 'nested',
    ['BODY.PEEK[1]', 'BODY[1]', 'See attached.'],
    ['BODY.PEEK[2]', 'BODY[2]', $inner],
    ['BODY.PEEK[2.HEADER]', 'BODY[2.HEADER]', $inner_hdr],
    ['BODY.PEEK[2.TEXT]', 'BODY[2.TEXT]', substr($inner, length $inner_hdr)],
    ['BODY.PEEK[2.MIME]', 'BODY[2.MIME]', "Content-Type: message/rfc822\r\n\r\n"],
    ['BODY.PEEK[2.1]', 'BODY[2.1]', 'inner plain'],
    ['BODY.PEEK[2.2]', 'BODY[2.2]', '<b>inner html</b>'],
    ['BODY.PEEK[2.1.MIME]', 'BODY[2.1.MIME]', "Content-Type: text/plain\r\n\r\n"],
    ['BODY.PEEK[2.HEADER.FIELDS (SUBJECT from)]', 'BODY[2.HEADER.FIELDS (SUBJECT FROM)]',
     "From: Eve <eve\@example.org>\r\nSubject: inner\r\n\r\n"],
    ['BODY.PEEK[HEADER.FIELDS (Subject)]', 'BODY[HEADER.FIELDS (SUBJECT)]',
     "Subject: Fwd: inner\r\n\r\n"],
    ['BODY.PEEK[1.TEXT]', 'BODY[1.TEXT]', ''],
    ['BODY.PEEK[2.1]<6.5>', 'BODY[2.1]<6>', 'plain'],
    ['BINARY.PEEK[2]', 'BINARY[2]', $inner],
    ['BINARY.PEEK[2.1]', 'BINARY[2.1]', 'inner plain'],
);

# ---- an unknown transfer encoding ------------------------------------------------

($tagged, $h) = fetch1($c, 'u', 'FETCH 4 BINARY.PEEK[1]');
like($tagged, qr/^u NO \[UNKNOWN-CTE\] /, 'BINARY of x-uuencode: NO [UNKNOWN-CTE]');
($tagged, $h) = fetch1($c, 'u', 'FETCH 4 BINARY.SIZE[1]');
like($tagged, qr/^u NO \[UNKNOWN-CTE\] /, 'BINARY.SIZE of x-uuencode: NO [UNKNOWN-CTE]');
($tagged, $h) = fetch1($c, 'u', 'FETCH 4 BODY.PEEK[1]');
is($h->{'BODY[1]'}, "begin 644 x\r\n`\r\nend\r\n", 'BODY[1] of it is served as it is');
($tagged, @r) = run($c, 'u', 'FETCH 3:4 BINARY.PEEK[1]');
like($tagged, qr/^u NO \[UNKNOWN-CTE\] /, 'FETCH 3:4 BINARY[1]: NO [UNKNOWN-CTE]...');
is(items($r[0])->{'BINARY[1]'}, 'See attached.', '... after answering message 3');

($tagged, @r) = run($c, 'f', 'FETCH 1:4 FLAGS');
is_deeply([map { items($_)->{FLAGS} } grep { /FETCH/ } @r], [('()') x 4],
          'nothing became \Seen through PEEK, RFC822.HEADER or BINARY.SIZE');

# ---- \Seen ----------------------------------------------------------------------------

($tagged, $h) = fetch1($c, 'a', 'FETCH 1 BODY[TEXT]');
is($h->{FLAGS}, '(\Seen)', 'BODY[TEXT] sets \Seen, and FLAGS comes with it');
is($h->{'BODY[TEXT]'}, $text0, 'with the text');
($tagged, $h) = fetch1($c, 'b', 'FETCH 1 BODY[TEXT]');
ok(!exists $h->{FLAGS}, 'again: \Seen is there already, no FLAGS');
($tagged, $h) = fetch1($c, 'c', 'FETCH 2 RFC822.TEXT');
is($h->{FLAGS}, '(\Seen)', 'RFC822.TEXT sets \Seen');
is($h->{'RFC822.TEXT'}, cut($raw[1], "\r\n\r\n"), 'RFC822.TEXT is the text');
($tagged, $h) = fetch1($c, 'd', 'FETCH 3 (RFC822 FLAGS)');
is($h->{FLAGS}, '(\Seen)', 'RFC822 sets \Seen; FLAGS asked and implied: once');
is($h->{RFC822}, $raw[2], 'RFC822 is the message');
($tagged, @r) = run($c, 'e', 'FETCH 1:4 FLAGS');
is_deeply([map { items($_)->{FLAGS} } grep { /FETCH/ } @r],
          ['(\Seen)', '(\Seen)', '(\Seen)', '()'], 'FLAGS after');

# ---- pipelined commands; a literal inside a section --------------------------------

$c->send("p1 FETCH 1 (UID)\r\np2 FETCH 2 BODY.PEEK[1.2]\r\np3 NOOP\r\n");
my @lines;
while (defined(my $l = $c->line(10))) {
    push @lines, $l;
    last if $l =~ /^p3 /;
}
is_deeply([grep { /^p\d / } @lines], ['p1 OK FETCH completed', 'p2 OK FETCH completed',
          'p3 OK NOOP completed'], 'pipelined FETCHes and a NOOP, answered in order')
    or diag(explain(\@lines));
$c->send("q FETCH 1 BODY.PEEK[HEADER.FIELDS ({7}\r\n");
$c->check(qr/^\+ /, 'a literal in a section: continuation');
$c->cmd('Subject)]');
($tagged, @r) = collect($c, 'q');
is(items($r[0])->{'BODY[HEADER.FIELDS (SUBJECT)]'}, "Subject: Hello\r\n\r\n",
   'a header name sent as a literal') or diag(explain([$tagged, @r]));

# ---- UID FETCH -----------------------------------------------------------------------

($tagged, @r) = run($c, 'u', 'UID FETCH 2 FLAGS');
is_deeply([$tagged, @r], ['u OK UID FETCH completed', '* 2 FETCH (UID 2 FLAGS (\Seen))'],
          'UID FETCH sends UID though not asked');
($tagged, $h) = fetch1($c, 'u', 'UID FETCH 3 (UID BODY.PEEK[2.1])');
is_deeply([$h->{_msn}, $h->{UID}, $h->{'BODY[2.1]'}], [3, 3, 'inner plain'],
          'UID FETCH with UID asked: once');
($tagged, @r) = run($c, 'u', 'UID FETCH 9:20 FLAGS');
is_deeply([$tagged, @r], ['u OK UID FETCH completed'], 'UID FETCH of UIDs not there: OK, nothing');
($tagged, @r) = run($c, 'u', 'UID FETCH 3:* UID');
is_deeply([$tagged, @r], ['u OK UID FETCH completed', '* 3 FETCH (UID 3)', '* 4 FETCH (UID 4)'],
          'UID FETCH 3:*');
($tagged, @r) = run($c, 'u', 'FETCH 2,4 (UID)');
is_deeply([$tagged, @r], ['u OK FETCH completed', '* 2 FETCH (UID 2)', '* 4 FETCH (UID 4)'],
          'FETCH 2,4 (UID)');

# ---- MODSEQ, CHANGEDSINCE ------------------------------------------------------------

($tagged, @r) = run($c, 'm', 'FETCH 1:4 (MODSEQ)');
like($r[0], qr/^\* OK \[HIGHESTMODSEQ (\d+)\] /, 'MODSEQ enables CONDSTORE: HIGHESTMODSEQ first');
my @modseq = map { items($_)->{MODSEQ} =~ /^\((\d+)\)$/ ? $1 : undef } grep { /FETCH/ } @r;
is(scalar(grep { defined } @modseq), 4, 'MODSEQ (n) for each message') or diag(explain(\@r));
my ($highest) = sort { $b <=> $a } @modseq;
($tagged, @r) = run($c, 'm', "FETCH 1:4 (FLAGS) (CHANGEDSINCE $highest)");
is_deeply([$tagged, @r], ['m OK FETCH completed'], 'CHANGEDSINCE the highest: nothing');
($tagged, $h) = fetch1($c, 'm', 'FETCH 4 BODY[HEADER]');
my ($new) = ($h->{MODSEQ} // '') =~ /^\((\d+)\)$/;
ok($new && $new > $highest, 'under CONDSTORE, a FETCH that sets \Seen sends the new MODSEQ...');
is_deeply([$h->{UID}, $h->{FLAGS}], [4, '(\Seen)'], '... and UID and FLAGS');
($tagged, @r) = run($c, 'm', "FETCH 1:4 (FLAGS) (CHANGEDSINCE $highest)");
is_deeply([$tagged, @r], ['m OK FETCH completed', "* 4 FETCH (FLAGS (\\Seen) MODSEQ ($new))"],
          'CHANGEDSINCE: only the message changed since, with its MODSEQ');
($tagged, @r) = run($c, 'm', "UID FETCH 1:* (FLAGS) (CHANGEDSINCE $modseq[0])");
is_deeply([map { /^\* \d+ FETCH \(UID (\d+) FLAGS \(\\Seen\) MODSEQ \(\d+\)\)$/ ? $1 : $_ } @r],
          [grep { $modseq[$_ - 1] > $modseq[0] || $_ == 4 } 1 .. 4],
          'UID FETCH CHANGEDSINCE the MODSEQ of message 1: those with a higher one');

# ---- errors ---------------------------------------------------------------------------

for my $bad ('FETCH 0 FLAGS', 'FETCH 5 FLAGS', 'FETCH 4294967296 FLAGS', 'FETCH 1:5 FLAGS',
             'FETCH 1,x FLAGS', 'FETCH 1: FLAGS', 'UID FETCH 0 FLAGS', 'UID FETCH 4294967296 FLAGS')
{
    ($tagged) = run($c, 'x', $bad);
    is($tagged, 'x BAD Invalid sequence set', "$bad: BAD");
}
for my $bad ('FETCH 1 (FOO)', 'FETCH 1 BODY[1.]', 'FETCH 1 BODY[.1]', 'FETCH 1 BODY[0]',
             'FETCH 1 BODY[01]', 'FETCH 1 BODY[MIME]', 'FETCH 1 BODY[TEXT.X]',
             'FETCH 1 BODY[HEADER.FIELDS]', 'FETCH 1 BODY[HEADER.FIELDS ()]',
             'FETCH 1 BODY[HEADER.FIELDS (A]', 'FETCH 1 BODY[HEADER.FIELDS.NOTX (A)]',
             'FETCH 1 BODY[]<1>', 'FETCH 1 BODY[]<0.0>', 'FETCH 1 BODY[]<a.b>',
             'FETCH 1 BODY[]<1.4294967296>', 'FETCH 1 BINARY[HEADER]', 'FETCH 1 BINARY[1.MIME]',
             'FETCH 1 BINARY.SIZE[1]<0.1>', 'FETCH 1 BODY.PEEK', 'FETCH 1 (ALL)', 'FETCH 1 ()',
             'FETCH 1 "FLAGS"', 'FETCH 1 RFC822.PEEK', 'FETCH 1 BODY[1]x')
{
    ($tagged) = run($c, 'x', $bad);
    like($tagged, qr/^x BAD /, "$bad: BAD");
}
for my $bad ('FETCH 1', 'FETCH 1 FLAGS (FOO)', 'FETCH 1 FLAGS (CHANGEDSINCE)',
             'FETCH 1 FLAGS (CHANGEDSINCE -1)', 'FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)',
             'UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)', 'UID FETCH 1 FLAGS (VANISHED)',
             'FETCH 1 FLAGS (CHANGEDSINCE 1) x')
{
    ($tagged) = run($c, 'x', $bad);
    like($tagged, qr/^x BAD /, "$bad: BAD");
}
($tagged, @r) = run($c, 'y', 'FETCH 1 (FLAGS UID)');
is_deeply([$tagged, @r], ['y OK FETCH completed', '* 1 FETCH (UID 1 FLAGS (\Seen))'],
          'the session goes on after the errors');

# ---- NUL bytes; a read-only mailbox ------------------------------------------------------

($tagged) = run($c, 'e', 'EXAMINE Nul');
like($tagged, qr/^e OK \[READ-ONLY\]/, 'EXAMINE Nul');
my $nul_body = cut($nul_msg, "\r\n\r\n");
(my $nul_as_body = $nul_msg) =~ s/\0/\x80/g;
($tagged, $h) = fetch1($c, 'n', 'FETCH 1 BODY[]');
is($h->{'BODY[]'}, $nul_as_body, 'BODY[]: a NUL is sent as 0x80, the size kept');
ok(!exists $h->{FLAGS}, 'read-only: BODY[] sets no \Seen');
($tagged, $h) = fetch1($c, 'n', 'FETCH 1 (BINARY[] BINARY[1] BINARY.SIZE[1] BINARY[1]<4.3> FLAGS)');
is($h->{'BINARY[]'}, $nul_msg, 'BINARY[]: the bytes as they are...');
ok($h->{_lit8}{'BINARY[]'}, '... in a literal8');
is($h->{'BINARY[1]'}, $nul_body, 'BINARY[1] (no encoding): the NULs kept...');
ok($h->{_lit8}{'BINARY[1]'}, '... in a literal8');
is($h->{'BINARY.SIZE[1]'}, length $nul_body, 'BINARY.SIZE[1]');
is($h->{'BINARY[1]<4>'}, substr($nul_body, 4, 3), 'BINARY[1]<4.3>');
ok(!$h->{_lit8}{'BINARY[1]<4>'}, 'no NUL in that window: a plain literal');
is($h->{FLAGS}, '()', 'read-only: still not \Seen');
($tagged, $h) = fetch1($c, 'n', 'FETCH 1 (BODY[HEADER.FIELDS (X-NUL)] BODY[HEADER]<14.9>)');
is($h->{'BODY[HEADER.FIELDS (X-NUL)]'}, "X-Nul: a\x80b\r\n\r\n",
   'HEADER.FIELDS of a field with a NUL: 0x80...');
ok(!$h->{_lit8}{'BODY[HEADER.FIELDS (X-NUL)]'}, '... in a plain literal (BODY never has literal8)');
is($h->{'BODY[HEADER]<14>'}, "X-Nul: a\x80", 'a partial of the header');

# ---- QRESYNC: VANISHED (EARLIER); expunged under a FETCH --------------------------------

my $c2 = client();
run($c2, 'l', 'LOGIN bob@example.org "bob secret"');
($tagged, @r) = run($c2, 'e', 'ENABLE QRESYNC');
is($r[0], '* ENABLED QRESYNC', 'ENABLE QRESYNC');
($tagged, @r) = run($c2, 's', 'SELECT Vanish');
my ($m0) = join("\n", @r) =~ /HIGHESTMODSEQ (\d+)/;
ok($m0, "SELECT Vanish: HIGHESTMODSEQ $m0");
my $c3 = client();
run($c3, 'l', 'LOGIN bob@example.org "bob secret"');
run($c3, 'e', 'ENABLE QRESYNC');
run($c3, 's', 'SELECT Vanish');
($tagged) = run($c2, 'd', 'STORE 2:3 +FLAGS.SILENT (\Deleted)');
like($tagged, qr/^d OK/, 'another session marks 2 and 3 \Deleted...');
($tagged, @r) = run($c2, 'x', 'UID EXPUNGE 2');
like($tagged, qr/^x OK/, '... and expunges UID 2') or diag(explain([$tagged, @r]));
($tagged, @r) = run($c2, 'v', "UID FETCH 1:* (FLAGS) (CHANGEDSINCE $m0 VANISHED)");
is_deeply([$tagged, grep { /VANISHED/ } @r], ['v OK UID FETCH completed',
          '* VANISHED (EARLIER) 2'], 'UID FETCH (CHANGEDSINCE m VANISHED): VANISHED (EARLIER)');
ok((grep { /^\* 2 FETCH \(UID 3 FLAGS \(\\Deleted\) MODSEQ \(\d+\)\)$/ } @r),
   'the message changed since, with its MODSEQ') or diag(explain(\@r));
($tagged, @r) = run($c3, 'v', "UID FETCH 1:* (FLAGS) (CHANGEDSINCE $m0 VANISHED)");
is_deeply([grep { /VANISHED/ } @r], [], 'nor one still in its view (expunges wait)');
is($tagged, 'v NO [EXPUNGEISSUED] Some of the requested messages no longer exist',
   'that one cannot be answered: NO [EXPUNGEISSUED] at the end...');
ok((grep { /^\* 3 FETCH \(UID 3 FLAGS \(\\Deleted\)/ } @r), '... after the others');
($tagged, @r) = run($c3, 'n', 'NOOP');
ok((grep { $_ eq '* VANISHED 2' } @r), 'NOOP tells it') or diag(explain(\@r));
my $c4 = client();
run($c4, 'l', 'LOGIN bob@example.org "bob secret"');
run($c4, 'e', 'ENABLE QRESYNC');
run($c4, 's', 'SELECT Vanish');
($tagged, @r) = run($c4, 'v', "UID FETCH 1:* (FLAGS) (CHANGEDSINCE $m0 VANISHED)");
is_deeply([$tagged, grep { /VANISHED/ } @r], ['v OK UID FETCH completed',
          '* VANISHED (EARLIER) 2'], 'a session that never had UID 2: VANISHED (EARLIER) 2')
    or diag(explain(\@r));
($tagged, @r) = run($c4, 'v', "UID FETCH 3:* (FLAGS) (CHANGEDSINCE $m0 VANISHED)");
is_deeply([$tagged, grep { /VANISHED/ } @r], ['v OK UID FETCH completed'],
          'not when the set leaves it out');
$_->close for $c2, $c3, $c4;

# ---- parts larger than a read ----------------------------------------------------------

($tagged) = run($c, 's', 'SELECT Large');
like($tagged, qr/^s OK/, 'SELECT Large');
my $large_qp = cut($large_raw, "quoted-printable\r\n\r\n", "\r\n--LB\r\n");
check_items($c, 1, 'large',
    ['BODY.PEEK[]', 'BODY[]', $large_raw],
    ['BODY.PEEK[1]', 'BODY[1]', $large_qp],
    ['BINARY.PEEK[1]', 'BINARY[1]', $large_decoded],
    ['BINARY.SIZE[1]', 'BINARY.SIZE[1]', length $large_decoded],
    ['BINARY.PEEK[1]<65000.2000>', 'BINARY[1]<65000>', substr($large_decoded, 65000, 2000)],
    ['BINARY.PEEK[2]', 'BINARY[2]', $large_bin, 1],
    ['BINARY.SIZE[2]', 'BINARY.SIZE[2]', 300000],
    ['BINARY.PEEK[2]<65530.20>', 'BINARY[2]<65530>', substr($large_bin, 65530, 20),
     index(substr($large_bin, 65530, 20), "\0") >= 0],
    ['BINARY.PEEK[2]<299990.100>', 'BINARY[2]<299990>', substr($large_bin, 299990),
     index(substr($large_bin, 299990), "\0") >= 0],
    ['BODY.PEEK[2]<100000.70000>', 'BODY[2]<100000>',
     substr(cut($large_raw, "base64\r\n\r\n", "\r\n--LB--"), 100000, 70000)],
);

# ---- a real client: python3 imaplib ---------------------------------------------------

SKIP: {
    skip 'no python3', 1 if system('python3 -c "import imaplib" 2>/dev/null') != 0;
    ($rc, $out) = $m->python(<<'PY', port => $t->port(1));
import imaplib, hashlib
i = imaplib.IMAP4('127.0.0.1', PORT)
i.login('bob@example.org', 'bob secret')
i.select('INBOX', readonly=True)
typ, data = i.uid('FETCH', '1:*', '(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
for d in data:
    if isinstance(d, tuple):
        print(d[0].decode(), repr(d[1]))
typ, data = i.fetch('2', '(BINARY.PEEK[2] BINARY.PEEK[1.1])')
print(typ, hashlib.sha1(data[0][1]).hexdigest(), repr(data[1][1]))
i.logout()
PY
    my $sizes = join '', map {
        my $n = $_ + 1;
        my ($subject) = $raw[$_] =~ /^(Subject: [^\r]*\r\n)/m;
        "$n (UID $n RFC822.SIZE " . length($raw[$_]) . " BODY[HEADER.FIELDS (SUBJECT)] {"
        . (length($subject) + 2) . "} " . python_repr("$subject\r\n") . "\n"
    } 0 .. 3;
    require Digest::SHA;
    is($out, $sizes . 'OK ' . Digest::SHA::sha1_hex($blob) . ' ' . python_repr($qp_decoded) . "\n",
       'imaplib: UID FETCH, HEADER.FIELDS, BINARY (a literal8) as a real client reads them');
}

# b'...' as Python prints bytes (enough for these)
sub python_repr {
    my ($s) = @_;
    $s =~ s/\\/\\\\/g;
    $s =~ s/'/\\'/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return "b'$s'";
}

# ---- 2,000 bodies to a client that reads slowly ---------------------------------------

my $cb = client();
run($cb, 'l', 'LOGIN bob@example.org "bob secret"');
($tagged) = run($cb, 's', 'SELECT Big');
like($tagged, qr/^s OK/, 'SELECT Big');
my @workers = $t->workers;
is(scalar @workers, 1, 'one worker');
my $rss0 = $t->rss($workers[0]);
$cb->cmd('big FETCH 1:2000 BODY[]');
sleep 1;                                      # the server fills what it may, and waits
my $rss_max = $t->rss($workers[0]);
my $sock = $cb->sock;
my $bytes = 0;
my $reads = 0;
my $deadline = time + Facteur::Test::timeout(120);
while (time < $deadline) {
    my $n = sysread($sock, my $chunk, 32768);
    last unless $n;
    $cb->{buf} .= $chunk;
    $bytes += $n;
    last if substr($cb->{buf}, -200) =~ /\r\nbig [A-Z]+ [^\r\n]*\r\n\z/;
    if (++$reads % 50 == 0) {
        my $rss = $t->rss($workers[0]);
        $rss_max = $rss if $rss > $rss_max;
    }
    sleep 0.002;
}
my $all = $cb->{buf};
$cb->{buf} = '';
like(substr($all, -100), qr/\r\nbig OK FETCH completed\r\n\z/,
     "FETCH 1:2000 BODY[] ($bytes bytes)");
my ($ok_sizes, $ok_flags, $nresp, $first) = (0, 0, 0);
pos($all) = 0;
while ($all =~ /\G\* (\d+) FETCH \((FLAGS \(\\Seen\) )?BODY\[\] \{(\d+)\}\r\n/gc) {
    my ($msn, $seen, $size) = ($1, $2, $3);
    my $want = length($big_raw) + length($msn) - 1;
    $first //= substr($all, pos($all), $size);
    $nresp++;
    $ok_sizes++ if $size == $want && $msn == $nresp;
    $ok_flags++ if $seen;
    pos($all) += $size;
    last unless $all =~ /\G\)\r\n/gc;
}
is($nresp, 2000, '2,000 responses, in order');
is($ok_sizes, 2000, 'each literal the size of its message');
is($ok_flags, 2000, 'each with FLAGS (\Seen): set by BODY[]');
is($first, $big_raw, 'the first body byte for byte');
my $growth = ($rss_max - $rss0) / 1024;
diag(sprintf 'worker RSS: %.1f MB before, %.1f MB at most during the FETCH of %.1f MB',
     $rss0 / 1024, $rss_max / 1024, $bytes / 1048576);
my $asan = Facteur::Test::_file_contains($t->binary, '__asan_init');
SKIP: {
    skip 'AddressSanitizer keeps freed memory in quarantine', 1 if $asan;
    ok($growth < 16, sprintf('memory stays bounded: %.1f MB more while %.0f MB went out',
       $growth, $bytes / 1048576));
}
($tagged, @r) = run($cb, 'f', 'FETCH 1999:2000 (FLAGS)');
is_deeply([$tagged, @r], ['f OK FETCH completed', '* 1999 FETCH (FLAGS (\Seen))',
          '* 2000 FETCH (FLAGS (\Seen))'], 'the session goes on');

# ---- clients that leave in the middle ----------------------------------------------------

# (small answers: the session flushes at each batch, while the next is asked
# for; so the client's going is seen with a store call in flight)
for my $leave ([0, 'BODY[]'], [1, 'BODY[]'], [100000, 'BODY[]'], [3000000, 'BODY[]'],
               (map { [0, 'FLAGS'], [10, 'BINARY.SIZE[1]'] } 1 .. 5))
{
    my $cx = client();
    run($cx, 'l', 'LOGIN bob@example.org "bob secret"');
    run($cx, 's', 'SELECT Big');
    run($cx, 'r', 'STORE 1:2000 -FLAGS.SILENT (\Seen)');   # so that FETCH stores \Seen again
    $cx->cmd("x FETCH 1:2000 $leave->[1]");
    read_bytes($cx, $leave->[0]) if $leave->[0];
    $cx->close;
}
$cb = client();
run($cb, 'l', 'LOGIN bob@example.org "bob secret"');
run($cb, 's', 'SELECT Big');
($tagged, @r) = run($cb, 'f', 'FETCH 2000 (UID RFC822.SIZE)');
is_deeply([$tagged, @r], ['f OK FETCH completed', '* 2000 FETCH (UID 2000 RFC822.SIZE '
          . (length($big_raw) + 3) . ')'], 'after clients left mid-FETCH, the server serves');

$t->done_testing;
