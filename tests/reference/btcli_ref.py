#!/usr/bin/env python3
"""bittensor-wallet's side of the wallet tests (tests/btcli_wallets.sh), in .venv-btcli.

  btcli_ref.py addresses PATH NAME HOTKEY          coldkeypub's and hotkey's SS58 addresses
  btcli_ref.py sign PATH NAME HOTKEY MESSAGE       0x signature by the hotkey (sr25519)
  btcli_ref.py verify SS58 MESSAGE 0xSIG           "valid" or "INVALID"
  btcli_ref.py coldkey PATH NAME PASSWORD          the coldkey's address, decrypted with PASSWORD
  btcli_ref.py tty PASSWORD CMD...                 runs CMD on a pseudo-terminal, answering each
                                                   password prompt (btcli reads it from a tty)
"""
import os
import pty
import re
import select
import sys
import time


def wallet(path, name, hotkey="default"):
    import bittensor_wallet as bw
    return bw.Wallet(name=name, hotkey=hotkey, path=path)


def addresses(path, name, hotkey):
    w = wallet(path, name, hotkey)
    print(w.coldkeypub.ss58_address, w.hotkey.ss58_address)


def sign(path, name, hotkey, message):
    print("0x" + wallet(path, name, hotkey).hotkey.sign(message.encode()).hex())


def verify(address, message, signature):
    import bittensor_wallet as bw
    ok = bw.Keypair(ss58_address=address).verify(message.encode(), bytes.fromhex(signature[2:]))
    print("valid" if ok else "INVALID")


def coldkey(path, name, password):
    print(wallet(path, name).coldkey_file.get_keypair(password=password).ss58_address)


def tty(password, *cmd):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], list(cmd))
    out, pending = b"", b""
    deadline = time.time() + 120
    while time.time() < deadline:
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        pending += chunk
        if re.search(rb"(?i)password[^\n]*:\s*$", pending):
            os.write(fd, password.encode() + b"\n")
            pending = b""
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    commands = {"addresses": addresses, "sign": sign, "verify": verify, "coldkey": coldkey,
                "tty": tty}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
