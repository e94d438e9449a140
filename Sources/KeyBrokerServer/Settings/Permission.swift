/// A permission an API token can hold.
public enum Permission: String, CaseIterable, Sendable, Hashable {
    case viewKeys = "encryption-key:view"
    case editKeys = "encryption-key:edit"
    case encrypt = "recording:encrypt"
    case decrypt = "recording:decrypt"
}
