#!/bin/sh
# make_certs.sh - makes a throw-away test CA and a server certificate for
# localhost / 127.0.0.1 with the openssl CLI, for the mock provider.
#
#   tests/mock/make_certs.sh [--rsa] [--no-ip] DIR
#
# Writes into DIR (created if needed):
#   ca.pem       the CA certificate (trust it: grantd --ca-file, ssl cafile)
#   ca.key       the CA key
#   server.pem   the leaf certificate (the mock's --cert; no intermediates)
#   server.key   its key, PKCS#8 (the mock's --key)
# Keys are ECDSA P-256 by default, RSA 2048 with --rsa. The leaf has
# subjectAltName DNS:localhost, IP:127.0.0.1 and IP:::1 (DNS:localhost only
# with --no-ip, for testing that an IP-address URL is then refused),
# serverAuth, and is valid from now for 825 days. Everything is generated fresh on each run; nothing
# here is secret beyond the test.
set -eu

alg=ec
san="DNS:localhost, IP:127.0.0.1, IP:::1"
while [ $# -gt 1 ]; do
  case "$1" in
    --rsa) alg=rsa; shift ;;
    --ec|--ecdsa) shift ;;
    --no-ip) san="DNS:localhost"; shift ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 [--rsa] [--no-ip] DIR" >&2
  exit 2
fi
dir=$1
mkdir -p "$dir"
cd "$dir"

genkey() {
  if [ "$alg" = rsa ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  fi
  chmod 600 "$1"
}

genkey ca.key
genkey server.key

cat > mkcerts.cnf <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=grantd test CA ($alg)" \
  -config mkcerts.cnf -extensions ca_ext -out ca.pem
openssl req -new -key server.key -subj "/CN=localhost" -config mkcerts.cnf -out server.csr
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
  -days 825 -sha256 -extfile mkcerts.cnf -extensions leaf_ext -out server.pem 2>/dev/null
rm -f server.csr mkcerts.cnf
