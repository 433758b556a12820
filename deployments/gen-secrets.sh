#!/bin/sh
# Writes the secrets of compose.yaml, each in a file of deployments/secrets/ (or of
# the folder given as $1), keeping any that exist: run it again at will.
#   master_key         base64 of 32 random bytes   (KEYLEDGER_MASTER_KEY_FILE)
#   pepper             base64 of 32 random bytes   (KEYLEDGER_PEPPER_FILE)
#   gateway_token      klg_ and 48 hex digits      (KEYLEDGER_GATEWAY_TOKEN_FILE)
#   audit_signing_key  an Ed25519 note key         (KEYLEDGER_AUDIT_SIGNING_KEY_FILE; needs openssl)
#   postgres_password  48 hex digits               (PostgreSQL's POSTGRES_PASSWORD_FILE)
#   database_url       the URL with that password  (KEYLEDGER_DATABASE_URL_FILE)
set -eu

dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 0700 "$dir" # the folder keeps other users of this machine out

# The files themselves are readable by all: compose bind-mounts them as they are,
# and the image runs as user 65532, not as their owner.
write() { # name value
  if [ ! -s "$dir/$1" ]; then
    printf '%s\n' "$2" >"$dir/$1"
    chmod 0644 "$dir/$1"
  fi
}
b64() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# An Ed25519 signing key in the note format, as `keyledger audit keygen` writes it:
# PRIVATE+KEY+<name>+<first 4 bytes of SHA-256(name, "\n", 0x01, public key)>+<base64 of 0x01 and the seed>.
notekey() {
  t=$(mktemp -d)
  openssl genpkey -algorithm ed25519 -outform DER -out "$t/private.der"
  openssl pkey -inform DER -in "$t/private.der" -pubout -outform DER -out "$t/public.der"
  hash=$({ printf 'keyledger\n\001'; tail -c 32 "$t/public.der"; } | sha256sum | cut -c1-8)
  key=$({ printf '\001'; tail -c 32 "$t/private.der"; } | base64 | tr -d '\n')
  rm -rf "$t"
  printf 'PRIVATE+KEY+keyledger+%s+%s' "$hash" "$key"
}

write master_key "$(b64 32)"
write pepper "$(b64 32)"
write gateway_token "klg_$(hex 24)"
[ -s "$dir/audit_signing_key" ] || write audit_signing_key "$(notekey)"
write postgres_password "$(hex 24)"
write database_url "postgres://keyledger:$(cat "$dir/postgres_password")@postgres:5432/keyledger?sslmode=disable"
echo "gen-secrets: the secrets are in $dir" >&2
