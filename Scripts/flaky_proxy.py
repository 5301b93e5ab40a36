#!/usr/bin/env python3
"""A deliberately unreliable TCP proxy for FieldSync's reliability tests (stdlib only).

    flaky_proxy.py LISTEN_PORT TARGET_HOST:PORT SEED DROP TRUNCATE DELAY [--max-delay S] [--lifetime S]

Listens on 127.0.0.1:LISTEN_PORT (0 = any free port) and prints the port it bound on the first line
of stdout. Each accepted connection is forwarded to TARGET, with faults drawn at random (seeded, so
a run with the same SEED makes the same draws; thread timing can still differ):

  DROP      probability that a connection is dropped. Half of it is drawn when the connection is
            accepted (closed before anything is forwarded); the other half for each chunk of the
            server's answer (the request reached the server and it did the work, but the client
            never hears of it).
  TRUNCATE  probability, for each chunk of the server's answer, that it is cut off at a random
            byte and the connection closed.
  DELAY     probability, for each chunk of the answer, that it is held back by a random delay of
            up to --max-delay seconds (default 0.3).

Faults are independent draws; a chunk may be delayed and then truncated. A kept-alive HTTP
connection carries many requests, so the draws are repeated for each answer. One line per connection
and fault goes to stderr. The proxy exits when its stdin reaches end of file (so it cannot outlive
the test that started it with a pipe on stdin), on SIGTERM/SIGINT, or after --lifetime seconds
(default 600).
"""

import argparse
import os
import random
import signal
import socket
import sys
import threading
import time


def log(message):
    sys.stderr.write("flaky_proxy: " + message + "\n")
    sys.stderr.flush()


def close_quietly(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def handle(client, target, rng, args, number):
    if rng.random() < args.drop / 2:
        log(f"#{number} drop before forwarding")
        close_quietly(client)
        return
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError as error:
        log(f"#{number} cannot reach target: {error}")
        close_quietly(client)
        return
    upstream.settimeout(None)
    done = threading.Event()

    def client_to_server():
        try:
            while not done.is_set():
                data = client.recv(65536)
                if not data:
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    forward = threading.Thread(target=client_to_server, daemon=True)
    forward.start()
    try:
        while True:
            # On a kept-alive connection each chunk is usually one answer (or part of a large one):
            # the faults are drawn per chunk.
            data = upstream.recv(65536)
            if not data:
                break
            if rng.random() < args.drop / 2:
                log(f"#{number} drop after the request reached the server")
                break
            if rng.random() < args.delay:
                time.sleep(rng.uniform(0, args.max_delay))
            if rng.random() < args.truncate:
                keep = rng.randint(0, len(data) - 1)
                if keep:
                    client.sendall(data[:keep])
                log(f"#{number} truncated an answer chunk after {keep} of {len(data)} bytes")
                break
            client.sendall(data)
    except OSError:
        pass
    finally:
        done.set()
        close_quietly(client)
        close_quietly(upstream)


def main():
    parser = argparse.ArgumentParser(description="An unreliable TCP proxy for tests.")
    parser.add_argument("listen_port", type=int)
    parser.add_argument("target", help="HOST:PORT")
    parser.add_argument("seed", type=int)
    parser.add_argument("drop", type=float)
    parser.add_argument("truncate", type=float)
    parser.add_argument("delay", type=float)
    parser.add_argument("--max-delay", type=float, default=0.3)
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    target = (host or "127.0.0.1", int(port))
    for p in (args.drop, args.truncate, args.delay):
        if not 0 <= p <= 1:
            parser.error("probabilities must be from 0 to 1")

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen_port))
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(1024):
                pass
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()

    master = random.Random(args.seed)
    number = 0
    while True:
        client, _ = listener.accept()
        number += 1
        rng = random.Random(master.getrandbits(64))
        threading.Thread(target=handle, args=(client, target, rng, args, number), daemon=True).start()


if __name__ == "__main__":
    main()
