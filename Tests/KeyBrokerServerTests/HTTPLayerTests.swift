import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
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
        let reloads = Task {
            for index in 0..<40 {
                try (index.isMultiple(of: 2) ? b : a).write(toFile: path, atomically: true, encoding: .utf8)
                _ = try? await fixture.server.runtime.reload()
            }
        }
        try await fixture.test { client in
            var answered = 0
            var refused = 0
            for _ in 0..<300 {
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
            #expect(answered + refused == 300)
        }
        try await reloads.value
    }
}
