# Verifies the Ed25519 cosignature/v1 lines of one witness on a signed
# checkpoint note with Python's `cryptography`, independently of sealog:
# usage: cosignature_verify.py WITNESS_VKEY NOTE_FILE. Prints the count.
import base64, hashlib, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
vkey, path = sys.argv[1], sys.argv[2]
name, keyid_hex, b64 = vkey.split("+", 2)
raw = base64.b64decode(b64)
assert raw[0] == 0x04, "not a cosignature/v1 key"
pub = raw[1:]
assert hashlib.sha256(name.encode() + b"\n" + b"\x04" + pub).digest()[:4].hex() == keyid_hex
text = open(path, encoding="utf-8").read()
body, sigs = text.split("\n\n", 1)
body += "\n"
n = 0
for line in sigs.splitlines():
    dash, kname, blob = line.split(" ")
    if kname != name:
        continue
    blob = base64.b64decode(blob)
    assert blob[:4].hex() == keyid_hex
    (t,) = struct.unpack(">Q", blob[4:12])
    msg = b"cosignature/v1\ntime %d\n" % t + body.encode()
    Ed25519PublicKey.from_public_bytes(pub).verify(blob[12:], msg)
    n += 1
print("cosignatures verified:", n)
