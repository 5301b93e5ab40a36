#!/usr/bin/env python3
"""Writes node-ids.json and certificates.json with an implementation independent of FieldSync's
(Python's `cryptography`), so the Swift tests check FieldSync against it. Run from the repository
root: python3 Protocol/vectors/make-trust-vectors.py"""
import base64, hashlib, json
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

def write(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")

nodes = []
for i in range(3):
    key = Ed25519PrivateKey.from_private_bytes(bytes([i + 1]) * 32)
    nonce = bytes(range(i * 16, (i + 1) * 16))
    node = hashlib.sha256(b"fieldsync node id v1\n" + raw_public(key) + nonce).digest()[:8].hex()
    nodes.append({"public_key": base64.b64encode(raw_public(key)).decode(), "nonce": nonce.hex(), "node": node})
write("Protocol/vectors/node-ids.json", {
    "description": "Node ids bound to device keys (spec 2.1): node = first 8 bytes, hex, of SHA-256(\"fieldsync node id v1\\n\" || raw public key || nonce).",
    "cases": nodes,
})

server = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
fingerprint = "sha256:" + hashlib.sha256(raw_public(server)).hexdigest()
certificate = {"node": nodes[0]["node"], "public_key": nodes[0]["public_key"], "user": "rima", "role": "documenter",
               "issued": 1741340000000, "issuer": fingerprint}
signature = server.sign(b"fieldsync node certificate v1\n" + canonical(certificate).encode())
certificate["sig"] = base64.b64encode(signature).decode()
write("Protocol/vectors/certificates.json", {
    "description": "Node certificates (spec 15.9): sig is Ed25519 by the central node key over \"fieldsync node certificate v1\\n\" followed by the canonical JSON of the other members. The private key seed is given so that implementations can check their signing too (Ed25519 signatures are deterministic).",
    "server_key": base64.b64encode(raw_public(server)).decode(),
    "server_key_seed": (bytes([9]) * 32).hex(),
    "server_fingerprint": fingerprint,
    "cases": [
        {"name": "a valid certificate", "certificate": certificate, "valid": True},
        {"name": "the role changed after signing", "certificate": dict(certificate, role="admin"), "valid": False},
        {"name": "another issuer fingerprint", "certificate": dict(certificate, issuer="sha256:" + "0" * 64), "valid": False},
    ],
})
