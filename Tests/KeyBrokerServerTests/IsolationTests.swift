import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
import NIOCore
import Testing

@testable import KeyBrokerTestSupport

/// Nothing leaks across organizations or out of the server: a token scoped to one
/// organization learns nothing of another's, nor of the server's files.
@Suite("Nothing leaks across organizations or out of the server")
struct IsolationTests {
    @Test("status for a scoped token: no field anywhere names another organization or a server path")
    func statusRedactedEverywhere() async throws {
        let body = ServerFixture.configBody(
            organizations: "{ acme: { keystore: shared }, beta: { keystore: shared } }",
            extraKeystores: "  shared: { type: test-failing, failOn: decrypt-leaky }"
        )
        let fixture = try await ServerFixture.make(body: body)
        let broker = fixture.server.runtime.broker
        try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let beta = try await broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            // beta's failed call marks the shared keystore unhealthy with beta's error.
            try await client.execute(
                uri: "/v1/orgs/beta/unwrap",
                method: .post,
                headers: fixture.headers("admin"),
                body: try ServerFixture.unwrapBody(beta, Fixtures.dataKey())
            ) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/v1/status", method: .get, headers: fixture.headers("viewer")) { response in
                #expect(response.text.contains("beta"), "an operator sees it all")
                #expect(response.text.contains("/srv/keybroker"))
            }
            for uri in ["/v1/status", "/v1/orgs/acme"] {
                try await client.execute(uri: uri, method: .get, headers: fixture.headers("acme-admin")) { response in
                    #expect(response.status == .ok, "\(uri)")
                    #expect(!response.text.contains("beta"), "\(uri): \(response.text)")
                    #expect(!response.text.contains("/srv/keybroker"), "\(uri)")
                    #expect(!response.text.contains(fixture.directory.url.path), "\(uri)")
                }
            }
        }
    }

    @Test("a keystore error shown to a scoped token carries its kind and code, not the server's paths; '*' tokens see them")
    func errorsWithoutPaths() async throws {
        let setup = try await ServerFixture.make()
        try await setup.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let key = setup.directory.path("data/master.key")
        #expect(chmod(key, 0o644) == 0)
        // A new server reads the key file again (a running one keeps the key it read).
        let fixture = try await ServerFixture.make(directory: setup.directory)
        try await fixture.test { client in
            for (token, seesPath) in [("acme-admin", false), ("admin", true)] {
                try await client.execute(uri: "/v1/orgs/acme/keypairs", method: .post, headers: fixture.headers(token)) { response in
                    #expect(response.status == .serviceUnavailable, "\(token)")
                    #expect(response.text.contains(key) == seesPath, "\(token): \(response.text)")
                    if !seesPath { #expect(response.text.contains("reported denied"), "\(token): the kind is named") }
                }
                try await client.execute(uri: "/v1/orgs/acme/test", method: .post, headers: fixture.headers(token)) { response in
                    #expect(response.status == .ok)
                    #expect(response.text.contains(key) == seesPath, "\(token): \(response.text)")
                }
            }
        }
    }

    @Test("a candidate's path is no file oracle: every path gets the same refusal, and nothing about the file")
    func candidatePathIsNoOracle() async throws {
        let fixture = try await ServerFixture.make()
        #expect(mkfifo(fixture.directory.path("fifo"), 0o600) == 0)
        let paths = [
            "/etc/shadow", "/etc/passwd", "/nonexistent/master.key", fixture.directory.path("fifo"), fixture.directory.url.path,
            fixture.directory.path("data/master.key"), "relative.key",
        ]
        try await fixture.test { client in
            var messages: Set<String> = []
            for path in paths {
                try await client.execute(
                    uri: "/v1/orgs/acme/test",
                    method: .post,
                    headers: fixture.headers("admin"),
                    body: try ByteBuffer(json: ["keystore": ["type": "local-file", "path": path]])
                ) { response in
                    #expect(response.status == .badRequest, "\(path)")
                    let error = try response.json(ErrorBody.self).error
                    messages.formUnion(error.diagnostics?.map(\.message) ?? [])
                    for leak in ["mode", "640", "exist", "regular file", "bytes", "uid"] {
                        #expect(!response.text.contains(leak), "\(path): '\(leak)' in \(response.text)")
                    }
                }
            }
            #expect(
                messages == [
                    "'keystore.path' is not allowed in a keystore sent over the API: it names a file on the server; test such a keystore on the host with keybroker test --candidate FILE"
                ]
            )
        }
    }

    @Test("unwrap returns 32-byte data keys only: any other plaintext gets one answer, without detail")
    func unwrapIsNoDecryptionOracle() async throws {
        let fixture = try await ServerFixture.make()
        let pair = try await fixture.server.runtime.broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        try await fixture.test { client in
            var refusals: Set<String> = []
            for size in [0, 1, 16, 31, 33, 48, 64, 190] {
                let plaintext = Data((0..<size).map { UInt8(truncatingIfNeeded: $0) })
                try await client.execute(
                    uri: "/v1/orgs/acme/unwrap",
                    method: .post,
                    headers: fixture.headers("acme-recorder"),
                    body: try ServerFixture.unwrapBody(pair, plaintext)
                ) { response in
                    #expect(response.status == .badRequest, "\(size) bytes")
                    #expect(!response.text.contains("dataKey"), "\(size) bytes")
                    refusals.insert(response.text)
                }
            }
            let dataKey = Fixtures.dataKey()
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ServerFixture.unwrapBody(pair, dataKey)
            ) { response in
                #expect(response.status == .ok)
                let answer = try response.json(UnwrapResponse.self)
                #expect(answer.dataKey == dataKey.base64EncodedString())
            }
            // Garbage that is no RSA ciphertext at all gets the same answer too.
            try await client.execute(
                uri: "/v1/orgs/acme/unwrap",
                method: .post,
                headers: fixture.headers("acme-recorder"),
                body: try ByteBuffer(json: [
                    "keyPairId": pair.id.uuidString, "wrappedKey": Data(repeating: 7, count: 256).base64EncodedString(),
                ])
            ) {
                refusals.insert($0.text)
            }
            #expect(refusals.count == 1, "one answer for every refusal: \(refusals)")
        }
    }

    @Test("another organization's pair id answers exactly as an unknown id: the organization is part of the lookup")
    func otherOrganizationsPairIsUnknown() async throws {
        let fixture = try await ServerFixture.make()
        let broker = fixture.server.runtime.broker
        try await broker.generateKeyPair(for: Fixtures.org("acme"), reason: .initial, requestedBy: "test")
        let beta = try await broker.generateKeyPair(for: Fixtures.org("beta"), reason: .initial, requestedBy: "test")
        // A damaged row of beta's: were it read before the organization check, acme would get
        // beta's "corrupt record" (and learn that the id exists) instead of "not found".
        try Fixtures.editRow(fixture, column: "created_at_us", value: "'yesterday'", of: beta.id)
        try await fixture.test { client in
            var answers: [String] = []
            for id in [beta.id, UUID()] {
                let body = try ByteBuffer(json: [
                    "keyPairId": id.uuidString, "wrappedKey": Data(repeating: 1, count: 256).base64EncodedString(),
                ])
                try await client.execute(uri: "/v1/orgs/acme/unwrap", method: .post, headers: fixture.headers("admin"), body: body) {
                    response in
                    #expect(response.status == .notFound)
                    answers.append(response.text.replacingOccurrences(of: id.uuidString.lowercased(), with: "ID"))
                }
            }
            #expect(answers.count == 2 && answers.first == answers.last)
        }
    }
}
