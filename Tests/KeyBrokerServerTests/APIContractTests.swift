import Foundation
import HTTPTypes
import HummingbirdTesting
import KeyBroker
import KeyBrokerServer
import NIOCore
import Testing

@testable import KeyBrokerTestSupport

/// What the API fuzz (APIFuzzLoadSensitiveTests) found the server taking that
/// docs/openapi.yaml refuses, each kept here as a focused test.
@Suite("Server: requests the document refuses are refused")
struct APIContractTests {
    @Test("a JSON null is a value of the wrong type, not an absent field: key-configuration bodies")
    func nullInKeyConfiguration() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            for (uri, method) in [
                ("/v1/orgs/gamma/key-configuration", HTTPRequest.Method.put), ("/v1/orgs/gamma/key-configuration/test", .post),
            ] {
                for field in ["keyAlias", "rotation", "keyPairSpec"] {
                    try await client.execute(
                        uri: uri,
                        method: method,
                        headers: fixture.headers("admin"),
                        body: ByteBuffer(string: #"{"type": "default", "\#(field)": null}"#)
                    ) { response in
                        #expect(response.status == .badRequest, "\(method) \(field): \(response.text)")
                        #expect(response.text.contains("wrong type at '\(field)'"), "\(response.text)")
                    }
                }
            }
            try await client.execute(
                uri: "/v1/orgs/gamma/key-configuration/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: ByteBuffer(string: #"{"type": "default", "keyPairSpec": "RSA_2048"}"#)
            ) { #expect($0.status == .ok, "\($0.text)") }
        }
    }

    @Test("a test candidate's null, and a number where a keystore's text setting goes, are refused (YAML would read them loosely)")
    func candidateTypes() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            let refused: [(String, String)] = [
                (#"{"keystore": {"type": "none", "keyPairSpec": null}}"#, "'keystore.keyPairSpec' is null"),
                (#"{"keystore": {"type": "none", "name": null}}"#, "'keystore.name' is null"),
                (#"{"keystore": {"type": "none", "name": 5}}"#, "'keystore.name' must be a JSON string"),
                (#"{"keystore": {"type": "none", "contextKey": true}}"#, "'keystore.contextKey' must be a JSON string"),
                (
                    #"{"keystore": {"type": "aws-kms-symmetric", "retries": {"maxAttempts": null}}}"#,
                    "'keystore.retries.maxAttempts' is null"
                ),
            ]
            for (body, says) in refused {
                try await client.execute(
                    uri: "/v1/orgs/gamma/test",
                    method: .post,
                    headers: fixture.headers("admin"),
                    body: ByteBuffer(string: body)
                ) { response in
                    #expect(response.status == .badRequest, "\(body): \(response.text)")
                    #expect(response.errorCode == "bad_request")
                    #expect(response.text.contains(says), "\(body): \(response.text)")
                }
            }
            try await client.execute(
                uri: "/v1/orgs/gamma/test",
                method: .post,
                headers: fixture.headers("admin"),
                body: ByteBuffer(
                    string: #"{"keystore": {"type": "none", "name": "n5", "contextKey": "tenant", "keyPairSpec": "RSA_2048"}}"#
                )
            ) { response in
                #expect(response.status == .ok, "\(response.text)")
                let report = try response.json(TestReportView.self)
                #expect(report.keystore == "n5")
            }
        }
    }

    @Test("If-Match is a version of digits, quoted or not: a sign is refused (Int alone read '+3' as 3 and '-0' as 0)")
    func ifMatchDigitsOnly() async throws {
        let fixture = try await ServerFixture.make()
        try await fixture.test { client in
            for value in ["+3", "-0", #""+0""#, #""""#, "0x1"] {
                var headers = fixture.headers("admin")
                headers[.ifMatch] = value
                try await client.execute(uri: "/v1/orgs/gamma/key-configuration", method: .delete, headers: headers) { response in
                    #expect(response.status == .badRequest, "If-Match \(value): \(response.text)")
                    #expect(response.text.contains("If-Match must be the configuration's version"), "\(response.text)")
                }
            }
            var headers = fixture.headers("admin")
            headers[.ifMatch] = #""0""#
            try await client.execute(uri: "/v1/orgs/gamma/key-configuration", method: .delete, headers: headers) {
                #expect($0.status == .ok, "\($0.text)")
            }
        }
    }
}
