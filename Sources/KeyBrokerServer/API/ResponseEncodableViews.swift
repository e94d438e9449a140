public import Hummingbird

// The JSON shapes of the HTTP API (the views in this folder), shared with the CLI's `--json`
// output and its remote mode. None of them holds key material: wrapped private keys are
// never sent, and public keys only by the public-key endpoint. Handlers return them; the
// context's `APIResponseEncoder` writes them.
extension KeyPairView: ResponseEncodable {}
extension PublicKeyView: ResponseEncodable {}
extension KeyPairPage: ResponseEncodable {}
extension TestReportView: ResponseEncodable {}
extension StatusView: ResponseEncodable {}
extension OrganizationView: ResponseEncodable {}
extension RevocationView: ResponseEncodable {}
extension UnwrapResponse: ResponseEncodable {}
extension ReloadView: ResponseEncodable {}
extension OrganizationListView: ResponseEncodable {}
extension KeyConfigurationView: ResponseEncodable {}
extension KeyConfigurationSavedView: ResponseEncodable {}
