import Hummingbird

// The views handlers return; the context's `APIResponseEncoder` writes them.
extension KeyPairView: ResponseEncodable {}
extension PublicKeyView: ResponseEncodable {}
extension KeyPairPage: ResponseEncodable {}
extension TestReportView: ResponseEncodable {}
extension StatusView: ResponseEncodable {}
extension OrganizationView: ResponseEncodable {}
extension UnwrapResponse: ResponseEncodable {}
extension ReloadView: ResponseEncodable {}
