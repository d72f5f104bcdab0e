"""bittensor-drand (PyPI, the SDK's timelock) as the reference for bistro's drand timelock.

  drand_ref.py decrypt SIGNATURE_HEX FILE   FILE holds a bare timelock ciphertext; prints the
                                            plaintext as hex (bittensor-drand decrypts it)
  drand_ref.py encrypt ROUND DATA_HEX FILE  writes bittensor-drand's ciphertext of DATA to FILE
"""
import sys

import bittensor_drand as bd


def compact(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    return ((n << 2) | 2).to_bytes(4, "little")


def unwrap(user_data: bytes) -> bytes:
    """bittensor-drand's UserData {encrypted_data: Vec<u8>, reveal_round: u64} -> the ciphertext."""
    mode = user_data[0] & 3
    if mode == 0:
        n, at = user_data[0] >> 2, 1
    elif mode == 1:
        n, at = int.from_bytes(user_data[:2], "little") >> 2, 2
    else:
        n, at = int.from_bytes(user_data[:4], "little") >> 2, 4
    assert len(user_data) == at + n + 8, "UserData of an unexpected length"
    return user_data[at:at + n]


def main() -> None:
    if sys.argv[1] == "decrypt":
        ct = open(sys.argv[3], "rb").read()
        round_ = 1000  # UserData names a round; the signature given decides
        plain = bd.decrypt_with_signature(compact(len(ct)) + ct + round_.to_bytes(8, "little"),
                                          sys.argv[2])
        print(plain.hex())
    elif sys.argv[1] == "encrypt":
        user_data = bd.encrypt_at_round(bytes.fromhex(sys.argv[3]), int(sys.argv[2]))
        if isinstance(user_data, tuple):
            user_data = user_data[0]
        open(sys.argv[4], "wb").write(unwrap(bytes(user_data)))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
