"""Splits `perf script -F comm,ip,sym` samples of a keybroker server into the parts of the
request path, by the frames of each sample's call stack (leaf first).

BoringSSL's assembly has no frame pointers, so its samples often carry only the leaf: the
RSA rule therefore looks at the leaf. Every other rule looks for the innermost frame that
names a part (the audit log, the authenticator, JSON, ...), so a sample in `malloc` called
from the JSON decoder counts as JSON.
"""

import argparse
import collections
import re
import sys

# (part, pattern on a frame's symbol); the first rule that matches the innermost frame wins.
RSA = re.compile(r"CCryptoBoringSSL|^bn_|_bn_|mulx4x|sqrx8x|^rsaz_|powerx5|BN_")
PARTS = [
    ("audit log (JSON line, queue, write)", re.compile(r"AuditLog")),
    ("authentication (token hash, lookup)", re.compile(r"TokenAuthenticator|RequirePermission")),
    ("request body decoding (JSON, base64)", re.compile(r"APIRequestDecoder|JSONDecoder|base64|Base64")),
    ("response encoding (JSON)", re.compile(r"APIResponseEncoder|UnwrapResponse|ResponseEncodable")),
    ("private-key cache", re.compile(r"PrivateKeyCache")),
    ("metrics", re.compile(r"Metrics|Counter|Timer|Recorder")),
    ("Hummingbird routing and responder", re.compile(r"Hummingbird|Router|KeyBrokerResponder")),
    ("NIO channel and HTTP parsing", re.compile(r"NIO|llhttp|c_nio")),
    ("Swift concurrency (task switches, continuations)", re.compile(r"swift_task|swift_job|AsyncTask|Continuation|swift::")),
]
KERNEL_PARTS = [
    ("kernel: scheduling and wake-ups (futex, switches)", re.compile(r"futex|schedule|switch|wake|sched_|ttwu|enqueue|dequeue")),
    ("kernel: sockets and epoll", re.compile(r"tcp|sock|skb|epoll|ep_|inet|ip_|net_|__sys_recv|__sys_send|sendmsg|recvmsg|loopback")),
    ("kernel: file writes", re.compile(r"ext4|vfs_write|file_write|xfs|generic_perform_write")),
]


def samples(lines):
    """Yields (comm, [symbols, leaf first]) per sample."""
    comm, frames = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line.startswith(("\t", " ")):
            comm, frames = line.strip(), []
            continue
        parts = line.split(None, 1)
        address = parts[0]
        symbol = parts[1].strip() if len(parts) > 1 else "[unknown]"
        frames.append((address, symbol))
    if comm is not None:
        yield comm, frames


def classify(frames):
    if not frames:
        return "unknown"
    leaf_address, leaf = frames[0]
    if RSA.search(leaf):
        return "RSA-3072 private-key operation (BoringSSL)"
    if leaf_address.startswith("ffffffff"):
        for _, symbol in frames:
            for part, pattern in KERNEL_PARTS:
                if pattern.search(symbol):
                    return part
        return "kernel: other"
    for _, symbol in frames:
        for part, pattern in PARTS:
            if pattern.search(symbol):
                return part
    if re.search(r"malloc|free|memmove|memcpy|swift_retain|swift_release|swift_alloc|swift_dealloc", leaf):
        return "allocation and reference counting (elsewhere)"
    return "other user space"


def main():
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--cpu-seconds", type=float, required=True, help="the server's CPU time while sampled (/proc)")
    arguments.add_argument("--seconds", type=float, required=True, help="how long it was sampled")
    arguments.add_argument("--requests", type=float, required=True, help="unwraps answered meanwhile")
    options = arguments.parse_args()
    counts = collections.Counter()
    for _, frames in samples(sys.stdin):
        counts[classify(frames)] += 1
    total = sum(counts.values())
    if total == 0:
        sys.exit("no samples: was perf allowed to trace the server?")
    # The shares come from the samples; the time per unwrap from the kernel's account of the
    # server's CPU time, which does not depend on how many samples perf kept.
    cores = options.cpu_seconds / options.seconds
    per_request_us = options.cpu_seconds / max(options.requests, 1) * 1e6
    print(f"server CPU: {cores:.2f} cores busy, {per_request_us:.0f} µs of CPU per unwrap ({total} samples)")
    print(f"{'part of the request path':52} {'share':>7} {'µs/unwrap':>10}")
    for part, count in counts.most_common():
        share = count / total
        print(f"{part:52} {share:7.1%} {share * per_request_us:10.0f}")


if __name__ == "__main__":
    main()
