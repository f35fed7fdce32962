#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages mailark's demo and tests need, only when they are missing:
# dovecot-imapd (the demo's throwaway tenant and the integration tests start a PRIVATE Dovecot; the
# system service is kept from starting) and unzip (export tests check zip archives with `unzip -t`).
# Used by the README's first command and by .ci/run. Needs root or passwordless sudo; prints what it does.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

missing=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: dovecot and unzip already installed"
  exit 0
fi

sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo -n)
echo "system packages: installing ${missing[*]}"
# A policy-rc.d that denies service starts keeps the package from starting the system Dovecot;
# removed again afterwards if we created it.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  created_policy=1
fi
rc=0
{ "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; } || rc=$?
[ "$created_policy" = 0 ] || "${sudo[@]}" rm -f "$policy"
exit "$rc"
