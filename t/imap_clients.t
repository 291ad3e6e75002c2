#!/usr/bin/perl

# Real IMAP clients from Debian packages against the IMAP module, with mail
# delivered over SMTP (python3 smtplib): a plain message, a 2 MB one, one
# with a raw UTF-8 subject and body, one with an encoded-word subject.
#
# mbsync (isync) over STARTTLS, checking the certificate: the account
# synced to a Maildir, byte for byte (its X-TUID field aside); then both
# ways: flags changed and a message deleted locally reach the server (FETCH
# FLAGS, expunged), a new local message is uploaded, a folder created on
# the server (facteurctl) and a message delivered meanwhile come down; a
# third run changes nothing.
# offlineimap3 over implicit TLS to another Maildir: the messages arrive,
# a flag change on either side reaches the other on the next run.
# curl: LIST, a message by UID (the 2 MB one too), UID SEARCH, EXAMINE,
# over imaps:// and over STARTTLS, and a STORE of a keyword new to the
# mailbox, whose FETCH response must name it.  python3 imaplib: a full
# round over STARTTLS (SELECT, SEARCH, FETCH RFC822, STORE, COPY, EXPUNGE,
# LOGOUT), and a FETCH FLAGS naming a keyword another session just made
# (announced with FLAGS first).  Every client runs under timeout(1): a
# hang fails the test.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(mkpath);
use Facteur::Test;
use Facteur::Mail;

my $t = Facteur::Test->new->has(qw/imap smtp lmdb ssl/);
system('python3 -c "import smtplib, imaplib, ssl" 2>/dev/null') == 0
    or plan(skip_all => 'python3 with smtplib, imaplib and ssl is needed');
for my $client (qw(mbsync offlineimap curl timeout)) {
    plan(skip_all => "$client is not installed (sh auto/deps installs it)")
        unless Facteur::Test::_which($client);
}

$t->write_file_expand('facteur.conf', <<'EOF');
pid facteur.pid;
error_log error.log info;
worker_processes 2;
auth_directory var/auth;
storage lmdb { path var/mail; }
ssl_certificate %%CERT%%;
ssl_certificate_key %%KEY%%;
hostname mx.test;
imap {
    server {
        listen 127.0.0.1:%%PORT_1%%;
        listen 127.0.0.1:%%PORT_2%% ssl;
    }
}
smtp { server { listen 127.0.0.1:%%PORT_3%%; } }
EOF
mkdir $t->testdir . '/var';

my $m = Facteur::Mail->new($t);
$m->add_user('alice@example.org', 'alice secret');
$t->run;

my $dir = $t->testdir;
my $cert = $t->cert('localhost');
my ($imap, $imaps, $smtp) = ($t->port(1), $t->port(2), $t->port(3));
my $user = 'alice@example.org';
my $TIMEOUT = Facteur::Test::timeout(20);

# ---- helpers ----------------------------------------------------------------

sub quote { my $a = shift; $a =~ s/'/'\\''/g; "'$a'" }

# run a client under timeout(1), HOME in the test directory;
# (exit code, stdout + stderr); 124: it hung
sub run {
    my (@cmd) = @_;
    my $cmd = join ' ', map { quote($_) } @cmd;
    my $out = `cd '$dir' && HOME='$dir' timeout -k 2 $TIMEOUT $cmd 2>&1`;
    return ($? >> 8, $out);
}

# run a command, keep stdout apart; (exit code, stdout, stderr)
sub run_out {
    my (@cmd) = @_;
    my $cmd = join ' ', map { quote($_) } @cmd;
    my $out = `cd '$dir' && HOME='$dir' timeout -k 2 $TIMEOUT $cmd 2>'$dir/.err'`;
    return ($? >> 8, $out, $t->read_file('.err'));
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return undef;
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($file, $data) = @_;
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $data;
    close $fh;
}

sub lf { my $s = shift; $s =~ s/\r\n/\n/g; $s }
sub crlf { my $s = lf(shift); $s =~ s/\n/\r\n/g; $s }

# mbsync marks the messages it copies with an X-TUID header field of its own
sub no_tuid {
    my $s = shift // return undef;
    $s =~ s/\A((?:[^\r\n][^\n]*\n)*?)X-TUID: \S+\r?\n/$1/;
    return $s;
}

sub message_id { $_[0] =~ /^Message-ID: <([^>]+)>/mi ? $1 : '?' }

# deliver messages (LF line ends, sent as CRLF) to ADDRESS over SMTP
sub deliver {
    my ($to, @msgs) = @_;
    my @files;
    for my $i (0 .. $#msgs) {
        my $f = "$dir/.send$i.eml";
        spew($f, crlf($msgs[$i]));
        push @files, $f;
    }
    my $list = join ', ', map { "'$_'" } @files;
    my ($rc, $out) = $m->python(<<"EOF", port => $smtp);
import smtplib
s = smtplib.SMTP('127.0.0.1', PORT, timeout=20)
for f in [$list]:
    data = open(f, 'rb').read()
    opts = ['BODY=8BITMIME', 'SMTPUTF8'] if any(b > 127 for b in data) else []
    print(s.sendmail('bob\@remote.test', ['$to'], data, opts))
s.quit()
EOF
    return ($rc, $out);
}

# the stored messages of a mailbox by Message-ID (LF line ends)
sub stored {
    my ($name) = @_;
    return map { (message_id($_) => $_) } $m->mailbox($user, $name);
}

# the messages of a Maildir folder: Message-ID => [file, flags, content]
sub maildir {
    my ($folder) = @_;
    my %msgs;
    for my $f (glob("$folder/new/* $folder/cur/*")) {
        my $data = slurp($f) // next;
        my ($flags) = $f =~ /:2,([A-Za-z]*)$/;
        $msgs{message_id($data)} = [$f, $flags // '', $data];
    }
    return %msgs;
}

# give a Maildir message new flags (moved to cur/, as a mail reader does)
sub set_flags {
    my ($file, $flags) = @_;
    (my $new = $file) =~ s{/new/([^/]+)$}{/cur/$1};
    $new =~ s/:2,[A-Za-z]*$//;
    $new .= ":2,$flags";
    rename $file, $new or die "rename $file: $!";
    return $new;
}

# FLAGS of INBOX over python3 imaplib: Message-ID => "flags" (sorted)
sub server_flags {
    my ($mailbox) = @_;
    $mailbox //= 'INBOX';
    my ($rc, $out) = $m->python(<<"EOF", port => $imap);
import imaplib, ssl, re
ctx = ssl.create_default_context(cafile='$cert')
c = imaplib.IMAP4('localhost', PORT, timeout=20)
c.starttls(ssl_context=ctx)
c.login('$user', 'alice secret')
c.select('$mailbox', readonly=True)
typ, data = c.uid('FETCH', '1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
for d in data:
    if isinstance(d, tuple):
        flags = re.search(rb'FLAGS \\(([^)]*)\\)', d[0]).group(1).decode()
        mid = re.search(rb'<([^>]+)>', d[1]).group(1).decode()
        print('MSG', mid, ' '.join(sorted(flags.split())))
c.logout()
EOF
    diag("imaplib FETCH FLAGS: $out") if $rc != 0;
    return map { /^MSG (\S+) ?(.*)$/ ? ($1 => $2) : () } split /\n/, $out;
}

# ---- the messages ------------------------------------------------------------

sub message {
    my ($n, $subject, $body, @headers) = @_;
    return join('', "From: Bob <bob\@remote.test>\n", "To: Alice <$user>\n",
                "Subject: $subject\n", "Date: Mon, 6 May 2024 10:0$n:00 +0200\n",
                "Message-ID: <m$n\@remote.test>\n", map({ "$_\n" } @headers),
                "\n", $body);
}

my $big = do {
    srand(42);
    my $raw = pack('C*', map { int rand 256 } 1 .. 1_530_000);
    require MIME::Base64;
    MIME::Base64::encode_base64($raw);           # 76-column lines, ~2 MB
};
my %sent = (
    m1 => message(1, 'plain', "hello\n.leading dot\n\nbye\n"),
    m2 => message(2, 'big attachment', $big, 'MIME-Version: 1.0',
                  'Content-Type: application/octet-stream',
                  'Content-Transfer-Encoding: base64'),
    m3 => message(3, "Caf\xc3\xa9 \xc3\xbcber Stra\xc3\x9fe \xe6\x97\xa5\xe6\x9c\xac",
                  "Gr\xc3\xbc\xc3\x9fe \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n",
                  'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8',
                  'Content-Transfer-Encoding: 8bit'),
    m4 => message(4, '=?UTF-8?Q?R=C3=A9union?=', "to be deleted\n"),
);
ok(length($sent{m2}) > 2_000_000, 'the big message is over 2 MB');

my ($rc, $out) = deliver($user, @sent{qw(m1 m2 m3 m4)});
is($rc, 0, 'four messages delivered over SMTP') or diag($out);
my %stored = stored('INBOX');
is(scalar keys %stored, 4, 'four messages in INBOX') or diag(join ', ', keys %stored);
for my $id (qw(m1 m2 m3 m4)) {
    ok(substr($stored{"$id\@remote.test"} // '', -length $sent{$id}) eq $sent{$id},
       "$id is stored as sent");
}

# the stored message (LF) of a Message-ID, and does DATA match it?
sub same_as_stored {
    my ($data, $id, $stored, $what) = @_;
    my $want = $stored->{$id};
    my $ok = defined $want && defined $data && lf($data) eq $want;
    ok($ok, $what) or diag(sprintf('%s: got %d bytes, stored %d', $id,
        length($data // ''), length($want // '')));
}

# ---- mbsync ------------------------------------------------------------------

my ($version) = `mbsync --version 2>&1` =~ /(\d[\d.]*)/;
diag("mbsync $version");
mkpath("$dir/mbsync");
my $mbsyncrc = "$dir/mbsyncrc";
spew($mbsyncrc, <<"EOF");
IMAPAccount facteur
Host localhost
Port $imap
User $user
Pass "alice secret"
SSLType STARTTLS
CertificateFile $cert
AuthMechs PLAIN
Timeout 15

IMAPStore remote
Account facteur

MaildirStore local
Path $dir/mbsync/
Inbox $dir/mbsync/INBOX
SubFolders Verbatim

Channel facteur
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
EOF

sub mbsync {
    my ($what) = @_;
    my ($rc, $out) = run('mbsync', '-c', $mbsyncrc, '-a');
    is($rc, 0, "mbsync: $what") or diag($out);
    return $out;
}

mbsync('first sync');
my %local = maildir("$dir/mbsync/INBOX");
is(scalar keys %local, 4, 'mbsync: four messages in the local INBOX')
    or diag(join ', ', keys %local);
for my $id (qw(m1 m2 m3 m4)) {
    same_as_stored(no_tuid($local{"$id\@remote.test"}[2]), "$id\@remote.test", \%stored,
                   "mbsync: $id arrives byte for byte (X-TUID aside)");
}
ok(-d "$dir/mbsync/$_", "mbsync: the folder $_ is created locally")
    for qw(Sent Trash);

# local changes: seen, flagged, deleted, a new message
set_flags($local{'m1@remote.test'}[0], 'S');
set_flags($local{'m2@remote.test'}[0], 'F');
unlink $local{'m4@remote.test'}[0];
$sent{m5} = message(5, 'written offline', "uploaded by mbsync\n");
spew("$dir/mbsync/INBOX/new/1715000000.4242_1.laptop", $sent{m5});

# server changes: a new folder with a message in it, a new message in INBOX
($rc, $out) = $m->ctl('mailbox', 'create', $user, 'Projects');
is($rc, 0, 'facteurctl creates the folder Projects') or diag($out);
$sent{m6} = message(6, 'after the first sync', "new on the server\n");
$sent{m7} = message(7, 'project news', "filed into Projects\n");
($rc, $out) = deliver($user, $sent{m6});
is($rc, 0, 'a message delivered to INBOX') or diag($out);
($rc, $out) = deliver('alice+Projects@example.org', $sent{m7});
is($rc, 0, 'a message delivered to Projects') or diag($out);

mbsync('second sync, both ways');
my %flags = server_flags();
is($flags{'m1@remote.test'}, '\\Seen', 'mbsync: the seen flag reached the server');
is($flags{'m2@remote.test'}, '\\Flagged', 'mbsync: the flagged flag reached the server');
ok(!exists $flags{'m4@remote.test'}, 'mbsync: the message deleted locally is expunged')
    or diag(explain(\%flags));
is($flags{'m3@remote.test'}, '', 'mbsync: the other message has no flags');
%stored = stored('INBOX');
ok(exists $stored{'m5@remote.test'}, 'mbsync: the new local message is uploaded');
is(no_tuid($stored{'m5@remote.test'} // ''), $sent{m5}, 'mbsync: uploaded as written');
is(scalar keys %stored, 5, 'five messages on the server') or diag(join ', ', keys %stored);
%local = maildir("$dir/mbsync/INBOX");
same_as_stored(no_tuid($local{'m6@remote.test'}[2]), 'm6@remote.test', \%stored,
               'mbsync: the message delivered after the first sync arrives');
is(scalar keys %local, 5, 'mbsync: five messages in the local INBOX')
    or diag(join ', ', keys %local);
ok(-d "$dir/mbsync/Projects/cur", 'mbsync: the folder made on the server is created locally');
my %projects = maildir("$dir/mbsync/Projects");
my %stored_projects = stored('Projects');
same_as_stored(no_tuid($projects{'m7@remote.test'}[2]), 'm7@remote.test', \%stored_projects,
               'mbsync: the message in the new folder arrives');
like($local{'m5@remote.test'}[0] // '', qr/,U=\d+/, 'mbsync: the uploaded message got its UID');

$out = mbsync('third sync');
my %again = maildir("$dir/mbsync/INBOX");
is_deeply([sort map { $_->[0] } values %again], [sort map { $_->[0] } values %local],
          'mbsync: nothing changes at the third sync');

# ---- offlineimap3 ------------------------------------------------------------

($version) = `offlineimap --version 2>&1` =~ /(\d[\d.]*)/;
diag("offlineimap $version");
mkpath("$dir/oimap/mail");
# implicit TLS: offlineimap3's imaplib2 now and then hangs right after
# STARTTLS (its reader thread takes the TLS 1.3 session ticket while its
# writer thread sends the next command on the same SSL object, which never
# reaches the server); STARTTLS is mbsync's, curl's and imaplib's here
my $oimaprc = "$dir/offlineimaprc";
spew($oimaprc, <<"EOF");
[general]
accounts = facteur
metadata = $dir/oimap/meta
ui = quiet
fsync = false

[Account facteur]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = $dir/oimap/mail

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = $imaps
remoteuser = $user
remotepass = alice secret
ssl = yes
sslcacertfile = $cert
maxconnections = 1
holdconnectionopen = no
EOF

sub offlineimap {
    my ($what) = @_;
    my ($rc, $out) = run('offlineimap', '-c', $oimaprc, '-o', '-u', 'quiet');
    is($rc, 0, "offlineimap: $what") or diag($out);
    is($out, '', "offlineimap: $what, nothing said") or diag($out);
}

offlineimap('first sync');
%local = maildir("$dir/oimap/mail/INBOX");
is(scalar keys %local, 5, 'offlineimap: five messages in the local INBOX')
    or diag(join ', ', keys %local);
for my $id (qw(m1 m2 m3 m5 m6)) {
    same_as_stored($local{"$id\@remote.test"}[2], "$id\@remote.test", \%stored,
                   "offlineimap: $id arrives byte for byte");
}
is($local{'m1@remote.test'}[1], 'S', 'offlineimap: m1 is seen locally');
is($local{'m2@remote.test'}[1], 'F', 'offlineimap: m2 is flagged locally');
%projects = maildir("$dir/oimap/mail/Projects");
ok(exists $projects{'m7@remote.test'}, 'offlineimap: the folder Projects is synced');

# a flag changed locally (m3 seen), one on the server (m6 answered)
set_flags($local{'m3@remote.test'}[0], 'S');
($rc, $out) = $m->python(<<"EOF", port => $imap);
import imaplib, ssl
c = imaplib.IMAP4('localhost', PORT, timeout=20)
c.starttls(ssl_context=ssl.create_default_context(cafile='$cert'))
c.login('$user', 'alice secret')
c.select('INBOX')
typ, data = c.search(None, 'HEADER', 'Message-ID', 'm6\@remote.test')
print(c.store(data[0].decode(), '+FLAGS', '(\\\\Answered)'))
c.logout()
EOF
is($rc, 0, 'imaplib: m6 marked answered on the server') or diag($out);

offlineimap('second sync');
%flags = server_flags();
is($flags{'m3@remote.test'}, '\\Seen', 'offlineimap: the local flag reached the server');
%local = maildir("$dir/oimap/mail/INBOX");
is($local{'m6@remote.test'}[1], 'R', 'offlineimap: the server flag reached the Maildir');

# ---- curl --------------------------------------------------------------------

($version) = `curl --version 2>&1` =~ /^curl (\S+)/;
diag("curl $version");
my @curl = ('curl', '-sS', '--cacert', $cert, '-u', "$user:alice secret");

($rc, $out) = run_out(@curl, "imaps://localhost:$imaps/");
is($rc, 0, 'curl: LIST over imaps://') or diag($out);
like($out, qr/^\* LIST \([^)]*\) "\/" "?INBOX"?\r$/m, 'curl: LIST has INBOX') or diag($out);
like($out, qr/^\* LIST \([^)]*\) "\/" "?Projects"?\r$/m, 'curl: LIST has Projects');

($rc, $out) = run_out(@curl, '--ssl-reqd', "imap://localhost:$imap/");
is($rc, 0, 'curl: LIST over STARTTLS') or diag($out);
like($out, qr/^\* LIST .*INBOX/m, 'curl: LIST over STARTTLS has INBOX');

for my $uid (1, 2) {
    my $id = "m$uid\@remote.test";
    ($rc, $out) = run_out(@curl, "imaps://localhost:$imaps/INBOX;UID=$uid");
    is($rc, 0, "curl: UID=$uid fetched");
    ok($out eq crlf($stored{$id} // 'none'), "curl: UID=$uid is $id, byte for byte")
        or diag(sprintf('got %d bytes, want %d', length $out, length crlf($stored{$id} // '')));
}

($rc, $out) = run_out(@curl, "imaps://localhost:$imaps/INBOX", '-X', 'UID SEARCH ALL');
is($rc, 0, 'curl: UID SEARCH ALL');
like($out, qr/^\* SEARCH 1 2 3 5 6\r$/m, 'curl: UID SEARCH ALL lists the UIDs') or diag($out);

($rc, $out) = run_out(@curl, "imaps://localhost:$imaps/", '-X', 'EXAMINE INBOX');
is($rc, 0, 'curl: EXAMINE INBOX');
like($out, qr/^\* 5 EXISTS\r$/m, 'curl: EXAMINE says 5 EXISTS') or diag($out);
like($out, qr/^\* OK \[UIDNEXT 7\]/m, 'curl: EXAMINE says UIDNEXT') or diag($out);

# a keyword new to the mailbox: the STORE's FETCH response names it
($rc, $out) = run_out(@curl, "imaps://localhost:$imaps/INBOX", '-X', 'STORE 2 +FLAGS (Urgent)');
is($rc, 0, 'curl: STORE of a keyword new to the mailbox');
like($out, qr/^\* 2 FETCH \(FLAGS \([^)]*\bUrgent\)\)\r$/m, 'curl: the FETCH response has it')
    or diag($out);

# ---- python3 imaplib ---------------------------------------------------------

($rc, $out) = $m->python(<<"EOF", port => $imap);
import imaplib, ssl
c = imaplib.IMAP4('localhost', PORT, timeout=20)
print('CAPS', ' '.join(c.capabilities))
print('STARTTLS', c.starttls(ssl_context=ssl.create_default_context(cafile='$cert'))[0])
print('LOGIN', c.login('$user', 'alice secret')[0])
typ, data = c.select('INBOX')
print('SELECT', typ, data[0].decode())
typ, data = c.search(None, 'SUBJECT', 'plain')
print('SEARCH', typ, data[0].decode())
typ, data = c.fetch(data[0].decode(), '(RFC822)')
open('$dir/.imaplib.eml', 'wb').write(data[0][1])
print('FETCH', typ)
c.literal = b'Gr\\xc3\\xbc\\xc3\\x9fe'
typ, data = c.search('UTF-8', 'BODY')
print('SEARCH8', typ, data[0].decode())
print('STORE', c.store('2', '+FLAGS', '(\\\\Answered)'))
d = imaplib.IMAP4('localhost', PORT, timeout=20)
d.starttls(ssl_context=ssl.create_default_context(cafile='$cert'))
d.login('$user', 'alice secret')
d.select('INBOX')
print('OTHER', d.store('3', '+FLAGS', '(Later)'))
d.logout()
typ, data = c.fetch('3', '(FLAGS)')
print('FETCH3', typ, data, c.untagged_responses.get('FLAGS', [b''])[-1])
print('COPY', c.copy('1:2', 'Archive'))
typ, data = c.select('Archive')
print('SELECT2', typ, data[0].decode())
print('STORE2', c.store('1', '+FLAGS', '(\\\\Deleted)'))
typ, data = c.expunge()
print('EXPUNGE', typ, data)
typ, data = c.search(None, 'ALL')
print('SEARCH2', typ, data[0].decode())
print('LOGOUT', c.logout()[0])
EOF
is($rc, 0, 'imaplib: a full round') or diag($out);
like($out, qr/^CAPS .*\bSTARTTLS\b.*\bLOGINDISABLED\b/m, 'imaplib: STARTTLS offered, LOGIN disabled before');
like($out, qr/^STARTTLS OK$/m, 'imaplib: STARTTLS');
like($out, qr/^LOGIN OK$/m, 'imaplib: LOGIN');
like($out, qr/^SELECT OK 5$/m, 'imaplib: SELECT INBOX, 5 messages');
like($out, qr/^SEARCH OK 1$/m, 'imaplib: SEARCH SUBJECT');
like($out, qr/^FETCH OK$/m, 'imaplib: FETCH RFC822');
is(lf(slurp("$dir/.imaplib.eml") // ''), $stored{'m1@remote.test'},
   'imaplib: the message fetched byte for byte');
like($out, qr/^SEARCH8 OK 3$/m, 'imaplib: SEARCH CHARSET UTF-8 BODY');
like($out, qr/^STORE \('OK', \[b'2 \(FLAGS \((?=[^)]*\\\\Answered)(?=[^)]*\\\\Flagged)[^)]*\)\)'\]\)$/m, 'imaplib: STORE');
like($out, qr/^FETCH3 OK \[b'3 \(FLAGS \([^)]*\bLater\)\)'\] b'\([^)]*\bLater\)'$/m,
     'imaplib: FETCH FLAGS has a keyword another session just made, FLAGS announces it');
like($out, qr/^COPY \('OK', \[b'\[COPYUID \d+ 1:2 1:2\] /m, 'imaplib: COPY');
like($out, qr/^SELECT2 OK 2$/m, 'imaplib: SELECT Archive, 2 messages');
like($out, qr/^EXPUNGE OK \[b'1'\]$/m, 'imaplib: EXPUNGE');
like($out, qr/^SEARCH2 OK 1$/m, 'imaplib: one message left');
like($out, qr/^LOGOUT BYE$/m, 'imaplib: LOGOUT');
my @archive = $m->mailbox($user, 'Archive');
is(scalar @archive, 1, 'imaplib: Archive holds one message');
is(message_id($archive[0] // ''), 'm2@remote.test', 'imaplib: the big one');

$t->done_testing;
