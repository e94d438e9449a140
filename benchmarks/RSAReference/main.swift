// The unwrap's RSA-3072 decryption alone, in a tight loop on N threads: the same
// `PrivateKeyMaterial.unwrapDataKey` (swift-crypto's BoringSSL) the server calls, with no
// HTTP, JSON, audit or thread hops. benchmarks/run prints the server's unwrap rate against
// this and against `openssl speed`, so that the gap between the two references (BoringSSL
// vs OpenSSL) is not mistaken for server overhead.
//
//   rsa-reference THREADS SECONDS   prints "<operations per second>"
import Foundation
import KeyBrokerModel
import Synchronization

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
guard arguments.count == 2, arguments[0] > 0, arguments[1] > 0 else {
    FileHandle.standardError.write(Data("usage: rsa-reference THREADS SECONDS\n".utf8))
    exit(2)
}
let (threads, seconds) = (arguments[0], arguments[1])

do {
    let key = try PrivateKeyMaterial(generating: .rsa3072)
    let dataKey = Data((0..<32).map { UInt8($0) })
    let wrapped = try PublicKeyEncryption.wrapDataKey(dataKey, publicKeyDER: key.publicKeyDER)
    let operations = Atomic<Int>(0)
    let deadline = ContinuousClock.now + .seconds(seconds)
    let group = DispatchGroup()
    for index in 0..<threads {
        group.enter()
        let thread = Thread {
            var count = 0
            while ContinuousClock.now < deadline {
                guard (try? key.unwrapDataKey(wrapped)) == dataKey else { fatalError("the reference unwrap failed") }
                count += 1
            }
            operations.add(count, ordering: .relaxed)
            group.leave()
        }
        thread.name = "rsa-reference-\(index)"
        thread.start()
    }
    group.wait()
    print(String(format: "%.1f", Double(operations.load(ordering: .relaxed)) / Double(seconds)))
} catch {
    FileHandle.standardError.write(Data("rsa-reference: \(error)\n".utf8))
    exit(1)
}
