package Facteur::Mail;

# Helpers for the mail protocol tests, on top of Facteur::Test:
#
#   my $m = Facteur::Mail->new($t);            # $t: a Facteur::Test
#   $m->ctl(qw(domain add example.org));       # facteurctl on the test's config
#   $m->add_user('alice@example.org', 'secret');
#   my $out = $m->python(<<'PY', port => $t->port(1));
#   import smtplib; s = smtplib.SMTP('127.0.0.1', PORT) ...
#   PY
#   my @msgs = $m->mailbox('alice@example.org', 'INBOX');   # the stored messages
#
# python() runs python3 with the script on stdin; PORT, PORT_n and TESTDIR
# are replaced; it returns (exit code, stdout + stderr).  mailbox() reads a
# mailbox through "facteurctl export mbox" and returns the messages (each
# as stored, with LF line ends and its From_ line removed).

use strict;
use warnings;

sub new {
    my ($class, $t) = @_;
    (my $ctl = $t->binary) =~ s/facteur$/facteurctl/;
    return bless { t => $t, ctl => $ctl }, $class;
}

sub ctl_binary { $_[0]{ctl} }

# facteurctl ARGS on the test's configuration; (exit code, output); STDIN optional
sub ctl {
    my ($self, @args) = @_;
    my $stdin = ref $args[-1] eq 'SCALAR' ? ${pop @args} : '';
    my $dir = $self->{t}->testdir;
    my $in = "$dir/.ctl.stdin";
    open my $fh, '>', $in or die "$in: $!";
    print $fh $stdin;
    close $fh;
    my $cmd = join ' ', map { my $a = $_; $a =~ s/'/'\\''/g; "'$a'" }
        $self->{ctl}, '-p', "$dir/", '-c', "$dir/facteur.conf", @args;
    my $out = `$cmd < '$in' 2>&1`;
    return ($? >> 8, $out);
}

sub add_user {
    my ($self, $address, $password) = @_;
    my ($domain) = $address =~ /@(.+)$/;
    $self->ctl('domain', 'add', $domain);                # may exist already
    my ($rc, $out) = $self->ctl('user', 'add', $address, '--password-stdin',
                                \"$password\n");
    die "user add $address: $out" if $rc != 0;
}

# run a python3 script; PORT_n / PORT / TESTDIR replaced
sub python {
    my ($self, $script, %opt) = @_;
    my $t = $self->{t};
    my $dir = $t->testdir;
    $script =~ s/%%PORT_(\d+)%%/$t->port($1)/ge;
    $script =~ s/\bPORT\b/$opt{port}/g if defined $opt{port};
    $script =~ s/%%TESTDIR%%/$dir/g;
    my $file = "$dir/.script.py";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $script;
    close $fh;
    my $timeout = Facteur::Test::timeout($opt{timeout} // 60);
    my $out = `timeout $timeout python3 '$file' 2>&1`;
    return ($? >> 8, $out);
}

# the messages of a mailbox, as stored (LF line ends), oldest first
sub mailbox {
    my ($self, $user, $name) = @_;
    my $dir = $self->{t}->testdir . '/.export';
    system('rm', '-rf', $dir);
    my ($rc, $out) = $self->ctl('export', 'mbox', $user, $dir);
    return () if $rc != 0;
    my $file = "$dir/" . ($name // 'INBOX') . '.mbox';
    open my $fh, '<:raw', $file or return ();
    local $/;
    my $mbox = <$fh> // '';
    my @msgs = split /^From MAILER-DAEMON [^\n]*\n/m, $mbox;
    shift @msgs;                                      # before the first From_
    s/\n\z// for @msgs;                              # the blank line between
    s/^>(>*From )/$1/mg for @msgs;                   # mboxrd quoting
    return @msgs;
}

1;
