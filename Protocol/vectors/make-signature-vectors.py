#!/usr/bin/env python3
"""Writes signatures.json: Ed25519 verdicts at the edges of spec 14.3's rule.

An independent implementation in plain Python integers (hashlib for SHA-512). The rule is RFC 8032
5.1.7's cofactorless check as BoringSSL's ED25519_verify computes it, which every FieldSync
verifier must follow exactly (a revision one replica accepts and another refuses would split the
archive):
  - s is below the group order l (and so the top three bits of the signature's last byte are 0);
  - the key decodes: y is its 255 low bits taken modulo p (a y of p or more is accepted), x the
    square root of (y^2 - 1) / (d y^2 + 1) whose parity the top bit gives (x = 0 with the top bit
    set is accepted as 0); a key with no such root is refused;
  - h = SHA-512(R || the key's 32 bytes as given || message) modulo l;
  - the canonical encoding of [s]B - [h]A equals R, byte for byte (so a non-canonical R is refused,
    and so is an R with a small-order component unless [h]A's cancels it exactly).
Run: python3 make-signature-vectors.py > signatures.json
"""
import hashlib
import json
import random

p = 2**255 - 19
l = 2**252 + 27742317777372353535851937790883648493
d = -121665 * pow(121666, p - 2, p) % p
sqrt_m1 = pow(2, (p - 1) // 4, p)


def inv(x):
    return pow(x, p - 2, p)


def add(P, Q):
    x1, y1, z1, t1 = P
    x2, y2, z2, t2 = Q
    a = (y1 - x1) * (y2 - x2) % p
    b = (y1 + x1) * (y2 + x2) % p
    c = t1 * 2 * d * t2 % p
    dd = z1 * 2 * z2 % p
    e, f, g, h = b - a, dd - c, dd + c, b + a
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def neg(P):
    x, y, z, t = P
    return (-x % p, y, z, -t % p)


IDENTITY = (0, 1, 1, 0)


def mul(k, P):
    Q = IDENTITY
    while k > 0:
        if k & 1:
            Q = add(Q, P)
        P = add(P, P)
        k >>= 1
    return Q


def encode(P):
    x, y, z, _ = P
    zi = inv(z)
    x, y = x * zi % p, y * zi % p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(s):
    """BoringSSL's x25519_ge_frombytes_vartime: None when there is no x."""
    value = int.from_bytes(s, "little")
    y = (value & (2**255 - 1)) % p
    sign = value >> 255
    u = (y * y - 1) % p
    v = (d * y * y + 1) % p
    x = u * pow(u * v % p, (p - 5) // 8, p) % p
    vxx = v * x * x % p
    if vxx != u:
        if vxx != (-u) % p:
            return None
        x = x * sqrt_m1 % p
    if (x & 1) != sign:
        x = -x % p
    return (x, y, 1, x * y % p)


B = decode((4 * inv(5) % p).to_bytes(32, "little"))


def sha512_int(*parts):
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def verify(key, message, signature):
    if len(signature) != 64 or signature[63] & 0xE0:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= l:
        return False
    A = decode(key)
    if A is None:
        return False
    h = sha512_int(signature[:32], key, message) % l
    return encode(add(mul(s, B), neg(mul(h, A)))) == signature[:32]


def secret_scalar(seed):
    digest = hashlib.sha512(seed).digest()
    a = bytearray(digest[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    return int.from_bytes(a, "little"), digest[32:]


def sign(seed, message):
    """RFC 8032 5.1.6, deterministic."""
    a, prefix = secret_scalar(seed)
    key = encode(mul(a, B))
    r = sha512_int(prefix, message) % l
    R = encode(mul(r, B))
    s = (r + sha512_int(R, key, message) % l * a) % l
    return key, R + s.to_bytes(32, "little")


def sign_raw(a, key, message, r, offset=IDENTITY):
    """What a modified client holding scalar a can sign for any key bytes it claims."""
    R = encode(add(mul(r, B), offset))
    s = (r + sha512_int(R, key, message) % l * a) % l
    return R + s.to_bytes(32, "little")


rng = random.Random(19)
cases = []


def case(name, key, message, signature, why):
    cases.append(
        {
            "name": name,
            "public_key": key.hex(),
            "message": message.hex(),
            "signature": signature.hex(),
            "valid": verify(key, message, signature),
            "why": why,
        }
    )


# RFC 8032 7.1, test 1.
seed1 = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
key1, sig1 = sign(seed1, b"")
assert sig1.hex().startswith("e5564300c360ac72")
case("rfc8032-test-1", key1, b"", sig1, "RFC 8032 7.1 test 1")
message = b'{"v":2,"example":"a revision\'s signed bytes"}'
seed = bytes(range(32))
key, sig = sign(seed, message)
case("valid", key, message, sig, "a signature by the key's holder")
case("altered-message", key, message + b" ", sig, "the message differs by one byte")
s = int.from_bytes(sig[32:], "little")
case("s-plus-order", key, message, sig[:32] + (s + l).to_bytes(32, "little"), "s + l: the same scalar modulo l, refused because s must be below l")
high = bytearray(sig)
high[63] |= 0x40
case("s-high-bits", key, message, bytes(high), "the top bits of s set")
case("not-a-point", bytes([2] + [0] * 31), message, sig, "y = 2 has no x: the key does not decode")

# The identity key, in its three encodings: [s]B - [h]O = [s]B, so R = [s]B verifies any message.
s_any = rng.randrange(l)
R_any = encode(mul(s_any, B))
identity_keys = {
    "identity-key": bytes([1] + [0] * 31),
    "identity-key-y-plus-p": (p + 1).to_bytes(32, "little"),
    "identity-key-sign-bit": bytes([1] + [0] * 30 + [0x80]),
}
for name, k in identity_keys.items():
    case(name, k, message, R_any + s_any.to_bytes(32, "little"), "a small-order key is not refused; its encodings decode as BoringSSL decodes them")
top_s = 2**252 + rng.randrange(l - 2**252)
case("identity-key-s-above-2^252", identity_keys["identity-key"], message, encode(mul(top_s, B)) + top_s.to_bytes(32, "little"), "s in [2^252, l) is below l")
zero_sig = encode(IDENTITY) + bytes(32)
case("identity-key-zero-signature", identity_keys["identity-key"], b"", zero_sig, "s = 0 and R = the identity")
case("non-canonical-R", identity_keys["identity-key"], b"", (p + 1).to_bytes(32, "little") + bytes(32), "R = y + p never equals a computed encoding")

# A point of order 8, as [l]P for a point P of the full group.
while True:
    P = decode(rng.randbytes(32))
    if P is None:
        continue
    T = mul(l, P)
    if encode(mul(4, T)) != encode(IDENTITY):
        break
a, _ = secret_scalar(bytes(range(1, 33)))
torsioned_key = encode(add(mul(a, B), T))
found = {}
while len(found) < 2:
    m = rng.randbytes(16)
    signature = sign_raw(a, torsioned_key, m, rng.randrange(l))
    found.setdefault(verify(torsioned_key, m, signature), (m, signature))
case("torsioned-key-accepted", torsioned_key, found[True][0], found[True][1], "key A + T (T of order 8): accepted when [h]T = O, h reduced modulo l")
case("torsioned-key-refused", torsioned_key, found[False][0], found[False][1], "key A + T: refused when [h]T is not O (cofactorless)")
plain_key = encode(mul(a, B))
case("torsioned-R", plain_key, message, sign_raw(a, plain_key, message, rng.randrange(l), offset=T), "R + T: a cofactored check accepts it, this one refuses it")
order8_key = encode(T)
while True:
    s8 = rng.randrange(l)
    offsets = [mul(k, T) for k in range(8)]
    hits = [o for o in offsets if verify(order8_key, message, encode(add(mul(s8, B), o)) + s8.to_bytes(32, "little"))]
    if hits:
        case("order-8-key", order8_key, message, encode(add(mul(s8, B), hits[0])) + s8.to_bytes(32, "little"), "a key of order 8, R = [s]B + T' with T' = -[h]A")
        break

print(
    json.dumps(
        {
            "description": "Ed25519 verdicts at the edges of spec 14.3's rule (RFC 8032 5.1.7, cofactorless, as BoringSSL computes it), written by make-signature-vectors.py with plain Python integers. Every case: a public key, a message and a signature (hex) and whether the signature verifies. A FieldSync verifier must give exactly these verdicts.",
            "cases": cases,
        },
        indent=2,
    )
)
