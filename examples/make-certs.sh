#!/usr/bin/env bash
# Certificates for trying the TLS examples on this machine: a local CA and,
# signed by it, a server certificate for localhost / 127.0.0.1 and a client
# certificate. Written to examples/certs/ (not tracked by git). For real
# deployments use certificates from your CA (or ACME); never these.
#
#   examples/make-certs.sh            # once
#   wsgate -c examples/tls.yaml
#   curl --cacert examples/certs/ca.crt https://localhost:8443/
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/certs"
mkdir -p "$dir"
cd "$dir"
[ -f ca.crt ] && [ -f localhost.crt ] && [ -f client.crt ] && [ -f jwt-public.pem ] &&
    [ -f api-keys.txt ] && exit 0

ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 365 \
    -subj "/CN=wsgate example CA" 2>/dev/null

issue() { # name subject extensions
    openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -days 365 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
issue localhost "/CN=localhost" \
    "$(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1')"
issue client "/CN=example-client/O=Example" \
    "$(printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth')"
# For examples/auth.yaml: an HMAC secret, an ES256 key pair for tokens,
# and an API key ("demo-key-change-me") stored as its SHA-256.
openssl rand -base64 48 > jwt-secret
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out jwt-private.key 2>/dev/null
openssl pkey -in jwt-private.key -pubout -out jwt-public.pem
printf '%s demo-service\n' "$(printf 'demo-key-change-me' | openssl dgst -sha256 -r | cut -d' ' -f1)" \
    > api-keys.txt
chmod 600 ./*.key jwt-secret
echo "certificates and keys in $dir"
