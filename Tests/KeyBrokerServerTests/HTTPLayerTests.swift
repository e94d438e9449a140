import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
import Synchronization
import Testing

@testable import KeyBrokerTestSupport

@Suite("Server: the HTTP layer")
struct HTTPLayerTests {
    @Test(
        "a known path called with a method it does not serve answers 405 with Allow; an unknown path 404, both in the API's shape",
        arguments: [
            ("/v1/orgs/acme/keypairs", HTTPRequest.Method.delete, HTTPResponse.Status.methodNotAllowed, "GET, POST"),
            ("/v1/orgs/acme/unwrap", .get, .methodNotAllowed, "POST"),
            ("/v1/orgs/acme", .post, .methodNotAllowed, "GET"),
            ("/readyz", .put, .methodNotAllowed, "GET, HEAD"),
            ("/v1/status", .head, .methodNotAllowed, "GET"),
            ("/v1/admin/reload", .get, .methodNotAllowed, "POST"),
            ("/v1/nope", .get, .notFound, ""),
            ("/v1/orgs/acme/keypairs/extra/segments", .get, .notFound, ""),
        ]
    )
    func methodNotAllowed(_ path: String, _ method: HTTPRequest.Method, _ status: HTTPResponse.Status, _ allow: String) async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            try await client.execute(uri: path, method: method, headers: fixture.headers("admin")) { response in
                #expect(response.status == status, "\(method) \(path)")
                #expect(response.headers[.allow] == (allow.isEmpty ? nil : allow), "\(method) \(path)")
                #expect(
                    response.errorCode == (status == .notFound ? "not_found" : "method_not_allowed"),
                    "\(method) \(path): \(response.text)"
                )
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let line = #"keybroker_http_requests_total{route="unmatched",method="\#(method.rawValue)",status="\#(status.code)"} 1"#
                #expect(response.text.contains(line), "the refusal is counted: \(line)")
            }
        }
    }

    @Test(
        "a malformed organization id is 400 whatever the token: none, unknown or valid; a well-formed one without a token is 401",
        arguments: [nil, "kb_not-a-token", "admin"] as [String?]
    )
    func organizationIdBeforeToken(_ token: String?) async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            for path in ["/v1/orgs/..%2Fetc/public-key", "/v1/orgs/-lead/keypairs", "/v1/orgs/a%00b"] {
                try await client.execute(uri: path, method: .get, headers: fixture.headers(token)) { response in
                    #expect(response.status == .badRequest, "\(path) with \(token ?? "no token"): \(response.status)")
                    #expect(response.errorCode == "bad_request")
                }
            }
            try await client.execute(uri: "/v1/orgs/acme", method: .get, headers: fixture.headers(token)) { response in
                #expect(response.status == (token == "admin" ? .ok : .unauthorized), "\(token ?? "no token")")
            }
        }
    }

    @Test("one snapshot per request: with reloads racing requests, a request authenticated by one configuration is served by it")
    func snapshotPerRequest() async throws {
        let fixture = try await ServerFixture.make()
        // A: the viewer token is valid and acme rotates weekly. B: no viewer token, and acme
        // rotates daily. A request must see A whole (200, weekly) or B whole (401).
        let a = ServerFixture.yaml(tokens: fixture.tokens, body: ServerFixture.configBody())
        let b =
            ServerFixture.yaml(
                tokens: fixture.tokens,
                body: ServerFixture.configBody(organizations: "{ acme: { rotation: daily }, beta: {} }")
            )
            .split(separator: "\n").filter { !$0.contains("name: viewer,") }.joined(separator: "\n") + "\n"
        let path = fixture.configPath
        let requestsDone = Atomic<Bool>(false)
        // Reloads keep alternating A and B for as long as requests run.
        let reloads = Task {
            var index = 0
            while !requestsDone.load(ordering: .relaxed) {
                try (index.isMultiple(of: 2) ? b : a).write(toFile: path, atomically: true, encoding: .utf8)
                _ = try? await fixture.server.runtime.reload()
                index += 1
            }
            return index
        }
        try await fixture.test { client in
            // Eight clients at once, so that requests are in flight while reloads swap.
            let outcomes = try await withThrowingTaskGroup(of: (answered: Int, refused: Int).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var (answered, refused) = (0, 0)
                        for _ in 0..<50 {
                            try await client.execute(uri: "/v1/orgs/acme", method: .get, headers: fixture.headers("viewer")) { response in
                                if response.status == .ok {
                                    let view = try response.json(OrganizationView.self)
                                    #expect(view.rotation == "weekly", "authenticated by A, served by B")
                                    answered += 1
                                } else {
                                    #expect(response.status == .unauthorized)
                                    refused += 1
                                }
                            }
                        }
                        return (answered, refused)
                    }
                }
                return try await group.reduce(into: (answered: 0, refused: 0)) {
                    $0.answered += $1.answered
                    $0.refused += $1.refused
                }
            }
            requestsDone.store(true, ordering: .relaxed)
            #expect(outcomes.answered + outcomes.refused == 400)
            #expect(outcomes.answered > 0 && outcomes.refused > 0, "requests met both configurations: \(outcomes)")
        }
        requestsDone.store(true, ordering: .relaxed)
        #expect(try await reloads.value >= 2)
    }
}
