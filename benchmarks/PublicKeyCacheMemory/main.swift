import Foundation
import KeyBroker
import KeyBrokerServer
import NIOCore
import _CryptoExtras

// What the public-key cache takes in memory at N organizations, for benchmarks/public-key:
// N entries of RSA-3072 pairs (the default spec) with distinct ids and organizations, measured
// as the process's resident memory before and after (scratch buffers freed while building
// entries are reused by the next ones, so the growth is the entries, allocator overhead
// included), beside the cache's own accounting and, as the reference,
// the bytes of the N whole answers it would take to keep them encoded.
//
//   public-key-cache-memory N...

func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kib = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
    else { return 0 }
    return kib * 1024
}

let der = try _RSA.Encryption.PrivateKey(keySize: .bits3072).publicKey.derRepresentation
let mib = 1024.0 * 1024.0

/// Fills a cache with `count` entries; returns it and the size of one whole answer.
func fill(_ count: Int) throws -> (PublicKeyCache, Int) {
    let cache = PublicKeyCache(limits: .init(maxEntries: count, maxBytes: Int.max))
    var answerBytes = 0
    for index in 0..<count {
        guard let organization = OrganizationID("org-\(String(format: "%07d", index))") else { continue }
        let record = KeyPairRecord(
            id: UUID(),
            organization: organization,
            keystoreName: "local",
            keystoreType: "local-file",
            backendKeyReference: "8a43f905f015095c",
            spec: .rsa3072,
            publicKeyDER: der,
            wrappedPrivateKey: Data(),
            encryptionContext: .organization(organization),
            createdAt: Date(),
            reason: .scheduled,
            requestedBy: "scheduler"
        )
        let entry = try CachedPublicKey(record)
        if index == 0 { answerBytes = entry.body(allocator: ByteBufferAllocator()).readableBytes }
        cache.insert(entry, for: organization, ticket: cache.ticket(for: organization))
    }
    return (cache, answerBytes)
}

// The process's own first-use costs (encoders, formatters, the allocator's first arenas) are
// paid once before measuring, by a cache of 2,000 entries thrown away.
_ = try fill(2000)
for argument in CommandLine.arguments.dropFirst() {
    guard let count = Int(argument), count > 0 else { continue }
    let before = residentBytes()
    let (cache, answerBytes) = try fill(count)
    let after = residentBytes()
    let resident = Double(after - before)
    let whole = Double(answerBytes * count)
    print(
        String(
            format:
                "%d organizations: %.1f MiB resident (%.0f bytes each), %.1f MiB by the cache's count; whole answers: %.1f MiB (%d bytes each); ratio resident/whole %.2f",
            count,
            resident / mib,
            resident / Double(count),
            Double(cache.bytes) / mib,
            whole / mib,
            answerBytes,
            resident / whole
        )
    )
    withExtendedLifetime(cache) {}
}
