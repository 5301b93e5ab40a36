#!/usr/bin/env python3
"""Writes attachments.json: attachment manifests, content registers, a signed receipt and a plaintext
sidecar part (Protocol/sync-protocol.md, sections 12.6 and 19), made with Python's hashlib and the
`cryptography` package, independently of the Swift code, which must reproduce every value.

    python3 -m pip install cryptography && python3 Protocol/vectors/make-attachment-vectors.py
"""
import base64, hashlib, json, os
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MIB = 1024 * 1024
DEFAULT_CHUNK = MIB
MAX_CHUNK = 8 * MIB
MAX_CHUNKS_BEFORE_GROWING = 16384


def canonical_string(s):
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif code < 0x20:
            out.append("\\u%04x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical(value):
    """Canonical JSON (spec 5.2) for the values used here: objects, arrays, strings, integers, booleans."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        assert abs(value) <= 1 << 53
        return str(value)
    if isinstance(value, str):
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(canonical_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise TypeError("no canonical form here for %r" % (value,))


def chunk_size_for(size):
    """spec 19.2: 1 MiB, doubled while the file would have more than 16,384 chunks, at most 8 MiB."""
    chunk = DEFAULT_CHUNK
    while chunk < MAX_CHUNK and -(-size // chunk) > MAX_CHUNKS_BEFORE_GROWING:
        chunk *= 2
    return chunk


def chunk_count(size, chunk):
    return 1 if size == 0 else -(-size // chunk)


def manifest_of(data):
    chunk = chunk_size_for(len(data))
    hashes = [hashlib.sha256(data[i * chunk:(i + 1) * chunk]).hexdigest() for i in range(chunk_count(len(data), chunk))]
    manifest = {"format": 1, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "chunk_size": chunk,
                "chunks": hashes}
    text = canonical(manifest)
    manifest_hash = hashlib.sha256(text.encode()).hexdigest()
    content = {"size": len(data), "chunk_size": chunk, "manifest": manifest_hash}
    return {
        "size": len(data),
        "sha256": manifest["sha256"],
        "chunk_size": chunk,
        "chunk_count": len(hashes),
        "chunk_lengths": [len(data[i * chunk:(i + 1) * chunk]) for i in range(len(hashes))],
        "chunks": hashes,
        "manifest_canonical": text,
        "manifest_sha256": manifest_hash,
        "content_canonical": canonical(content),
        "content_path": "attachments.%s.content" % manifest["sha256"],
    }


def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def be32(n):
    return n.to_bytes(4, "big")


def part_record(header, payload):
    header_bytes = canonical(header).encode()
    plain = be32(len(header_bytes)) + header_bytes + payload
    return be32(len(plain)) + plain


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))

    # (a) 2.5 MiB + 5 bytes: two full chunks and a short last one.
    size = 2621440 + 5
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    patterned = manifest_of(data)
    # The pattern repeats every 256 bytes, so chunks 0 and 1 are the same bytes: the manifest lists
    # one hash twice, and a store must keep chunks by index, not by hash alone.
    patterned["name"] = "2,621,445 bytes, byte i = (i * 7 + 3) mod 256 (chunks 0 and 1 are identical)"
    patterned["bytes_rule"] = "(i * 7 + 3) % 256"

    # (b) The empty file: exactly one empty chunk, whose hash is SHA-256 of nothing.
    empty = manifest_of(b"")
    empty["name"] = "the empty file"
    empty["bytes_rule"] = "none (size 0)"

    # (c) A receipt for (a), by the central node key of certificates.json (seed 32 bytes of 0x09).
    seed = bytes([9]) * 32
    server = Ed25519PrivateKey.from_private_bytes(seed)
    public = raw_public(server)
    fingerprint = "sha256:" + hashlib.sha256(public).hexdigest()
    unsigned = {"sha256": patterned["sha256"], "size": size, "manifest": patterned["manifest_sha256"],
                "received": 1741340400000, "node": "bbbbbbbbbbbbbbbb", "account": "omar", "issuer": fingerprint}
    signed_text = "fieldsync attachment receipt v1\n" + canonical(unsigned)
    signature = base64.b64encode(server.sign(signed_text.encode())).decode()
    receipt = dict(unsigned, sig=signature)
    tampered = dict(receipt, size=size + 1)

    # (d) The chunk-size rule at its edges.
    rule = []
    for s in [0, 1, MIB, 16 << 30, (16 << 30) + 1, 32 << 30, (32 << 30) + 1, 64 << 30, (64 << 30) + 1, 1 << 40]:
        c = chunk_size_for(s)
        rule.append({"size": s, "chunk_size": c, "chunk_count": chunk_count(s, c)})

    # (e) A plaintext sidecar part (spec 12.6) holding the empty file's manifest and its one chunk.
    part = b"fieldsync-blob-part\n" + bytes([1, 0])
    part += part_record({"kind": "manifest", "length": len(empty["manifest_canonical"])}, empty["manifest_canonical"].encode())
    part += part_record({"kind": "chunk", "sha256": empty["sha256"], "index": 0, "length": 0}, b"")

    vector = {
        "description": (
            "Attachment vectors (spec 19, 12.6), written by make-attachment-vectors.py with hashlib and the "
            "`cryptography` package. `files`: for each file, its whole SHA-256, the chunk size the writer's rule "
            "picks, each chunk's length and SHA-256, the manifest's canonical text (keys sorted by UTF-8 bytes, "
            "no whitespace, integers without fraction: spec 5.2) and its SHA-256 (the manifest's address), and "
            "the canonical text of the record's `attachments.<sha256>.content` register value. `receipt`: a "
            "central node receipt for the first file, signed with the Ed25519 key whose 32-byte seed is given "
            "(the central node key of certificates.json); `signed_text` is exactly the bytes signed, as UTF-8 "
            "(the domain line, then the canonical JSON of every member but `sig`); Ed25519 is deterministic, so "
            "signing `signed_text` with the seed gives `receipt.sig` again. `tampered_receipt` must not verify. "
            "`chunk_size_rule`: sizes at the edges of the doubling rule. `sidecar_part`: a plaintext sidecar part "
            "(spec 12.6) with the empty file's manifest record and its one chunk record."
        ),
        "files": [patterned, empty],
        "receipt_domain": "fieldsync attachment receipt v1\n",
        "server_key_seed": seed.hex(),
        "server_key": base64.b64encode(public).decode(),
        "server_fingerprint": fingerprint,
        "receipt": receipt,
        "signed_text": signed_text,
        "tampered_receipt": tampered,
        "chunk_size_rule": rule,
        "sidecar_part": {
            "about": "magic line, format 1, sealing 0 (clear), then a manifest record and a chunk record of the empty file",
            "base64": base64.b64encode(part).decode(),
            "hex": part.hex(),
        },
    }
    with open(os.path.join(here, "attachments.json"), "w") as f:
        json.dump(vector, f, indent=2, ensure_ascii=True)
        f.write("\n")
