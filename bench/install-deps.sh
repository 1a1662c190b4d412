#!/bin/sh
# Install what `make bench` needs beyond scripts/install-deps.sh: the peers it
# compares pop3filter with — socat, nginx's mail proxy (nginx-light plus
# libnginx-mod-mail) — and for the censor part altermime (it pulls in a mail
# transport agent, exim4 on Debian) and GNU time (the censors' peak memory).
# Their services are not started: the benchmark runs its own nginx under a
# temporary prefix.  Exits non-zero if something could not be installed;
# `make bench` then goes on and its table says which peer is missing.
exec "$(dirname "$0")/../scripts/install-deps.sh" socat:socat nginx-light libnginx-mod-mail \
    altermime:altermime time
