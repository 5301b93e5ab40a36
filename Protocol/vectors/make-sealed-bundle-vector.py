#!/usr/bin/env python3
"""Writes sealed-bundles.json: a sealed bundle (Protocol/sync-protocol.md, section 12.5) made with
Python's hashlib.scrypt and the `cryptography` package, independently of the Swift code, which
must open it to the same plain bundle.

    python3 -m pip install cryptography && python3 Protocol/vectors/make-sealed-bundle-vector.py
"""
import base64, hashlib, json, os, unicodedata
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

MAGIC = b"fieldsync-sealed-bundle\n"


def padme(length):
    if length <= 2:
        return length
    e = length.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (length + mask) & ~mask


def seal(plain, passphrase, log2n=17, salt=None, nonce=None):
    salt = salt or os.urandom(32)
    nonce = nonce or os.urandom(12)
    header = bytes([1, log2n, 8, 1]) + salt + nonce
    key = hashlib.scrypt(unicodedata.normalize("NFC", passphrase).encode(), salt=salt, n=1 << log2n, r=8, p=1,
                         maxmem=512 * 1024 * 1024, dklen=32)
    body = len(plain).to_bytes(8, "big") + plain
    body += bytes(padme(len(body)) - len(body))
    return MAGIC + header + ChaCha20Poly1305(key).encrypt(nonce, body, MAGIC + header)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    plain = (json.dumps({"format": "fieldsync-bundle", "note": "any bytes: the seal does not read them"},
                        separators=(",", ":")) + "\n").encode()
    # The passphrase is in NFD here ("e" + combining acute): the key must come from its NFC form.
    passphrase = "Jable\u0301h at dawn"
    sealed = seal(plain, passphrase, salt=bytes(range(32)), nonce=bytes(range(100, 112)))
    vector = {
        "about": "A sealed bundle (spec 12.5) written by make-sealed-bundle-vector.py; it opens with `passphrase` to `plain`.",
        "passphrase": passphrase,
        "sealed_base64": base64.b64encode(sealed).decode(),
        "plain_base64": base64.b64encode(plain).decode(),
        "wrong_passphrase": "Jableh at dusk",
    }
    with open(os.path.join(here, "sealed-bundles.json"), "w") as f:
        json.dump([vector], f, indent=2, ensure_ascii=True)
        f.write("\n")
