#!/bin/sh
# Regenerates the SIMULATED SNP chain used by the CRL / end-to-end tests (never trusted
# outside tests): ARK-Milan and ASK SEV-Milan (RSA-2048, RSASSA-PSS SHA-384 salt 48, the
# AMD scheme), a P-384 "SEV-VCEK" with AMD's extensions, and CRLs. Needs OpenSSL 3.
# Run from this directory: sh gen.sh
set -eu
out=sim
rm -rf "$out" && mkdir -p "$out/db"
cd "$out"
touch db/index.txt
echo 1000 > db/serial
cat > ca.cnf <<'CNF'
[ca]
default_ca = sim
[sim]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha384
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[v_ca]
keyUsage = critical, keyCertSign, cRLSign
basicConstraints = critical, CA:true
[v_vcek]
1.3.6.1.4.1.3704.1.1 = ASN1:INTEGER:2
1.3.6.1.4.1.3704.1.2 = ASN1:IA5STRING:Milan-B0
1.3.6.1.4.1.3704.1.3.1 = ASN1:INTEGER:3
1.3.6.1.4.1.3704.1.3.2 = ASN1:INTEGER:0
1.3.6.1.4.1.3704.1.3.3 = ASN1:INTEGER:8
1.3.6.1.4.1.3704.1.3.8 = ASN1:INTEGER:0x73
1.3.6.1.4.1.3704.1.4 = DER:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f
CNF
pss="-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:48 -sigopt rsa_mgf1_md:sha384"
ca="openssl ca -batch -config ca.cnf -notext -md sha384 $pss"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ark.key 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out ask.key 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out vcek.key
openssl pkcs8 -topk8 -nocrypt -in vcek.key -outform DER -out vcek.pk8
openssl req -new -key ark.key -subj "/CN=ARK-Milan" -out ark.csr
openssl req -new -key ask.key -subj "/CN=SEV-Milan" -out ask.csr
openssl req -new -key vcek.key -subj "/CN=SEV-VCEK" -out vcek.csr
$ca -selfsign -keyfile ark.key -in ark.csr -extensions v_ca \
    -startdate 20200101000000Z -enddate 20450101000000Z -out ark.pem
$ca -cert ark.pem -keyfile ark.key -in ask.csr -extensions v_ca \
    -startdate 20200101000000Z -enddate 20450101000000Z -out ask.pem
$ca -cert ask.pem -keyfile ask.key -in vcek.csr -extensions v_vcek \
    -startdate 20230101000000Z -enddate 20300101000000Z -out vcek.pem
for c in ark ask vcek; do openssl x509 -in $c.pem -outform DER -out $c.der; done
crl() { # issuer-cert issuer-key out
    $ca -gencrl -cert "$1" -keyfile "$2" -crl_lastupdate 20231201000000Z \
        -crl_nextupdate 20240201000000Z -out "$3.pem"
    openssl crl -in "$3.pem" -outform DER -out "$3.der"
}
crl ark.pem ark.key crl_ark_empty
crl ask.pem ask.key crl_ask_empty
$ca -cert ark.pem -keyfile ark.key -revoke ask.pem
crl ark.pem ark.key crl_ark_revokes_ask
$ca -cert ask.pem -keyfile ask.key -revoke vcek.pem
crl ask.pem ask.key crl_ask_revokes_vcek
rm -rf db ca.cnf *.csr *.key *.pem
